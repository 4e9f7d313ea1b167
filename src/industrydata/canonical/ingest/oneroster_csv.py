"""Loading a OneRoster 1.1 CSV upload (bulk mode) into the same canonical tables as SDS.

The field-by-field mapping is documented in ``docs/oneroster-csv-mapping.md``. The upload is
a folder or a zip archive with ``manifest.csv`` and the files it lists as ``bulk``. Only bulk
uploads are full loads: a ``delta`` file, a missing manifest entry for a roster file, or
``orgs``/``users`` not listed as bulk is a structural problem and nothing is loaded.
Gradebook and resource files (categories, lineItems, results, resources, classResources,
courseResources) carry no roster data and are not read. Records are validated and mapped as
in the SDS loader: an error rejects the record, a warning drops an optional value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from ...errors import LoadProblem
from ...observability import observe_import_rows
from ..vocabulary import ref_id
from ._csv import CsvFile, RecordReader, check_structure, structural
from ._deferred import Deferred
from ._keys import KeyBudget, KeyLookup, KeyTable, KnownIds, fingerprint
from ._limits import DEFAULT_LIMITS, ReadLimits
from ._load import Load, anchor_id, run_load, user_match_id
from ._problems import ProblemLog
from ._record import Record, ref_code
from ._source import Upload
from .progress import ProgressCallback
from .report import LoadReport

__all__ = ["ONEROSTER_FILES", "ONEROSTER_SOURCE_SYSTEM", "load_oneroster_csv"]

ONEROSTER_SOURCE_SYSTEM = "OneRoster"

MANIFEST = CsvFile("manifest.csv", required=True, required_headers=("propertyName", "value"))
ACADEMIC_SESSIONS = CsvFile(
    "academicSessions.csv",
    required=False,
    required_headers=("sourcedId", "title", "type", "startDate", "endDate", "schoolYear"),
    optional_headers=("status", "dateLastModified", "parentSourcedId"),
)
ORGS = CsvFile(
    "orgs.csv",
    required=True,
    required_headers=("sourcedId", "name", "type"),
    optional_headers=("status", "dateLastModified", "identifier", "parentSourcedId"),
)
COURSES = CsvFile(
    "courses.csv",
    required=False,
    required_headers=("sourcedId", "title", "orgSourcedId"),
    optional_headers=(
        "status",
        "dateLastModified",
        "schoolYearSourcedId",
        "courseCode",
        "grades",
        "subjects",
        "subjectCodes",
    ),
)
CLASSES = CsvFile(
    "classes.csv",
    required=False,
    required_headers=(
        "sourcedId",
        "title",
        "courseSourcedId",
        "classType",
        "schoolSourcedId",
        "termSourcedIds",
    ),
    optional_headers=(
        "status",
        "dateLastModified",
        "grades",
        "classCode",
        "location",
        "subjects",
        "subjectCodes",
        "periods",
    ),
)
USERS = CsvFile(
    "users.csv",
    required=True,
    required_headers=(
        "sourcedId",
        "enabledUser",
        "orgSourcedIds",
        "role",
        "username",
        "givenName",
        "familyName",
    ),
    optional_headers=(
        "status",
        "dateLastModified",
        "userIds",
        "middleName",
        "identifier",
        "email",
        "sms",
        "phone",
        "agentSourcedIds",
        "grades",
        "password",
    ),
)
ENROLLMENTS = CsvFile(
    "enrollments.csv",
    required=False,
    required_headers=("sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role"),
    optional_headers=("status", "dateLastModified", "primary", "beginDate", "endDate"),
)
_RACES = (
    "americanIndianOrAlaskaNative",
    "asian",
    "blackOrAfricanAmerican",
    "nativeHawaiianOrOtherPacificIslander",
    "white",
    "demographicRaceTwoOrMoreRaces",
)
DEMOGRAPHICS = CsvFile(
    "demographics.csv",
    required=False,
    required_headers=("sourcedId",),
    optional_headers=(
        "status",
        "dateLastModified",
        "birthDate",
        "sex",
        *_RACES,
        "hispanicOrLatinoEthnicity",
        "countryOfBirthCode",
        "stateOfBirthAbbreviation",
        "cityOfBirth",
        "publicSchoolResidenceStatus",
    ),
)

ONEROSTER_FILES: tuple[CsvFile, ...] = (
    ACADEMIC_SESSIONS,
    ORGS,
    COURSES,
    CLASSES,
    USERS,
    ENROLLMENTS,
    DEMOGRAPHICS,
)
"""The roster files of the format, in the order they load (referenced files first)."""

_NOT_ROSTER = frozenset(
    {"categories", "classResources", "courseResources", "lineItems", "resources", "results"}
)
_MODES = frozenset({"bulk", "absent", "delta"})
_CONTACT_ROLES = frozenset({"parent", "guardian", "relative"})
_USER_ID = re.compile(r"\{([^:{}]*):([^{}]*)\}")
_TERM = str(ref_id("RefSessionType", "term"))
_HISPANIC = str(ref_id("RefEthnicity", "hispanicOrLatinoEthnicity"))
_RACE_IDS = {column: str(ref_id("RefRace", column)) for column in _RACES}


def load_oneroster_csv(
    engine: Engine,
    path: Path,
    *,
    tenant_id: str,
    now: datetime | None = None,
    progress: ProgressCallback | None = None,
    parallel: bool | None = None,
    report_path: Path | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> LoadReport:
    """Load a OneRoster 1.1 CSV upload (bulk) as a full upload for ``tenant_id``.

    Args:
        engine: the canonical store.
        path: a folder or zip archive with ``manifest.csv`` and the files it lists.
        tenant_id: the tenant whose canonical data this upload replaces.
        now: the time the load is recorded at (FirstSeen/LastSeen); default the current
            UTC time. Naive values are taken as UTC.
        progress: called while each file is read (see ``FileProgress``).
        parallel: read the files in a child process while this one writes the rows;
            default: for uploads of ``PARALLEL_FROM_BYTES`` and more.
        report_path: a CSV file to write every problem to, as it is found (created or
            emptied first); the report holds the first ones and counts.
        limits: the bounds of reading (``ReadLimits``; the defaults suit any district).

    Returns:
        Rows written per table, records read and rejected per file, the problems. Records
        rejected (``report.rejected_records``) were left out and the rest loaded.

    Raises:
        LoadError: the manifest is missing or not a bulk roster upload, a listed file or a
            required header is missing, a file is not readable CSV or breaks a limit of
            ``limits``, or a file has too many rejected records; nothing was written.
    """
    report = run_load(
        _OneRosterLoad,
        engine,
        path,
        tenant_id=tenant_id,
        now=now,
        progress=progress,
        parallel=parallel,
        what="OneRoster 1.1 CSV",
        limits=limits,
        report_path=report_path,
    )
    observe_import_rows("oneroster-csv", sum(report.rows.values()))
    return report


def _manifest(upload: Upload, problems: ProblemLog) -> dict[str, str]:
    """``file.*`` entries of the manifest by file name (``users.csv`` → ``bulk``); a manifest
    longer than ``max_members`` entries is a structural problem (it names files and a few
    properties) and is read no further."""
    modes: dict[str, str] = {}
    for count, record in enumerate(RecordReader(upload, MANIFEST, problems)):
        if count >= upload.limits.max_members:
            reason = f"more than {upload.limits.max_members:,} entries; not read further"
            problems.append(structural(MANIFEST.name, record.line, None, reason))
            break
        if record.rejected:
            continue
        name, value = record.values["propertyName"], record.values["value"]
        if name == "oneroster.version" and value != "1.1":
            problems.append(
                structural(MANIFEST.name, record.line, "value", f"OneRoster {value} is not 1.1")
            )
        if not name.startswith("file.") or name[5:] in _NOT_ROSTER:
            continue
        mode = value.casefold()
        if mode not in _MODES:
            reason = f"{name} must be bulk, absent or delta, not {value!r}"
            problems.append(structural(MANIFEST.name, record.line, "value", reason))
        elif mode == "delta":
            reason = f"{name} is delta: only bulk uploads can be loaded as a full upload"
            problems.append(structural(MANIFEST.name, record.line, "value", reason))
        modes[name[5:] + ".csv"] = mode
    return modes


class _OneRosterLoad(Load):
    """One OneRoster load in progress: the keys seen so far, by file."""

    source_system = ONEROSTER_SOURCE_SYSTEM

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.sessions = KnownIds(self.mint["Session"], self.key_budget)
        self.orgs = KnownIds(self.mint["Organization"], self.key_budget)
        self.courses = KnownIds(self.mint["Course"], self.key_budget)
        self.classes = KnownIds(self.mint["Section"], self.key_budget)
        self.users = KnownIds(self.mint["Person"], self.key_budget)
        self._roles = _UserRoles(self.key_budget)
        self._pending = Deferred()
        """(file, line, parentSourcedId, row) of the sessions or orgs read, until all are known."""
        self._agents = Deferred()
        """(line, user, agent) of each entry of ``agentSourcedIds``, until all users are known."""

    def close(self) -> None:
        self._pending.close()
        self._agents.close()
        super().close()

    @classmethod
    def check(cls, upload: Upload) -> list[LoadProblem]:
        problems = check_structure(upload, (MANIFEST,))
        if problems:
            return problems
        manifest_problems = ProblemLog(upload.limits)
        modes = _manifest(upload, manifest_problems)
        problems = list(manifest_problems)
        listed = tuple(spec for spec in ONEROSTER_FILES if modes.get(spec.name) == "bulk")
        for spec in ONEROSTER_FILES:
            entry = f"file.{spec.name.removesuffix('.csv')}"
            if spec.name not in modes:
                problems.append(structural(MANIFEST.name, None, None, f"{entry} is not listed"))
            elif spec.required and modes[spec.name] == "absent":
                reason = f"{entry} is absent: a full upload needs it as bulk"
                problems.append(structural(MANIFEST.name, None, None, reason))
            elif modes[spec.name] == "bulk" and spec.name not in upload.names:
                reason = "listed as bulk in manifest.csv but missing"
                problems.append(structural(spec.name, None, None, reason))
        present = tuple(spec for spec in listed if spec.name in upload.names)
        return problems + check_structure(upload, present)

    def load_files(self) -> None:
        modes = _manifest(self.upload, ProblemLog(self.upload.limits))
        steps: dict[str, Callable[[Record], None]] = {
            ACADEMIC_SESSIONS.name: self._session,
            ORGS.name: self._org,
            COURSES.name: self._course,
            CLASSES.name: self._class,
            USERS.name: self._user,
            ENROLLMENTS.name: self._enrollment,
            DEMOGRAPHICS.name: self._demographic,
        }
        for spec in ONEROSTER_FILES:
            if modes.get(spec.name) == "bulk":
                self.read(spec, steps[spec.name])
            elif spec.name in self.upload.names:
                reason = "manifest.csv lists the file as absent; not read"
                self.problems.append(LoadProblem("warning", spec.name, None, None, None, reason))
            if spec is ACADEMIC_SESSIONS:
                self._write_pending("Session", "ParentSessionId", self.sessions, "academic session")
            elif spec is ORGS:
                self._write_pending("Organization", "ParentOrganizationId", self.orgs, "org")
            elif spec is USERS:
                self._write_relationships()

    def _keep(self, record: Record) -> bool:
        """False when the record is rejected, marked ``tobedeleted`` or a duplicate."""
        if record.values.get("status", "").casefold() == "tobedeleted":
            reason = "status is tobedeleted; record not loaded"
            record.warning("status", record.values["status"], reason)
            return False
        if record.rejected:
            return False
        return self.claim(record, "sourcedId", fingerprint(record.values["sourcedId"]))

    def _write_pending(self, table: str, column: str, known: KeyLookup, what: str) -> None:
        """Rows whose parent may come later in their own file, written once all are known."""
        for file, line, parent_key, row in self._pending.drain():
            record = Record(file, line, {"parentSourcedId": parent_key}, self.problems)
            row[column] = record.reference("parentSourcedId", known, what)
            self.add(table, **row)

    def _put_aside(self, record: Record, row: dict[str, object]) -> None:
        parent_key = record.values.get("parentSourcedId", "")
        self._pending.append((record.file, record.line, parent_key, row))

    def _session(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        title = record.text("title", required=True)
        if record.text("type").casefold() == "gradingperiod":
            session_type = _TERM  # the export's vocabulary has no grading period
        else:
            session_type = record.enum("type", "RefSessionType", required=True)
        start = record.date("startDate", required=True)
        end = record.date("endDate", required=True)
        year = record.enum("schoolYear", "RefAcademicYear", required=True)
        if start and end and end < start:
            record.error("endDate", end, "endDate is before startDate")
        if not self._keep(record):
            return
        session_id = self.mint["Session"](key)
        self.sessions.add(session_id)
        row = {
            "Id": session_id,
            "EndDate": end,
            "ExternalId": key,
            "Name": title,
            "RefAcademicYearId": year,
            "RefSessionTypeId": session_type,
            "StartDate": start,
        }
        self._put_aside(record, row)

    def _org(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        name = record.text("name", required=True)
        org_type = record.enum("type", "RefOrgType", required=True)
        if not self._keep(record):
            return
        org_id = self.mint["Organization"](key)
        self.orgs.add(org_id)
        row = {
            "Id": org_id,
            "ExternalId": key,
            "Name": name,
            "RefOrganizationTypeId": org_type,
            "Identifier": record.text("identifier") or key,
        }
        self._put_aside(record, row)

    def _course(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        title = record.text("title", required=True)
        org = record.reference("orgSourcedId", self.orgs, "org", required=True)
        year = record.reference("schoolYearSourcedId", self.sessions, "academic session")
        grades = record.enums("grades", "RefGradeLevel")
        subjects = _subject_codes(record)
        if not self._keep(record):
            return
        course_id = self.mint["Course"](key)
        self.courses.add(course_id)
        self.add(
            "Course",
            Id=course_id,
            AcademicYearSessionId=year,
            ExternalId=key,
            Name=title,
            OrganizationId=org,
            Code=record.text("courseCode"),
        )
        self.add_links("CourseGradeLevel", key, {"CourseId": course_id}, "RefGradeLevelId", grades)
        self.add_links(
            "CourseSubject", key, {"CourseId": course_id}, "RefAcademicSubjectId", subjects
        )

    def _class(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        title = record.text("title", required=True)
        course = record.reference("courseSourcedId", self.courses, "course", required=True)
        record.enum("classType", "RefSectionType", required=True)
        school = record.reference("schoolSourcedId", self.orgs, "org", required=True)
        record.text("termSourcedIds", required=True)
        terms = record.references("termSourcedIds", self.sessions, "academic session")
        grades = record.enums("grades", "RefGradeLevel")
        subjects = _subject_codes(record)
        if not self._keep(record):
            return
        section_id = self.mint["Section"](key)
        self.classes.add(section_id)
        self.add(
            "Section",
            Id=section_id,
            ExternalId=key,
            Name=title,
            OrganizationId=school,
            Code=record.text("classCode"),
            CourseId=course,
            Location=record.text("location"),
        )
        self.add_links("SectionSession", key, {"SectionId": section_id}, "SessionId", terms)
        self.add_links(
            "SectionGradeLevel", key, {"SectionId": section_id}, "RefGradeLevelId", grades
        )
        self.add_links(
            "SectionSubject", key, {"SectionId": section_id}, "RefAcademicSubjectId", subjects
        )

    def _user(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        record.boolean("enabledUser", required=True)
        record.text("orgSourcedIds", required=True)
        orgs = _references_required(record, "orgSourcedIds", self.orgs, "org")
        role = record.enum("role", "RefRole", required=True)
        username = record.text("username", required=True)
        given = record.text("givenName", required=True)
        family = record.text("familyName", required=True)
        grades = record.enums("grades", "RefGradeLevel")
        email = record.email("email")
        phones = [(column, record.phone(column)) for column in ("phone", "sms")]
        user_ids = _user_ids(record)
        if not self._keep(record):
            return
        person_id = self.mint["Person"](key)
        self.users.add(person_id)
        role_code = ref_code(role)
        self._roles.set(key, role_code)
        self.add(
            "Person",
            Id=person_id,
            GivenName=given,
            MiddleName=record.text("middleName"),
            Surname=family,
        )
        identifiers = {
            "SDSAnchorId": anchor_id(key),
            "userMatchId": user_match_id(ONEROSTER_SOURCE_SYSTEM, key),
            "sourceExternalId": key,
            "username": username,
            "identifier": record.text("identifier"),
        }
        identifiers |= {code: value for code, value in user_ids.items() if code not in identifiers}
        self.add_contacts(key, person_id, identifiers, email, phones)
        for position, (org_key, org_id) in enumerate(orgs):
            parts = ("Role", org_key, user_match_id(ONEROSTER_SOURCE_SYSTEM, key), role_code)
            self.add(
                "PersonOrganizationRole",
                Id=self.mint["PersonOrganizationRole"](key, org_key, role_code, ""),
                ExternalId="_".join(parts),
                OrganizationId=org_id,
                PersonId=person_id,
                RefRoleId=role,
                IsPrimary=position == 0,
                RefGradeLevelId=grades[0] if grades else "",
            )
        for agent in _split(record.values.get("agentSourcedIds", "")):
            self._agents.append((record.line, key, agent))

    def _write_relationships(self) -> None:
        """PersonRelationship rows from ``agentSourcedIds``, once every user is known: one row
        per (user, contact) pair where exactly one side is a parent, guardian or relative,
        whichever side lists the other."""
        related = KeyTable(budget=self.key_budget)
        person = self.mint["Person"]
        for line, key, agent in self._agents.drain():
            record = Record(USERS.name, line, {}, self.problems)
            agent_role = self._roles.get(agent)
            if agent_role is None:
                record.warning("agentSourcedIds", agent, "no user with this sourcedId; left out")
                continue
            own_role = self._roles.get(key) or ""
            if (agent_role in _CONTACT_ROLES) == (own_role in _CONTACT_ROLES):
                reason = "neither or both users are a parent, guardian or relative; left out"
                record.warning("agentSourcedIds", agent, reason)
                continue
            child, contact, relation = (
                (key, agent, agent_role) if agent_role in _CONTACT_ROLES else (agent, key, own_role)
            )
            if not related.add(fingerprint(child, contact)):
                continue
            relationship = str(ref_id("RefPersonRelationship", relation))
            self.add(
                "PersonRelationship",
                Id=self.mint["PersonRelationship"](child, contact, relationship),
                PersonId=person(child),
                RefPersonRelationshipId=relationship,
                RelatedPersonId=person(contact),
            )

    def _enrollment(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        section = record.reference("classSourcedId", self.classes, "class", required=True)
        record.reference("schoolSourcedId", self.orgs, "org", required=True)
        person = record.reference("userSourcedId", self.users, "user", required=True)
        role = record.enum("role", "RefSectionRole", required=True)
        primary = record.boolean("primary")
        begin = record.date("beginDate")
        end = record.date("endDate")
        if not self._keep(record):
            return
        self.add(
            "Enrollment",
            Id=self.mint["Enrollment"](key),
            ExternalId=key,
            PersonId=person,
            RefSectionRoleId=role,
            SectionId=section,
            EntryDate=begin,
            ExitDate=end,
            IsPrimaryStaffForSection=bool(primary),
        )

    def _demographic(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        person = record.reference("sourcedId", self.users, "user", required=True)
        sex = record.enum("sex", "RefSex")
        birth_date = record.date("birthDate")
        state = record.enum("stateOfBirthAbbreviation", "RefState")
        races = [_RACE_IDS[column] for column in _RACES if record.boolean(column)]
        hispanic = record.boolean("hispanicOrLatinoEthnicity")
        if not self._keep(record):
            return
        self.add(
            "PersonDemographic",
            PersonId=person,
            BirthCity=record.text("cityOfBirth"),
            BirthCountryCode=record.text("countryOfBirthCode"),
            BirthDate=birth_date,
            BirthState=ref_code(state) if state else "",
            RefSexId=sex,
        )
        if hispanic:
            self.add(
                "PersonDemographicEthnicity",
                Id=self.mint["PersonDemographicEthnicity"](key, _HISPANIC),
                PersonId=person,
                RefEthnicityId=_HISPANIC,
            )
        self.add_links("PersonDemographicRace", key, {"PersonId": person}, "RefRaceId", races)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _references_required(
    record: Record, column: str, known: KeyLookup, what: str
) -> list[tuple[str, str]]:
    """(source key, canonical id) of each entry of a list whose entries must all exist."""
    found: dict[str, str] = {}
    for key in _split(record.values.get(column, "")):
        canonical_id = known.get(key)
        if canonical_id is not None:
            found.setdefault(key, canonical_id)
        else:
            record.error(column, key, f"no {what} with this sourcedId")
    return list(found.items())


def _subject_codes(record: Record) -> list[str]:
    """RefAcademicSubject ids of ``subjectCodes``: SCED codes, of which the first two digits
    name the subject area (``03001`` → ``03``)."""
    ids: list[str] = []
    for code in _split(record.values.get("subjectCodes", "")):
        area = code[:2] if len(code) == 5 and code.isdigit() else code
        found = ref_id("RefAcademicSubject", area)
        if found is None:
            record.error("subjectCodes", code, "not a SCED subject code")
        elif str(found) not in ids:
            ids.append(str(found))
    return ids


def _user_ids(record: Record) -> dict[str, str]:
    """``userIds`` entries ``{type:identifier}`` by RefIdentifierType code; an unknown type
    or a malformed entry is left out with a warning."""
    value = record.values.get("userIds", "")
    found: dict[str, str] = {}
    for kind, identifier in _USER_ID.findall(value):
        known = ref_id("RefIdentifierType", kind)
        if known is None or not identifier.strip():
            reason = "not a RefIdentifierType with an identifier; left out"
            record.warning("userIds", f"{{{kind}:{identifier}}}", reason)
        else:
            found.setdefault(ref_code(str(known)), identifier.strip())
    if value and not found and not _USER_ID.search(value):
        record.warning("userIds", value, "not a list of {type:identifier}; left out")
    return found


class _UserRoles:
    """The role code of each user read (for ``agentSourcedIds``), a fingerprint and a small
    number per user (``KeyTable``)."""

    def __init__(self, budget: KeyBudget) -> None:
        self._codes: list[str] = []
        self._numbers: dict[str, int] = {}
        self._roles = KeyTable(values=True, budget=budget)

    def set(self, user_key: str, role_code: str) -> None:
        number = self._numbers.setdefault(role_code, len(self._codes))
        if number == len(self._codes):
            self._codes.append(role_code)
        self._roles.setdefault(fingerprint(user_key), number)

    def get(self, user_key: str) -> str | None:
        number = self._roles.get(fingerprint(user_key))
        return None if number is None else self._codes[number]
