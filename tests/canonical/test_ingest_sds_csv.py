"""An SDS v2.1 CSV upload loads into the canonical store the way School Data Sync mapped it,
as one transaction: structural problems reject the whole upload and change nothing; a bad
record is rejected (error) or loses a bad optional value (warning) and is reported with its
file, physical line and column; re-loading keeps ids and FirstSeen, moves LastSeen, and
marks records missing from the new upload inactive instead of deleting them. Passwords are
never stored."""

from __future__ import annotations

import csv
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine

from industrydata.canonical.ids import source_system_id, stable_id
from industrydata.canonical.ingest import SOURCE_SYSTEM, FileProgress, load_sds_csv
from industrydata.canonical.statistics import count_rows
from industrydata.canonical.tables import CANONICAL_TABLES
from industrydata.errors import LoadError

from tests.canonical.ingest_support import (
    dangling,
    problems_of,
    rows_of,
    whole_store,
    with_line,
    write_drop,
)

TENANT = "3f5e8d1a-0000-4000-8000-000000000001"
OTHER_TENANT = "3f5e8d1a-0000-4000-8000-000000000002"
FIRST_LOAD = datetime(2021, 9, 5, 6, 16, 22, 123000)
SECOND_LOAD = datetime(2021, 9, 6, 6, 16, 22, 456000)

# Reasoned from the ten files of the official sample (8 users, 4 orgs, 7 roles ...):
SAMPLE_ROWS = {
    "SourceSystem": 1,  # one source system per load
    "RefDefinition": 257,  # the whole vocabulary
    "Session": 2,  # SY2021K12, FS2021HED
    "Organization": 4,  # 110001-110004
    "Person": 8,  # one per user, 114001-114008
    # SDSAnchorId, identifier, userMatchId, sourceExternalId, username for all 8 users,
    # plus activeDirectoryMatchId for the 6 users that have one (not 114002, 114005)
    "PersonIdentifier": 8 * 5 + 6,
    "PersonEmailAddress": 2,  # 114002 and 114005 have an email
    "PersonPhoneNumber": 4,  # phone and sms of 114002 and 114005
    "Course": 3,
    "CourseSubject": 3,  # one subject per course (10, 10, 14)
    "CourseGradeLevel": 3,  # PS1, PS2, 10
    "Section": 2,  # classes 112001, 112002
    "SectionSession": 2,  # one session each
    "SectionGradeLevel": 0,  # SDS v2.1 classes carry no grade
    "SectionSubject": 0,  # nor a subject
    "PersonOrganizationRole": 7,  # seven roles.csv records
    "Enrollment": 6,
    "PersonDemographic": 6,
    "PersonDemographicEthnicity": 1,  # 114001
    "PersonDemographicRace": 5,  # 114003, 114004, 114006, 114007, 114008
    "PersonDemographicPersonFlag": 3,
    "PersonRelationship": 3,
    "AadUser": 0,  # SDS CSV carries no Entra object ids
    "AadUserPersonMapping": 0,
    "AadGroup": 0,
    "AadGroupMembership": 0,
}

BASE_DROP = {
    "orgs.csv": """sourcedId,name,type,parentSourcedId
d1,District One,district,
s1,School One,school,d1
""",
    "academicSessions.csv": """sourcedId,title,type,schoolYear,startDate,endDate
y1,Year 2025,schoolYear,2025,2024-08-26,2025-06-13
""",
    "users.csv": """sourcedId,username,givenName,familyName,password,activeDirectoryMatchId,email,phone,sms
u1,ann@x.example,Ann,Lee,Secret-1,,Ann@X.example,+1 (555) 123-0001,
u2,bob@x.example,Bob,Ray,Secret-2,,,,
t1,tia@x.example,Tia,Fox,Secret-3,,,,
""",
    "roles.csv": """userSourcedId,orgSourcedId,role,sessionSourcedId,grade,isPrimary,roleStartDate,roleEndDate
u1,s1,student,y1,09,true,,
u2,s1,student,y1,09,true,,
t1,s1,teacher,y1,,true,,
""",
    "courses.csv": """sourcedId,orgSourcedId,title,code,schoolYearSourcedId,subject,grade
c1,s1,Algebra,ALG,y1,02,09
""",
    "classes.csv": """sourcedId,orgSourcedId,title,sessionSourcedIds,courseSourcedId
k1,s1,Algebra A,y1,c1
""",
    "enrollments.csv": """classSourcedId,userSourcedId,role
k1,u1,student
k1,u2,student
k1,t1,teacher
""",
}


