"""A OneRoster 1.1 CSV upload in bulk mode, as a folder or a zip archive, loads into the same
canonical tables as SDS, as one transaction: the manifest decides which files are read; a
delta file, a roster file missing from the manifest or the upload, or a missing header rejects
the whole upload and changes nothing; a bad record is rejected (error) or loses a bad optional
value (warning), reported with its file, physical line and column; re-loading keeps ids and
FirstSeen and marks records missing from the new upload inactive."""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from industrydata.canonical.ids import stable_id
from industrydata.canonical.ingest import (
    ONEROSTER_SOURCE_SYSTEM,
    load_oneroster_csv,
    load_sds_csv,
)
from industrydata.canonical.statistics import count_rows
from industrydata.errors import LoadError

from tests.canonical.ingest_support import (
    ONEROSTER_DROP,
    ONEROSTER_MANIFEST,
    dangling,
    problems_of,
    rows_of,
    whole_store,
    with_line,
    write_drop,
)

TENANT = "0e5c1a77-0000-4000-8000-000000000001"
OTHER_TENANT = "0e5c1a77-0000-4000-8000-000000000002"
FIRST_LOAD = datetime(2025, 9, 1, 6, 0, 0)
SECOND_LOAD = datetime(2025, 9, 2, 6, 0, 0)

MANIFEST = ONEROSTER_MANIFEST
DROP = ONEROSTER_DROP

# Reasoned from DROP, file by file:
ROWS = {
    "SourceSystem": 1,
    "RefDefinition": 257,
    "Session": 3,  # y1, f1, q1
    "Organization": 2,
    "Person": 3,
    # SDSAnchorId, userMatchId, sourceExternalId, username for all three users,
    # identifier for u1 and t1, fed for u1
    "PersonIdentifier": 3 * 4 + 2 + 1,
    "PersonEmailAddress": 3,
    "PersonPhoneNumber": 2,  # t1's phone, p1's sms
    "PersonDemographic": 1,
    "PersonDemographicEthnicity": 1,  # hispanicOrLatinoEthnicity
    "PersonDemographicRace": 3,  # asian, white, two or more
    "PersonDemographicPersonFlag": 0,  # OneRoster has no flags
    "PersonRelationship": 1,  # u1 and p1 list each other as agents: one pair
    "Course": 1,
    "CourseGradeLevel": 2,  # 09, 10
    "CourseSubject": 1,  # 02001 → 02
    "Section": 1,
    "SectionGradeLevel": 1,
    "SectionSubject": 1,
    "SectionSession": 2,  # f1, q1
    "PersonOrganizationRole": 4,  # u1@s1, t1@s1, t1@d1, p1@s1
    "Enrollment": 2,
    "AadUser": 0,
    "AadUserPersonMapping": 0,
    "AadGroup": 0,
    "AadGroupMembership": 0,
}


def _sid(table: str, key: str) -> str:
    return stable_id(TENANT, ONEROSTER_SOURCE_SYSTEM, table, key)


def _rows(engine: Engine, table_name: str, tenant: str = TENANT) -> list[dict]:
    return rows_of(engine, table_name, tenant)


def _zip(folder: Path, archive: Path, *, inside: str = "") -> Path:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(folder.iterdir()):
            zipped.write(path, inside + path.name)
        if inside:  # what macOS adds when it zips a folder
            zipped.writestr(f"__MACOSX/{inside}._manifest.csv", b"\x00\x05\x16\x07")
    return archive


def test_load_oneroster_csv_folder_rows_per_table(engine: Engine, tmp_path: Path) -> None:
    report = load_oneroster_csv(engine, write_drop(tmp_path, DROP), tenant_id=TENANT)

    assert report.problems == []
    assert report.source_system == ONEROSTER_SOURCE_SYSTEM == "OneRoster"
    assert report.rows == ROWS
    assert count_rows(engine, TENANT) == ROWS
    assert report.records == {
        "academicSessions.csv": 3,
        "orgs.csv": 2,
        "courses.csv": 1,
        "classes.csv": 1,
        "users.csv": 3,
        "enrollments.csv": 2,
        "demographics.csv": 1,
    }
    assert dangling(engine, TENANT) == []