def _rows(engine: Engine, table_name: str, tenant: str = TENANT) -> list[dict]:
    return rows_of(engine, table_name, tenant)


def _dangling(engine: Engine) -> list[str]:
    return dangling(engine, TENANT)


@pytest.fixture
def sample_dir(reference_dir: Path) -> Path:
    return reference_dir / "sds-v2.1-csv-sample"


@pytest.mark.reference
def test_load_sds_csv_official_sample_rows_per_table(engine: Engine, sample_dir: Path) -> None:
    report = load_sds_csv(engine, sample_dir, tenant_id=TENANT, now=FIRST_LOAD)

    assert report.problems == []
    assert report.rows == SAMPLE_ROWS
    assert count_rows(engine, TENANT) == SAMPLE_ROWS
    assert report.source_system == SOURCE_SYSTEM == "School Data Sync"
    assert report.records == {
        "academicSessions.csv": 2,
        "orgs.csv": 4,
        "users.csv": 8,
        "courses.csv": 3,
        "classes.csv": 2,
        "roles.csv": 7,
        "enrollments.csv": 6,
        "demographics.csv": 6,
        "userFlags.csv": 3,
        "relationships.csv": 3,
    }


@pytest.mark.reference
def test_load_sds_csv_official_sample_references_resolve(engine: Engine, sample_dir: Path) -> None:
    load_sds_csv(engine, sample_dir, tenant_id=TENANT, now=FIRST_LOAD)

    assert _dangling(engine) == []


@pytest.mark.reference
def test_load_sds_csv_official_sample_maps_fields_as_sds(engine: Engine, sample_dir: Path) -> None:
    load_sds_csv(engine, sample_dir, tenant_id=TENANT, now=FIRST_LOAD)

    def sid(table: str, key: str) -> str:
        return stable_id(TENANT, SOURCE_SYSTEM, table, key)

    source = source_system_id(TENANT, SOURCE_SYSTEM)
    assert _rows(engine, "SourceSystem") == [
        {
            "Id": source,
            "FirstSeenDateTime": FIRST_LOAD,
            "LastSeenDateTime": FIRST_LOAD,
            "Name": "School Data Sync",
        }
    ]
    orgs = {row["ExternalId"]: row for row in _rows(engine, "Organization")}
    assert orgs["110003"] | {"FirstSeenDateTime": None, "LastSeenDateTime": None} == {
        "Id": sid("Organization", "110003"),
        "ExternalId": "110003",
        "FirstSeenDateTime": None,
        "LastSeenDateTime": None,
        "Name": "School of TwoDotOne",
        "RefOrganizationTypeId": "15",
        "SourceSystemId": source,
        "Identifier": "110003",
        "ParentOrganizationId": sid("Organization", "110004"),
    }
    assert orgs["110004"]["ParentOrganizationId"] == ""
    assert orgs["110004"]["RefOrganizationTypeId"] == "21"  # ministryOfEducation

    jack = sid("Person", "114001")
    identifiers = {
        (row["RefIdentifierTypeId"], row["Identifier"])
        for row in _rows(engine, "PersonIdentifier")
        if row["PersonId"] == jack
    }
    assert identifiers == {
        ("203", "User_114001"),  # SDSAnchorId, the SDS v2.1 anchor format
        ("198", "114001"),  # identifier
        ("257", "School Data Sync_User_114001"),  # userMatchId
        ("201", "114001"),  # sourceExternalId
        ("197", "jcraig@classrmtest31.org"),  # username
        ("204", "jcraig@classrmtest31.org"),  # activeDirectoryMatchId
    }
    jean = sid("Person", "114002")
    assert [
        (r["EmailAddress"], r["PriorityOrder"], r["RefEmailAddressTypeId"])
        for r in _rows(engine, "PersonEmailAddress")
        if r["PersonId"] == jean
    ] == [("jean.craig@outlook.com", 1, "10")]
    assert sorted(
        (r["PriorityOrder"], r["PhoneNumber"], r["RefPhoneNumberTypeId"])
        for r in _rows(engine, "PersonPhoneNumber")
        if r["PersonId"] == jean
    ) == [(1, "+11234567890", "1"), (2, "+11234567890", "5")]
    person = next(r for r in _rows(engine, "Person") if r["Id"] == jack)
    assert (person["GivenName"], person["MiddleName"], person["Surname"]) == ("Jack", "", "Craig")

    roles = {row["ExternalId"]: row for row in _rows(engine, "PersonOrganizationRole")}
    professor = roles["Role_110002_School Data Sync_User_114006_FS2021HED_professor"]
    assert (
        professor["RefRoleId"],
        professor["RefGradeLevelId"],
        professor["IsPrimary"],
        professor["RoleStartDate"],
        professor["RoleEndDate"],
        professor["SessionId"],
        professor["IsActiveInSession"],
    ) == ("137", "178", True, "2021-09-01", "2021-12-01", sid("Session", "FS2021HED"), True)
    assert roles["Role_110003_School Data Sync_User_114007_SY2021K12_teacher"]["IsPrimary"] is False

    enrollments = {row["ExternalId"]: row for row in _rows(engine, "Enrollment")}
    assert set(enrollments) == {
        "112001_114008_student",
        "112001_114006_professor",
        "112002_114001_student",
        "112002_114003_student",
        "112002_114004_student",
        "112002_114007_teacher",
    }
    assert enrollments["112001_114006_professor"]["RefSectionRoleId"] == "245"
    assert enrollments["112002_114007_teacher"]["SectionId"] == sid("Section", "112002")

    sessions = {row["ExternalId"]: row for row in _rows(engine, "Session")}
    assert [
        (s["Name"], s["RefSessionTypeId"], s["RefAcademicYearId"], s["StartDate"], s["EndDate"])
        for s in (sessions["SY2021K12"], sessions["FS2021HED"])
    ] == [
        ("2021 School Year", "11", "223", "2021-08-24", "2022-06-11"),
        ("Fall Semester", "12", "223", "2021-09-01", "2021-12-01"),
    ]

    biology = next(r for r in _rows(engine, "Course") if r["ExternalId"] == "B102021")
    assert (
        biology["Name"],
        biology["Code"],
        biology["AcademicYearSessionId"],
        biology["OrganizationId"],
    ) == ("Biology 10 2021", "B10", sid("Session", "SY2021K12"), sid("Organization", "110003"))
    assert {
        r["RefAcademicSubjectId"]
        for r in _rows(engine, "CourseSubject")
        if r["CourseId"] == biology["Id"]
    } == {"46"}
    assert {
        r["RefGradeLevelId"]
        for r in _rows(engine, "CourseGradeLevel")
        if r["CourseId"] == biology["Id"]
    } == {"171"}
    section = next(r for r in _rows(engine, "Section") if r["ExternalId"] == "112002")
    assert (section["Name"], section["CourseId"]) == ("Biology 10", biology["Id"])

    demographic = next(r for r in _rows(engine, "PersonDemographic") if r["PersonId"] == jack)
    assert (
        demographic["RefSexId"],
        demographic["BirthDate"],
        demographic["BirthCity"],
        demographic["BirthState"],
        demographic["BirthCountryCode"],
    ) == ("57", "2001-07-02", "Woodenville", "WA", "USA")
    assert [r["RefEthnicityId"] for r in _rows(engine, "PersonDemographicEthnicity")] == ["193"]
    assert sorted(r["RefPersonFlagId"] for r in _rows(engine, "PersonDemographicPersonFlag")) == [
        "207",
        "211",
        "214",
    ]  # freeLunch, 504, iep → IEP
    assert sorted(
        (r["PersonId"], r["RelatedPersonId"], r["RefPersonRelationshipId"])
        for r in _rows(engine, "PersonRelationship")
    ) == sorted(
        [
            (jack, jean, "218"),
            (sid("Person", "114003"), jean, "216"),
            (sid("Person", "114004"), sid("Person", "114005"), "218"),
        ]
    )
    assert [(r["Id"], r["Code"], r["RefType"]) for r in _rows(engine, "RefDefinition")][:1] == [
        ("1", "Home", "RefPhoneNumberType")
    ]