@pytest.mark.parametrize("inside", ["", "export-2025-09-01/"], ids=["files-at-root", "in-a-folder"])
def test_load_oneroster_csv_zip_loads_as_the_folder(
    engine: Engine, tmp_path: Path, inside: str
) -> None:
    folder = write_drop(tmp_path / "drop", DROP)
    load_oneroster_csv(engine, folder, tenant_id=TENANT, now=FIRST_LOAD)
    from_folder = whole_store(engine, tracking=False)
    archive = _zip(folder, tmp_path / "drop.zip", inside=inside)

    report = load_oneroster_csv(engine, archive, tenant_id=TENANT, now=FIRST_LOAD)

    assert report.problems == [] and report.rows == ROWS
    assert whole_store(engine, tracking=False) == from_folder


def test_load_oneroster_csv_maps_fields_to_canonical_columns(
    engine: Engine, tmp_path: Path
) -> None:
    load_oneroster_csv(engine, write_drop(tmp_path, DROP), tenant_id=TENANT, now=FIRST_LOAD)

    orgs = {row["ExternalId"]: row for row in _rows(engine, "Organization")}
    assert (orgs["s1"]["Identifier"], orgs["s1"]["ParentOrganizationId"]) == (
        "NH-001",
        _sid("Organization", "d1"),
    )
    assert (orgs["d1"]["Identifier"], orgs["d1"]["RefOrganizationTypeId"]) == ("d1", "16")
    sessions = {row["ExternalId"]: row for row in _rows(engine, "Session")}
    assert [
        (sessions[key]["RefSessionTypeId"], sessions[key]["ParentSessionId"])
        for key in ("y1", "f1", "q1")
    ] == [("11", ""), ("13", _sid("Session", "y1")), ("13", _sid("Session", "f1"))]
    assert sessions["y1"]["RefAcademicYearId"] == "228"  # 2026

    course = _rows(engine, "Course")[0]
    assert (course["Code"], course["AcademicYearSessionId"], course["OrganizationId"]) == (
        "ALG1",
        _sid("Session", "y1"),
        _sid("Organization", "s1"),
    )
    assert sorted(r["RefGradeLevelId"] for r in _rows(engine, "CourseGradeLevel")) == ["170", "171"]
    assert [r["RefAcademicSubjectId"] for r in _rows(engine, "CourseSubject")] == ["35"]
    section = _rows(engine, "Section")[0]
    assert (section["Name"], section["Code"], section["Location"], section["CourseId"]) == (
        "Algebra I, period 1",
        "ALG1-1",
        "Room 101",
        _sid("Course", "c1"),
    )
    assert {r["SessionId"] for r in _rows(engine, "SectionSession")} == {
        _sid("Session", "f1"),
        _sid("Session", "q1"),
    }

    ann = _sid("Person", "u1")
    person = next(r for r in _rows(engine, "Person") if r["Id"] == ann)
    assert (person["GivenName"], person["MiddleName"], person["Surname"]) == ("Ann", "Marie", "Lee")
    assert {
        (r["RefIdentifierTypeId"], r["Identifier"])
        for r in _rows(engine, "PersonIdentifier")
        if r["PersonId"] == ann
    } == {
        ("203", "User_u1"),
        ("257", "OneRoster_User_u1"),
        ("201", "u1"),
        ("197", "ann@x.example"),
        ("198", "S-0001"),
        ("195", "F-1"),
    }
    assert [
        r["EmailAddress"] for r in _rows(engine, "PersonEmailAddress") if r["PersonId"] == ann
    ] == ["ann@x.example"]
    assert sorted(
        (r["PhoneNumber"], r["RefPhoneNumberTypeId"]) for r in _rows(engine, "PersonPhoneNumber")
    ) == [("+15551230002", "1"), ("+15551230003", "5")]
    roles = {row["ExternalId"]: row for row in _rows(engine, "PersonOrganizationRole")}
    assert set(roles) == {
        "Role_s1_OneRoster_User_u1_student",
        "Role_s1_OneRoster_User_t1_teacher",
        "Role_d1_OneRoster_User_t1_teacher",
        "Role_s1_OneRoster_User_p1_parent",
    }
    student = roles["Role_s1_OneRoster_User_u1_student"]
    assert (student["RefRoleId"], student["RefGradeLevelId"], student["IsPrimary"]) == (
        "122",
        "170",
        True,
    )
    assert roles["Role_d1_OneRoster_User_t1_teacher"]["IsPrimary"] is False
    assert [
        (r["PersonId"], r["RelatedPersonId"], r["RefPersonRelationshipId"])
        for r in _rows(engine, "PersonRelationship")
    ] == [(ann, _sid("Person", "p1"), "215")]

    enrollments = {row["ExternalId"]: row for row in _rows(engine, "Enrollment")}
    assert (
        enrollments["e1"]["RefSectionRoleId"],
        enrollments["e1"]["EntryDate"],
        enrollments["e1"]["IsPrimaryStaffForSection"],
    ) == ("234", "2025-08-25", False)
    assert enrollments["e2"]["IsPrimaryStaffForSection"] is True

    demographic = _rows(engine, "PersonDemographic")[0]
    assert (
        demographic["PersonId"],
        demographic["BirthDate"],
        demographic["RefSexId"],
        demographic["BirthState"],
        demographic["BirthCountryCode"],
        demographic["BirthCity"],
    ) == (ann, "2010-03-04", "58", "WA", "US", "Seattle")
    assert sorted(r["RefRaceId"] for r in _rows(engine, "PersonDemographicRace")) == [
        "188",
        "191",
        "192",
    ]
    assert [r["RefEthnicityId"] for r in _rows(engine, "PersonDemographicEthnicity")] == ["193"]