@pytest.mark.reference
def test_load_sds_csv_ref_definitions_match_reference_export(
    engine: Engine, sample_dir: Path, reference_dir: Path
) -> None:
    export = reference_dir / "sds-lake-export-2021" / "roster" / "2021-09-05T06-16-22"
    with next((export / "RefDefinition").glob("*.csv")).open(encoding="utf-8", newline="") as f:
        expected = sorted((row[0], row[1], row[4], row[5], int(row[6])) for row in csv.reader(f))

    load_sds_csv(engine, sample_dir, tenant_id=TENANT, now=FIRST_LOAD)

    loaded = sorted(
        (r["Id"], r["Code"], r["Namespace"], r["RefType"], r["SortOrder"])
        for r in _rows(engine, "RefDefinition")
    )
    assert loaded == expected


@pytest.mark.reference
def test_load_sds_csv_reload_changes_only_last_seen(engine: Engine, sample_dir: Path) -> None:
    load_sds_csv(engine, sample_dir, tenant_id=TENANT, now=FIRST_LOAD)
    first = {table.name: _rows(engine, table.name) for table in CANONICAL_TABLES}

    report = load_sds_csv(engine, sample_dir, tenant_id=TENANT, now=SECOND_LOAD)

    assert report.rows == SAMPLE_ROWS
    for table in CANONICAL_TABLES:
        second = _rows(engine, table.name)
        if table.has_column("LastSeenDateTime"):
            assert {row["LastSeenDateTime"] for row in second} <= {SECOND_LOAD}, table.name
            second = [row | {"LastSeenDateTime": FIRST_LOAD} for row in second]
        assert second == first[table.name], table.name


def test_load_sds_csv_missing_record_kept_inactive_with_old_last_seen(
    engine: Engine, tmp_path: Path
) -> None:
    load_sds_csv(engine, write_drop(tmp_path / "one", BASE_DROP), tenant_id=TENANT, now=FIRST_LOAD)
    without_u2 = BASE_DROP | {
        "users.csv": with_line(BASE_DROP["users.csv"], 3, None),
        "roles.csv": with_line(BASE_DROP["roles.csv"], 3, None),
        "enrollments.csv": with_line(BASE_DROP["enrollments.csv"], 3, None),
    }

    report = load_sds_csv(
        engine, write_drop(tmp_path / "two", without_u2), tenant_id=TENANT, now=SECOND_LOAD
    )

    assert report.problems == []
    bob = stable_id(TENANT, SOURCE_SYSTEM, "Person", "u2")
    people = {row["Id"]: row for row in _rows(engine, "Person")}
    assert len(people) == 3
    assert (people[bob]["FirstSeenDateTime"], people[bob]["LastSeenDateTime"]) == (
        FIRST_LOAD,
        FIRST_LOAD,
    )
    for table in ("PersonOrganizationRole", "Enrollment"):
        state = {
            (row["PersonId"] == bob, row["IsActiveInSession"], row["LastSeenDateTime"])
            for row in _rows(engine, table)
        }
        assert state == {(True, False, FIRST_LOAD), (False, True, SECOND_LOAD)}, table
    assert {
        (row["PersonId"] == bob, row["IsPresentInSource"])
        for row in _rows(engine, "PersonIdentifier")
    } == {(True, False), (False, True)}


def test_load_sds_csv_tenants_are_kept_apart(engine: Engine, tmp_path: Path) -> None:
    folder = write_drop(tmp_path / "drop", BASE_DROP)
    load_sds_csv(engine, folder, tenant_id=TENANT, now=FIRST_LOAD)
    load_sds_csv(engine, folder, tenant_id=OTHER_TENANT, now=FIRST_LOAD)
    fewer = write_drop(
        tmp_path / "fewer",
        BASE_DROP | {"enrollments.csv": with_line(BASE_DROP["enrollments.csv"], 2, None)},
    )

    load_sds_csv(engine, fewer, tenant_id=OTHER_TENANT, now=SECOND_LOAD)

    assert {row["IsActiveInSession"] for row in _rows(engine, "Enrollment", TENANT)} == {True}
    assert [row["IsActiveInSession"] for row in _rows(engine, "Enrollment", OTHER_TENANT)].count(
        False
    ) == 1
    mine = {row["Id"] for row in _rows(engine, "Person", TENANT)}
    theirs = {row["Id"] for row in _rows(engine, "Person", OTHER_TENANT)}
    assert len(mine) == len(theirs) == 3 and not mine & theirs


PLANTED = [
    pytest.param(
        "roles.csv",
        3,
        "u9,s1,student,y1,09,true,,",
        [("error", "roles.csv", 3, "userSourcedId", "u9")],
        {"PersonOrganizationRole": -1},
        id="unknown-user-in-roles",
    ),
    pytest.param(
        "roles.csv",
        3,
        "u2,s9,student,y1,09,true,,",
        [("error", "roles.csv", 3, "orgSourcedId", "s9")],
        {"PersonOrganizationRole": -1},
        id="unknown-org-in-roles",
    ),
    pytest.param(
        "enrollments.csv",
        2,
        "k9,u1,student",
        [("error", "enrollments.csv", 2, "classSourcedId", "k9")],
        {"Enrollment": -1},
        id="unknown-class-in-enrollments",
    ),
    pytest.param(
        "enrollments.csv",
        3,
        "k1,u9,student",
        [("error", "enrollments.csv", 3, "userSourcedId", "u9")],
        {"Enrollment": -1},
        id="unknown-user-in-enrollments",
    ),
    pytest.param(
        "roles.csv",
        3,
        "u2,s1,wizard,y1,09,true,,",
        [("error", "roles.csv", 3, "role", "wizard")],
        {"PersonOrganizationRole": -1},
        id="bad-enum",
    ),
    pytest.param(
        "roles.csv",
        2,
        "u1,s1,student,y1,09,true,2024-02-30,",
        [("error", "roles.csv", 2, "roleStartDate", "2024-02-30")],
        {"PersonOrganizationRole": -1},
        id="bad-date",
    ),
    pytest.param(
        "roles.csv",
        2,
        "u1,s1,student,y1,09,maybe,,",
        [("error", "roles.csv", 2, "isPrimary", "maybe")],
        {"PersonOrganizationRole": -1},
        id="bad-boolean",
    ),
    pytest.param(
        "users.csv",
        3,
        "u2,,Bob,Ray,Secret-2,,,,",
        [
            ("error", "users.csv", 3, "username", ""),
            ("error", "roles.csv", 3, "userSourcedId", "u2"),
            ("error", "enrollments.csv", 3, "userSourcedId", "u2"),
        ],
        {"Person": -1, "PersonIdentifier": -5, "PersonOrganizationRole": -1, "Enrollment": -1},
        id="missing-required-value-cascades",
    ),
    pytest.param(
        "users.csv",
        5,
        "u2,bob2@x.example,Bob,Ray,Secret-2,,,,",
        [("error", "users.csv", 5, "sourcedId", "u2")],
        {},
        id="duplicate-key",
    ),
    pytest.param(
        "users.csv",
        2,
        "u1,ann@x.example,Ann,Lee,Secret-1,,not-an-email,+15551230001,",
        [("warning", "users.csv", 2, "email", "not-an-email")],
        {"PersonEmailAddress": -1},
        id="bad-email-is-dropped",
    ),
    pytest.param(
        "users.csv",
        2,
        "u1,ann@x.example,Ann,Lee,Secret-1,,ann@x.example,call me,",
        [("warning", "users.csv", 2, "phone", "call me")],
        {"PersonPhoneNumber": -1},
        id="bad-phone-is-dropped",
    ),
    pytest.param(
        "classes.csv",
        2,
        "k1,s1,Algebra A,y1,c9",
        [("warning", "classes.csv", 2, "courseSourcedId", "c9")],
        {},
        id="unknown-optional-reference-is-dropped",
    ),
    pytest.param(
        "enrollments.csv",
        4,
        "k1,t1",
        [("error", "enrollments.csv", 4, None, None)],
        {"Enrollment": -1},
        id="wrong-number-of-fields",
    ),
]


@pytest.mark.parametrize(("file", "line", "content", "expected", "changes"), PLANTED)
def test_load_sds_csv_planted_mistake_reported_and_record_handled(
    engine: Engine,
    tmp_path: Path,
    file: str,
    line: int,
    content: str,
    expected: list[tuple],
    changes: dict[str, int],
) -> None:
    load_sds_csv(engine, write_drop(tmp_path / "base", BASE_DROP), tenant_id=OTHER_TENANT)
    planted = BASE_DROP | {file: with_line(BASE_DROP[file], line, content)}

    report = load_sds_csv(engine, write_drop(tmp_path / "planted", planted), tenant_id=TENANT)

    assert problems_of(report) == expected
    assert (report.errors, report.warnings) == (
        sum(p[0] == "error" for p in expected),
        sum(p[0] == "warning" for p in expected),
    )
    baseline = count_rows(engine, OTHER_TENANT)
    assert count_rows(engine, TENANT) == {
        name: rows + changes.get(name, 0) for name, rows in baseline.items()
    }
    assert not any("Secret" in str(problem) for problem in report.problems)
    assert _dangling(engine) == []