PLANTED = [
    pytest.param(
        "enrollments.csv",
        3,
        "e2,,,k1,s1,u9,teacher,true,,",
        [("error", "enrollments.csv", 3, "userSourcedId", "u9")],
        {"Enrollment": -1},
        id="unknown-user-in-enrollments",
    ),
    pytest.param(
        "users.csv",
        3,
        't1,,,true,"s1,s9",teacher,tia@x.example,,Tia,Fox,,T-01,tia@x.example,,,,,',
        [
            ("error", "users.csv", 3, "orgSourcedIds", "s9"),
            ("error", "enrollments.csv", 3, "userSourcedId", "t1"),
        ],
        {
            "Person": -1,
            "PersonIdentifier": -5,
            "PersonEmailAddress": -1,
            "PersonPhoneNumber": -1,
            "PersonOrganizationRole": -2,
            "Enrollment": -1,
        },
        id="unknown-org-in-users-cascades",
    ),
    pytest.param(
        "users.csv",
        2,
        "u1,,,true,s1,wizard,ann@x.example,,Ann,Lee,,,,,,,,",
        [
            ("error", "users.csv", 2, "role", "wizard"),
            ("warning", "users.csv", 4, "agentSourcedIds", "u1"),
            ("error", "enrollments.csv", 2, "userSourcedId", "u1"),
            ("error", "demographics.csv", 2, "sourcedId", "u1"),
        ],
        {
            "Person": -1,
            "PersonIdentifier": -6,
            "PersonEmailAddress": -1,
            "PersonOrganizationRole": -1,
            "PersonRelationship": -1,
            "Enrollment": -1,
            "PersonDemographic": -1,
            "PersonDemographicEthnicity": -1,
            "PersonDemographicRace": -3,
        },
        id="bad-enum",
    ),
    pytest.param(
        "users.csv",
        4,
        "p1,,,maybe,s1,parent,pat@mail.example,,Pat,Lee,,,pat@mail.example,+15551230003,,u1,,",
        [
            ("error", "users.csv", 4, "enabledUser", "maybe"),
            ("warning", "users.csv", 2, "agentSourcedIds", "p1"),
        ],
        {
            "Person": -1,
            "PersonIdentifier": -4,
            "PersonEmailAddress": -1,
            "PersonPhoneNumber": -1,
            "PersonOrganizationRole": -1,
            "PersonRelationship": -1,
        },
        id="bad-boolean",
    ),
    pytest.param(
        "enrollments.csv",
        3,
        "e1,,,k1,s1,t1,teacher,true,,",
        [("error", "enrollments.csv", 3, "sourcedId", "e1")],
        {"Enrollment": -1},
        id="duplicate-key",
    ),
    pytest.param(
        "enrollments.csv",
        2,
        "e1,,,k1,s1,u1,student,false,2025-13-01,",
        [("error", "enrollments.csv", 2, "beginDate", "2025-13-01")],
        {"Enrollment": -1},
        id="bad-date",
    ),
    pytest.param(
        "users.csv",
        4,
        "p1,,,true,s1,parent,pat@mail.example,{LDAP:pat},Pat,Lee,,,pat-at-mail,555,,u1,,",
        [
            ("warning", "users.csv", 4, "email", "pat-at-mail"),
            ("warning", "users.csv", 4, "sms", "555"),
            ("warning", "users.csv", 4, "userIds", "{LDAP:pat}"),
        ],
        {"PersonEmailAddress": -1, "PersonPhoneNumber": -1},
        id="bad-optional-values-are-dropped",
    ),
    pytest.param(
        "classes.csv",
        2,
        'k1,,,Algebra,09,c1,ALG1-1,scheduled,,s1,"f1,x9",,,',
        [("warning", "classes.csv", 2, "termSourcedIds", "x9")],
        {"SectionSession": -1, "SectionSubject": -1},
        id="unknown-term-is-dropped",
    ),
    pytest.param(
        "enrollments.csv",
        3,
        "e2,tobedeleted,,k1,s1,t1,teacher,true,,",
        [("warning", "enrollments.csv", 3, "status", "tobedeleted")],
        {"Enrollment": -1},
        id="tobedeleted-is-not-loaded",
    ),
]