def test_load_sds_csv_dropped_optional_reference_leaves_it_empty(
    engine: Engine, tmp_path: Path
) -> None:
    planted = BASE_DROP | {"classes.csv": with_line(BASE_DROP["classes.csv"], 2, "k1,s1,A,y9,c9")}

    report = load_sds_csv(engine, write_drop(tmp_path, planted), tenant_id=TENANT)

    assert [(p.column, p.value) for p in report.problems] == [
        ("sessionSourcedIds", "y9"),
        ("courseSourcedId", "c9"),
    ]
    assert [row["CourseId"] for row in _rows(engine, "Section")] == [""]
    assert _rows(engine, "SectionSession") == []


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"roles.csv": None}, [("error", "roles.csv", None, None, None)], id="missing-file"
        ),
        pytest.param(
            {"users.csv": "sourcedId,givenName\nu1,Ann\n"},
            [("error", "users.csv", 1, "username", None)],
            id="missing-header",
        ),
        pytest.param(
            {"Orgs.csv": BASE_DROP["orgs.csv"], "orgs.csv": None},
            [("error", "orgs.csv", None, None, None)],
            id="file-name-is-case-sensitive",
        ),
        pytest.param(
            {"enrollments.csv": "classSourcedID,userSourcedId,role\n"},
            [("error", "enrollments.csv", 1, "classSourcedId", None)],
            id="optional-file-header-is-case-sensitive",
        ),
        pytest.param(
            {"userFlags.csv": ""},
            [("error", "userFlags.csv", 1, None, None)],
            id="empty-file",
        ),
        pytest.param(
            {"enrollments.csv": 'classSourcedId,userSourcedId,role\nk1,"u1"x,student\n'},
            [("error", "enrollments.csv", 2, None, None)],
            id="malformed-quoting-in-a-late-file",
        ),
    ],
)
def test_load_sds_csv_structural_problem_raises_and_changes_nothing(
    engine: Engine, tmp_path: Path, files: dict[str, str | None], expected: list[tuple]
) -> None:
    good = write_drop(tmp_path / "good", BASE_DROP)
    load_sds_csv(engine, good, tenant_id=TENANT, now=FIRST_LOAD)
    before = whole_store(engine)
    broken = write_drop(
        tmp_path / "broken",
        {name: text for name, text in (BASE_DROP | files).items() if text is not None},
    )

    with pytest.raises(LoadError) as raised:
        load_sds_csv(engine, broken, tenant_id=TENANT, now=SECOND_LOAD)

    assert problems_of(raised.value) == expected
    assert whole_store(engine) == before


def test_load_sds_csv_unreadable_late_file_rolls_back_everything(
    engine: Engine, tmp_path: Path
) -> None:
    folder = write_drop(tmp_path, BASE_DROP)
    (folder / "enrollments.csv").write_bytes(b"classSourcedId,userSourcedId,role\nk1,u1,\xff\n")

    with pytest.raises(LoadError) as raised:
        load_sds_csv(engine, folder, tenant_id=TENANT)

    assert [(p.file, p.reason) for p in raised.value.problems] == [
        ("enrollments.csv", "not valid UTF-8")
    ]
    assert set(count_rows(engine, TENANT).values()) == {0}


def test_load_sds_csv_bom_crlf_and_quoted_fields(engine: Engine, tmp_path: Path) -> None:
    drop = BASE_DROP | {
        "academicSessions.csv": BASE_DROP["academicSessions.csv"]
        + "y2,Term 1,term,2025,2024-08-26,2024-12-20\n",
        "users.csv": with_line(
            BASE_DROP["users.csv"], 2, 'u1,ann@x.example,"Ann, Marie","O""Lee",Secret-1,,,,'
        ),
        "classes.csv": with_line(BASE_DROP["classes.csv"], 2, 'k1,s1,"Algebra, A","y1, y2",c1'),
    }
    folder = tmp_path / "drop"
    folder.mkdir()
    for name, text in drop.items():
        (folder / name).write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())

    report = load_sds_csv(engine, folder, tenant_id=TENANT)

    assert report.problems == []
    ann = next(
        r
        for r in _rows(engine, "Person")
        if r["Id"] == stable_id(TENANT, SOURCE_SYSTEM, "Person", "u1")
    )
    assert (ann["GivenName"], ann["Surname"]) == ("Ann, Marie", 'O"Lee')
    assert [row["Name"] for row in _rows(engine, "Section")] == ["Algebra, A"]
    assert len(_rows(engine, "SectionSession")) == 2