@pytest.mark.parametrize(("file", "line", "content", "expected", "changes"), PLANTED)
def test_load_oneroster_csv_planted_mistake_reported_and_record_handled(
    engine: Engine,
    tmp_path: Path,
    file: str,
    line: int,
    content: str,
    expected: list[tuple],
    changes: dict[str, int],
) -> None:
    load_oneroster_csv(engine, write_drop(tmp_path / "base", DROP), tenant_id=OTHER_TENANT)
    planted = DROP | {file: with_line(DROP[file], line, content)}

    report = load_oneroster_csv(engine, write_drop(tmp_path / "planted", planted), tenant_id=TENANT)

    assert problems_of(report) == expected
    assert count_rows(engine, TENANT) == {
        name: rows + changes.get(name, 0) for name, rows in count_rows(engine, OTHER_TENANT).items()
    }
    assert all(problem.reason for problem in report.problems)
    assert not any("Secret" in str(problem) for problem in report.problems)
    assert dangling(engine, TENANT) == []


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"manifest.csv": None}, [("error", "manifest.csv", None, None, None)], id="no-manifest"
        ),
        pytest.param(
            {"manifest.csv": MANIFEST.replace("file.users,bulk", "file.users,delta")},
            [("error", "manifest.csv", 16, "value", None)],
            id="delta-file",
        ),
        pytest.param(
            {"manifest.csv": MANIFEST.replace("file.orgs,bulk\n", "")},
            [("error", "manifest.csv", None, None, None)],
            id="roster-file-not-in-manifest",
        ),
        pytest.param(
            {"manifest.csv": MANIFEST.replace("file.users,bulk", "file.users,absent")},
            [("error", "manifest.csv", None, None, None)],
            id="users-absent",
        ),
        pytest.param(
            {"manifest.csv": MANIFEST.replace("oneroster.version,1.1", "oneroster.version,1.2")},
            [("error", "manifest.csv", 3, "value", None)],
            id="other-version",
        ),
        pytest.param(
            {"enrollments.csv": None},
            [("error", "enrollments.csv", None, None, None)],
            id="bulk-file-missing",
        ),
        pytest.param(
            {"classes.csv": "sourcedId,title,courseSourcedId,classType,schoolSourcedId\n"},
            [("error", "classes.csv", 1, "termSourcedIds", None)],
            id="missing-header",
        ),
        pytest.param(
            {"users.csv": DROP["users.csv"].replace("givenName", "GivenName")},
            [("error", "users.csv", 1, "givenName", None)],
            id="header-is-case-sensitive",
        ),
    ],
)
def test_load_oneroster_csv_structural_problem_raises_and_changes_nothing(
    engine: Engine, tmp_path: Path, files: dict[str, str | None], expected: list[tuple]
) -> None:
    load_oneroster_csv(engine, write_drop(tmp_path / "good", DROP), tenant_id=TENANT)
    before = whole_store(engine)
    broken = write_drop(
        tmp_path / "broken",
        {name: text for name, text in (DROP | files).items() if text is not None},
    )

    with pytest.raises(LoadError) as raised:
        load_oneroster_csv(engine, broken, tenant_id=TENANT, now=SECOND_LOAD)

    assert problems_of(raised.value) == expected
    assert whole_store(engine) == before