def test_load_sds_csv_line_numbers_are_physical_lines(engine: Engine, tmp_path: Path) -> None:
    users = with_line(BASE_DROP["users.csv"], 2, 'u1,,"Ann\nMarie",Lee,Secret-1,,,,')
    users = with_line(users, 5, "t1,,Tia,Fox,Secret-3,,,,")  # u1 spans lines 2-3, u2 is line 4

    report = load_sds_csv(
        engine, write_drop(tmp_path, BASE_DROP | {"users.csv": users}), tenant_id=TENANT
    )

    problems = [p for p in problems_of(report) if p[1] == "users.csv"]
    assert problems == [
        ("error", "users.csv", 2, "username", ""),
        ("error", "users.csv", 5, "username", ""),
    ]


def test_load_sds_csv_enum_values_match_case_insensitively(engine: Engine, tmp_path: Path) -> None:
    drop = BASE_DROP | {
        "roles.csv": with_line(BASE_DROP["roles.csv"], 2, "u1,s1,STUDENT,y1,9,TRUE,20240826,"),
        "enrollments.csv": with_line(BASE_DROP["enrollments.csv"], 2, "k1,u1,Student"),
    }

    report = load_sds_csv(engine, write_drop(tmp_path, drop), tenant_id=TENANT)

    assert report.problems == []
    role = next(
        r
        for r in _rows(engine, "PersonOrganizationRole")
        if r["ExternalId"].startswith("Role_s1_School Data Sync_User_u1_")
    )
    assert (
        role["ExternalId"],
        role["RefRoleId"],
        role["RefGradeLevelId"],
        role["RoleStartDate"],
    ) == ("Role_s1_School Data Sync_User_u1_y1_student", "122", "170", "2024-08-26")
    assert "k1_u1_student" in {row["ExternalId"] for row in _rows(engine, "Enrollment")}


def test_load_sds_csv_never_stores_the_password(engine: Engine, tmp_path: Path) -> None:
    report = load_sds_csv(engine, write_drop(tmp_path, BASE_DROP), tenant_id=TENANT)

    assert report.problems == []
    stored = whole_store(engine)
    assert not any("Secret" in value for rows in stored.values() for row in rows for value in row)


def test_load_sds_csv_reports_progress_per_file(engine: Engine, tmp_path: Path) -> None:
    calls: list[FileProgress] = []
    folder = write_drop(tmp_path, BASE_DROP)

    load_sds_csv(engine, folder, tenant_id=TENANT, progress=calls.append)

    assert [(p.file, p.records, p.done) for p in calls] == [
        ("academicSessions.csv", 1, True),
        ("orgs.csv", 2, True),
        ("users.csv", 3, True),
        ("courses.csv", 1, True),
        ("classes.csv", 1, True),
        ("roles.csv", 3, True),
        ("enrollments.csv", 3, True),
    ]
    assert all(p.bytes_read == p.bytes_total == (folder / p.file).stat().st_size for p in calls)


def test_load_sds_csv_time_is_stored_as_naive_utc_milliseconds(
    engine: Engine, tmp_path: Path
) -> None:
    aware = datetime(2021, 9, 5, 8, 16, 22, 123456, tzinfo=timezone.utc).astimezone()

    load_sds_csv(engine, write_drop(tmp_path, BASE_DROP), tenant_id=TENANT, now=aware)

    assert {row["FirstSeenDateTime"] for row in _rows(engine, "Person")} == {
        datetime(2021, 9, 5, 8, 16, 22, 123000)
    }