def test_load_oneroster_csv_file_listed_absent_is_not_read(engine: Engine, tmp_path: Path) -> None:
    manifest = MANIFEST.replace("file.demographics,bulk", "file.demographics,absent")

    report = load_oneroster_csv(
        engine, write_drop(tmp_path, DROP | {"manifest.csv": manifest}), tenant_id=TENANT
    )

    assert problems_of(report) == [("warning", "demographics.csv", None, None, None)]
    assert count_rows(engine, TENANT)["PersonDemographic"] == 0


def test_load_oneroster_csv_reload_keeps_ids_and_marks_missing_records_inactive(
    engine: Engine, tmp_path: Path
) -> None:
    load_oneroster_csv(engine, write_drop(tmp_path / "one", DROP), tenant_id=TENANT, now=FIRST_LOAD)
    first = {name: _rows(engine, name) for name in ROWS}
    without_e1 = DROP | {"enrollments.csv": with_line(DROP["enrollments.csv"], 2, None)}

    report = load_oneroster_csv(
        engine, write_drop(tmp_path / "two", without_e1), tenant_id=TENANT, now=SECOND_LOAD
    )

    assert report.problems == []
    enrollments = {row["ExternalId"]: row for row in _rows(engine, "Enrollment")}
    assert (enrollments["e1"]["IsActiveInSession"], enrollments["e1"]["LastSeenDateTime"]) == (
        False,
        FIRST_LOAD,
    )
    assert (enrollments["e2"]["IsActiveInSession"], enrollments["e2"]["LastSeenDateTime"]) == (
        True,
        SECOND_LOAD,
    )
    for name in ("Person", "PersonIdentifier", "Section", "PersonOrganizationRole"):
        again = _rows(engine, name)
        assert [row.get("Id", row.get("PersonId")) for row in again] == [
            row.get("Id", row.get("PersonId")) for row in first[name]
        ], name
        assert [row["FirstSeenDateTime"] for row in again] == [FIRST_LOAD] * len(again), name


def test_load_oneroster_csv_and_sds_csv_share_the_tenant_roster(
    engine: Engine, tmp_path: Path
) -> None:
    """A tenant's full load replaces its roster whatever the format: the SDS rows it does not
    repeat stay, inactive where the table has the flag."""
    sds = {
        "orgs.csv": "sourcedId,name,type\ns1,North High,school\n",
        "users.csv": "sourcedId,username\nu1,ann@x.example\n",
        "roles.csv": "userSourcedId,orgSourcedId,role\nu1,s1,student\n",
    }
    load_sds_csv(engine, write_drop(tmp_path / "sds", sds), tenant_id=TENANT, now=FIRST_LOAD)

    load_oneroster_csv(engine, write_drop(tmp_path / "or", DROP), tenant_id=TENANT, now=SECOND_LOAD)

    roles = _rows(engine, "PersonOrganizationRole")
    assert len(roles) == ROWS["PersonOrganizationRole"] + 1
    assert (
        sorted((row["IsActiveInSession"], row["LastSeenDateTime"]) for row in roles)
        == [(False, FIRST_LOAD)] + [(True, SECOND_LOAD)] * ROWS["PersonOrganizationRole"]
    )
    assert len(_rows(engine, "SourceSystem")) == 2