def test_load_sds_csv_user_number_and_class_code_are_kept(engine: Engine, tmp_path: Path) -> None:
    drop = BASE_DROP | {
        "users.csv": "sourcedId,username,userNumber\nu1,ann@x.example,S-0001\n"
        "u2,bob@x.example,\nt1,tia@x.example,T-01\n",
        "classes.csv": "sourcedId,orgSourcedId,title,sessionSourcedIds,courseSourcedId,code\n"
        "k1,s1,Algebra A,y1,c1,ALG-A\n",
    }

    report = load_sds_csv(engine, write_drop(tmp_path, drop), tenant_id=TENANT)

    assert report.problems == []
    numbers = {
        (row["PersonId"], row["Identifier"])
        for row in _rows(engine, "PersonIdentifier")
        if row["RefIdentifierTypeId"] == "200"  # studentOrTeacherNumberOrId
    }
    person = {key: stable_id(TENANT, SOURCE_SYSTEM, "Person", key) for key in ("u1", "t1")}
    assert numbers == {(person["u1"], "S-0001"), (person["t1"], "T-01")}
    assert [row["Code"] for row in _rows(engine, "Section")] == ["ALG-A"]


def test_load_sds_csv_identifier_gone_from_a_present_user_is_no_longer_present(
    engine: Engine, tmp_path: Path
) -> None:
    with_match = BASE_DROP | {
        "users.csv": with_line(BASE_DROP["users.csv"], 2, "u1,ann@x.example,Ann,Lee,,ann.lee,,,")
    }
    load_sds_csv(engine, write_drop(tmp_path / "one", with_match), tenant_id=TENANT)

    load_sds_csv(engine, write_drop(tmp_path / "two", BASE_DROP), tenant_id=TENANT)

    ann = stable_id(TENANT, SOURCE_SYSTEM, "Person", "u1")
    assert {
        (row["RefIdentifierTypeId"], row["IsPresentInSource"])
        for row in _rows(engine, "PersonIdentifier")
        if row["PersonId"] == ann
    } == {("203", True), ("198", True), ("257", True), ("201", True), ("197", True), ("204", False)}


def test_load_sds_csv_zip_archive_loads_as_the_folder(engine: Engine, tmp_path: Path) -> None:
    folder = write_drop(tmp_path / "drop", BASE_DROP)
    load_sds_csv(engine, folder, tenant_id=TENANT, now=FIRST_LOAD)
    from_folder = whole_store(engine, tracking=False)
    archive = tmp_path / "drop.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in folder.iterdir():
            zipped.write(path, path.name)

    report = load_sds_csv(engine, archive, tenant_id=TENANT, now=FIRST_LOAD)

    assert report.problems == [] and sum(report.rows.values()) > 0
    assert whole_store(engine, tracking=False) == from_folder


def test_load_sds_csv_read_in_a_child_process_writes_the_same_rows(
    engine: Engine, tmp_path: Path
) -> None:
    """Large uploads are read in a child process; the rows, report and progress are the same."""
    folder = write_drop(
        tmp_path, BASE_DROP | {"users.csv": with_line(BASE_DROP["users.csv"], 3, "u2,")}
    )
    in_process: list[FileProgress] = []
    in_child: list[FileProgress] = []
    first = load_sds_csv(
        engine, folder, tenant_id=OTHER_TENANT, now=FIRST_LOAD, progress=in_process.append
    )

    second = load_sds_csv(
        engine, folder, tenant_id=TENANT, now=FIRST_LOAD, progress=in_child.append, parallel=True
    )

    assert (second.rows, second.records, problems_of(second)) == (
        first.rows,
        first.records,
        problems_of(first),
    )
    assert problems_of(second)[0] == ("error", "users.csv", 3, None, None)
    assert in_child == in_process
    assert count_rows(engine, TENANT) == count_rows(engine, OTHER_TENANT)
    assert _dangling(engine) == []


def test_load_sds_csv_structural_problem_found_in_a_child_process_changes_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    folder = write_drop(tmp_path, BASE_DROP)
    load_sds_csv(engine, folder, tenant_id=TENANT, now=FIRST_LOAD)
    before = whole_store(engine)
    valid = BASE_DROP["enrollments.csv"].encode() * 1000  # past the header check's first block
    (folder / "enrollments.csv").write_bytes(valid + b"k1,u1,\xff\n")

    with pytest.raises(LoadError) as raised:
        load_sds_csv(engine, folder, tenant_id=TENANT, now=SECOND_LOAD, parallel=True)

    assert [(p.file, p.reason) for p in raised.value.problems] == [
        ("enrollments.csv", "not valid UTF-8")
    ]
    assert raised.value.problems[0].line > 1
    assert whole_store(engine) == before
