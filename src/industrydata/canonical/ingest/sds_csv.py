"""Loading an SDS v2.1 CSV drop into the canonical store, the way School Data Sync mapped it.

The field-by-field mapping is documented in ``docs/sds-csv-mapping.md``. A load is one
transaction: structural problems (a missing required file or header) reject it before
anything is written; record problems reject the record (error) or drop an optional value
(warning) and the rest commits. Files are streamed and rows upserted in chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Connection, Engine

from ...errors import LoadError, LoadProblem
from ..ids import StableIds, composite_key, source_system_id
from ..tables import CANONICAL_TABLES
from ..vocabulary import REF_DEFINITIONS, ref_id, ref_ids_of_type
from ._csv import CsvFile, check_structure, read_records
from ._record import Record, ref_code
from ._upsert import TableUpsert
from .report import LoadReport

__all__ = ["SDS_FILES", "SOURCE_SYSTEM", "ProgressCallback", "load_sds_csv"]

SOURCE_SYSTEM = "School Data Sync"

ProgressCallback = Callable[[str, int], None]
"""Called with a file name and the records read from it so far."""

ACADEMIC_SESSIONS = CsvFile(
    "academicSessions.csv",
    required=False,
    required_headers=("sourcedId", "title", "type", "schoolYear", "startDate", "endDate"),
)
ORGS = CsvFile(
    "orgs.csv",
    required=True,
    required_headers=("sourcedId", "name", "type"),
    optional_headers=("parentSourcedId",),
)
USERS = CsvFile(
    "users.csv",
    required=True,
    required_headers=("sourcedId", "username"),
    optional_headers=("givenName", "familyName", "activeDirectoryMatchId", "email", "phone", "sms"),
)
COURSES = CsvFile(
    "courses.csv",
    required=False,
    required_headers=("sourcedId", "orgSourcedId", "title"),
    optional_headers=("code", "schoolYearSourcedId", "subject", "grade"),
)
CLASSES = CsvFile(
    "classes.csv",
    required=False,
    required_headers=("sourcedId", "orgSourcedId", "title"),
    optional_headers=("sessionSourcedIds", "courseSourcedId"),
)
ROLES = CsvFile(
    "roles.csv",
    required=True,
    required_headers=("userSourcedId", "orgSourcedId", "role"),
    optional_headers=("sessionSourcedId", "grade", "isPrimary", "roleStartDate", "roleEndDate"),
)
ENROLLMENTS = CsvFile(
    "enrollments.csv",
    required=False,
    required_headers=("classSourcedId", "userSourcedId", "role"),
)
DEMOGRAPHICS = CsvFile(
    "demographics.csv",
    required=False,
    required_headers=("userSourcedId",),
    optional_headers=(
        "sex",
        "birthDate",
        "birthCity",
        "birthState",
        "birthCountry",
        "ethnicityCodes",
        "raceCodes",
    ),
)
USER_FLAGS = CsvFile("userFlags.csv", required=False, required_headers=("userSourcedId", "flag"))
RELATIONSHIPS = CsvFile(
    "relationships.csv",
    required=False,
    required_headers=("userSourcedId", "relationshipUserSourcedId", "relationshipRole"),
)

SDS_FILES: tuple[CsvFile, ...] = (
    ACADEMIC_SESSIONS,
    ORGS,
    USERS,
    COURSES,
    CLASSES,
    ROLES,
    ENROLLMENTS,
    DEMOGRAPHICS,
    USER_FLAGS,
    RELATIONSHIPS,
)
"""The files of the format, in the order they load (referenced files first)."""

_PROGRESS_EVERY = 10_000
_EMAIL_TYPE_OTHER = str(ref_id("RefEmailAddressType", "Other"))
_PHONE_TYPES = (
    ("phone", str(ref_id("RefPhoneNumberType", "Home"))),
    ("sms", str(ref_id("RefPhoneNumberType", "SMS"))),
)
_IDENTIFIER_TYPES = {code: str(id_) for code, id_ in ref_ids_of_type("RefIdentifierType").items()}


def _anchor_id(user_key: str) -> str:
    """The SDS v2.1 anchor of a user (SDS v1 used ``Student_…`` and ``Teacher_…``)."""
    return f"User_{user_key}"


def _user_match_id(user_key: str) -> str:
    """The export's userMatchId: source system name and anchor."""
    return f"{SOURCE_SYSTEM}_{_anchor_id(user_key)}"


def load_sds_csv(
    engine: Engine,
    folder: Path,
    *,
    tenant_id: str,
    now: datetime | None = None,
    progress: ProgressCallback | None = None,
) -> LoadReport:
    """Load the SDS v2.1 CSV files in ``folder`` as a full upload for ``tenant_id``.

    Args:
        engine: the canonical store.
        folder: the folder holding ``orgs.csv``, ``users.csv``, ``roles.csv`` and the
            optional files, named exactly.
        tenant_id: the tenant whose canonical data this upload replaces.
        now: the time the load is recorded at (FirstSeen/LastSeen); default the current
            UTC time. Naive values are taken as UTC.
        progress: called with a file name and the records read from it so far.

    Raises:
        LoadError: a required file or header is missing or a file is not readable CSV;
            nothing was written.
    """
    folder = Path(folder)
    problems = check_structure(folder, SDS_FILES)
    if problems:
        raise LoadError(
            f"the SDS v2.1 CSV upload is incomplete ({len(problems)} structural problems)",
            problems=problems,
        )
    with engine.begin() as connection:
        load = _SdsLoad(connection, folder, tenant_id, _load_time(now), progress)
        return load.run()


def _load_time(now: datetime | None) -> datetime:
    """Naive UTC with millisecond precision, the precision the lake export writes."""
    moment = now or datetime.now(timezone.utc)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class _SdsLoad:
    """One load in progress: the id factory, the table writers and the keys seen so far."""

    def __init__(
        self,
        connection: Connection,
        folder: Path,
        tenant_id: str,
        now: datetime,
        progress: ProgressCallback | None,
    ) -> None:
        self.folder = folder
        self.progress = progress
        self.ids = StableIds(tenant_id, SOURCE_SYSTEM)
        self.source_system_id = source_system_id(tenant_id, SOURCE_SYSTEM)
        self.report = LoadReport(source_system=SOURCE_SYSTEM)
        self.problems: list[LoadProblem] = self.report.problems
        self.tables = {
            table.name: TableUpsert(
                connection,
                table,
                tenant_id=tenant_id,
                source_system_id=self.source_system_id,
                now=now,
            )
            for table in CANONICAL_TABLES
        }
        self.sessions: dict[str, str] = {}
        self.orgs: dict[str, str] = {}
        self.users: dict[str, str] = {}
        self.courses: dict[str, str] = {}
        self.classes: dict[str, str] = {}
        self._pending_orgs: list[tuple[Record, dict[str, str]]] = []
        self._lines: dict[str, int] = {}

    def run(self) -> LoadReport:
        for table in self.tables.values():
            table.mark_all_absent()
        self.add("SourceSystem", Id=self.source_system_id, Name=SOURCE_SYSTEM)
        for ref in REF_DEFINITIONS:
            self.add(
                "RefDefinition",
                Id=str(ref.id),
                Code=ref.code,
                Namespace=ref.namespace,
                RefType=ref.ref_type,
                SortOrder=ref.sort_order,
            )
        steps: dict[str, Callable[[Record], None]] = {
            ACADEMIC_SESSIONS.name: self._session,
            ORGS.name: self._org,
            USERS.name: self._user,
            COURSES.name: self._course,
            CLASSES.name: self._class,
            ROLES.name: self._role,
            ENROLLMENTS.name: self._enrollment,
            DEMOGRAPHICS.name: self._demographic,
            USER_FLAGS.name: self._user_flag,
            RELATIONSHIPS.name: self._relationship,
        }
        present = {path.name for path in self.folder.iterdir()}
        for spec in SDS_FILES:
            if spec.name in present:
                self._read(spec, steps[spec.name])
            if spec is ORGS:
                self._write_orgs()
        for table in self.tables.values():
            table.flush()
        self.report.rows = {name: table.written for name, table in self.tables.items()}
        return self.report

    def add(self, table: str, **row: object) -> None:
        self.tables[table].add(row)

    def _read(self, spec: CsvFile, step: Callable[[Record], None]) -> None:
        self._lines = {}
        count = 0
        for record in read_records(self.folder, spec, self.problems):
            step(record)
            count += 1
            if self.progress and count % _PROGRESS_EVERY == 0:
                self.progress(spec.name, count)
        self.report.records[spec.name] = count
        if self.progress:
            self.progress(spec.name, count)

    def _claim(self, record: Record, column: str, key: str) -> bool:
        """False (and an error) when a record with the same key came earlier in the file."""
        first = self._lines.setdefault(key, record.line)
        if first != record.line:
            reason = f"duplicate of the record on line {first}"
            record.error(column, record.values.get(column), reason)
            return False
        return True

    def _session(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        title = record.text("title", required=True)
        session_type = record.enum("type", "RefSessionType", required=True)
        year = record.enum("schoolYear", "RefAcademicYear", required=True)
        start = record.date("startDate", required=True)
        end = record.date("endDate", required=True)
        if start and end and end < start:
            record.error("endDate", end, "endDate is before startDate")
        if record.rejected or not self._claim(record, "sourcedId", key):
            return
        self.sessions[key] = session_id = self.ids("Session", key)
        self.add(
            "Session",
            Id=session_id,
            EndDate=end,
            ExternalId=key,
            Name=title,
            RefAcademicYearId=year,
            RefSessionTypeId=session_type,
            StartDate=start,
        )

    def _org(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        name = record.text("name", required=True)
        org_type = record.enum("type", "RefOrgType", required=True)
        if record.rejected or not self._claim(record, "sourcedId", key):
            return
        self.orgs[key] = org_id = self.ids("Organization", key)
        row = {"Id": org_id, "ExternalId": key, "Name": name, "RefOrganizationTypeId": org_type}
        self._pending_orgs.append((record, row))

    def _write_orgs(self) -> None:
        """Organizations are written once all are known: a parent may come after its child."""
        for record, row in self._pending_orgs:
            parent = record.reference("parentSourcedId", self.orgs, "org")
            self.add(
                "Organization", **row, Identifier=row["ExternalId"], ParentOrganizationId=parent
            )
        self._pending_orgs = []

    def _user(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        username = record.text("username", required=True)
        email = record.email("email")
        phones = [(column, type_id, record.phone(column)) for column, type_id in _PHONE_TYPES]
        if record.rejected or not self._claim(record, "sourcedId", key):
            return
        self.users[key] = person_id = self.ids("Person", key)
        self.add(
            "Person",
            Id=person_id,
            GivenName=record.text("givenName"),
            Surname=record.text("familyName"),
        )
        identifiers = {
            "SDSAnchorId": _anchor_id(key),
            "identifier": key,
            "userMatchId": _user_match_id(key),
            "sourceExternalId": key,
            "username": username,
            "activeDirectoryMatchId": record.text("activeDirectoryMatchId"),
        }
        for identifier_type, identifier in identifiers.items():
            if identifier:
                self.add(
                    "PersonIdentifier",
                    Id=self.ids("PersonIdentifier", composite_key(key, identifier_type)),
                    Identifier=identifier,
                    PersonId=person_id,
                    RefIdentifierTypeId=_IDENTIFIER_TYPES[identifier_type],
                )
        if email:
            self.add(
                "PersonEmailAddress",
                Id=self.ids("PersonEmailAddress", composite_key(key, "email")),
                EmailAddress=email,
                PersonId=person_id,
                PriorityOrder=1,
                RefEmailAddressTypeId=_EMAIL_TYPE_OTHER,
            )
        priority = 0
        for column, type_id, number in phones:
            if number:
                priority += 1
                self.add(
                    "PersonPhoneNumber",
                    Id=self.ids("PersonPhoneNumber", composite_key(key, column)),
                    PersonId=person_id,
                    PhoneNumber=number,
                    PriorityOrder=priority,
                    RefPhoneNumberTypeId=type_id,
                )

    def _course(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        org = record.reference("orgSourcedId", self.orgs, "org", required=True)
        title = record.text("title", required=True)
        year = record.reference("schoolYearSourcedId", self.sessions, "academic session")
        subject = record.enum("subject", "RefAcademicSubject")
        grade = record.enum("grade", "RefGradeLevel")
        if record.rejected or not self._claim(record, "sourcedId", key):
            return
        self.courses[key] = course_id = self.ids("Course", key)
        self.add(
            "Course",
            Id=course_id,
            AcademicYearSessionId=year,
            ExternalId=key,
            Name=title,
            OrganizationId=org,
            Code=record.text("code"),
        )
        if subject:
            self.add(
                "CourseSubject",
                Id=self.ids("CourseSubject", key),
                CourseId=course_id,
                RefAcademicSubjectId=subject,
            )
        if grade:
            self.add(
                "CourseGradeLevel",
                Id=self.ids("CourseGradeLevel", key),
                CourseId=course_id,
                RefGradeLevelId=grade,
            )

    def _class(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        org = record.reference("orgSourcedId", self.orgs, "org", required=True)
        title = record.text("title", required=True)
        sessions = record.references("sessionSourcedIds", self.sessions, "academic session")
        course = record.reference("courseSourcedId", self.courses, "course")
        if record.rejected or not self._claim(record, "sourcedId", key):
            return
        self.classes[key] = section_id = self.ids("Section", key)
        self.add(
            "Section",
            Id=section_id,
            ExternalId=key,
            Name=title,
            OrganizationId=org,
            CourseId=course,
        )
        for session_id in sessions:
            self.add(
                "SectionSession",
                Id=self.ids("SectionSession", composite_key(key, session_id)),
                SectionId=section_id,
                SessionId=session_id,
            )

    def _role(self, record: Record) -> None:
        person = record.reference("userSourcedId", self.users, "user", required=True)
        org = record.reference("orgSourcedId", self.orgs, "org", required=True)
        role = record.enum("role", "RefRole", required=True)
        session = record.reference("sessionSourcedId", self.sessions, "academic session")
        grade = record.enum("grade", "RefGradeLevel")
        is_primary = record.boolean("isPrimary")
        start = record.date("roleStartDate")
        end = record.date("roleEndDate")
        if record.rejected:
            return
        user_key, org_key = record.values["userSourcedId"], record.values["orgSourcedId"]
        session_key = record.values.get("sessionSourcedId", "") if session else ""
        role_code = ref_code(role)
        key = composite_key(user_key, org_key, role_code, session_key)
        if not self._claim(record, "userSourcedId", key):
            return
        parts = ("Role", org_key, _user_match_id(user_key), session_key, role_code)
        external_id = "_".join(part for part in parts if part)
        self.add(
            "PersonOrganizationRole",
            Id=self.ids("PersonOrganizationRole", key),
            ExternalId=external_id,
            OrganizationId=org,
            PersonId=person,
            RefRoleId=role,
            SessionId=session,
            IsPrimary=bool(is_primary),
            RefGradeLevelId=grade,
            RoleEndDate=end,
            RoleStartDate=start,
        )

    def _enrollment(self, record: Record) -> None:
        section = record.reference("classSourcedId", self.classes, "class", required=True)
        person = record.reference("userSourcedId", self.users, "user", required=True)
        role = record.enum("role", "RefSectionRole", required=True)
        if record.rejected:
            return
        class_key, user_key = record.values["classSourcedId"], record.values["userSourcedId"]
        role_code = ref_code(role)
        key = composite_key(class_key, user_key, role_code)
        if not self._claim(record, "userSourcedId", key):
            return
        self.add(
            "Enrollment",
            Id=self.ids("Enrollment", key),
            ExternalId=f"{class_key}_{user_key}_{role_code}",
            PersonId=person,
            RefSectionRoleId=role,
            SectionId=section,
            IsPrimaryStaffForSection=False,
        )

    def _demographic(self, record: Record) -> None:
        person = record.reference("userSourcedId", self.users, "user", required=True)
        sex = record.enum("sex", "RefSex")
        birth_date = record.date("birthDate")
        state = record.enum("birthState", "RefState")
        ethnicities = record.enums("ethnicityCodes", "RefEthnicity")
        races = record.enums("raceCodes", "RefRace")
        if record.rejected:
            return
        user_key = record.values["userSourcedId"]
        if not self._claim(record, "userSourcedId", user_key):
            return
        self.add(
            "PersonDemographic",
            PersonId=person,
            BirthCity=record.text("birthCity"),
            BirthCountryCode=record.text("birthCountry"),
            BirthDate=birth_date,
            BirthState=ref_code(state) if state else "",
            RefSexId=sex,
        )
        for ethnicity in ethnicities:
            self.add(
                "PersonDemographicEthnicity",
                Id=self.ids("PersonDemographicEthnicity", composite_key(user_key, ethnicity)),
                PersonId=person,
                RefEthnicityId=ethnicity,
            )
        for race in races:
            self.add(
                "PersonDemographicRace",
                Id=self.ids("PersonDemographicRace", composite_key(user_key, race)),
                PersonId=person,
                RefRaceId=race,
            )

    def _user_flag(self, record: Record) -> None:
        person = record.reference("userSourcedId", self.users, "user", required=True)
        flag = record.enum("flag", "RefPersonFlagType", required=True)
        if record.rejected:
            return
        key = composite_key(record.values["userSourcedId"], flag)
        if not self._claim(record, "flag", key):
            return
        self.add(
            "PersonDemographicPersonFlag",
            Id=self.ids("PersonDemographicPersonFlag", key),
            PersonId=person,
            RefPersonFlagId=flag,
        )

    def _relationship(self, record: Record) -> None:
        person = record.reference("userSourcedId", self.users, "user", required=True)
        related = record.reference("relationshipUserSourcedId", self.users, "user", required=True)
        role = record.enum("relationshipRole", "RefPersonRelationship", required=True)
        if person and person == related:
            related_key = record.values["relationshipUserSourcedId"]
            record.error("relationshipUserSourcedId", related_key, "a user related to themselves")
        if record.rejected:
            return
        key = composite_key(
            record.values["userSourcedId"], record.values["relationshipUserSourcedId"], role
        )
        if not self._claim(record, "relationshipUserSourcedId", key):
            return
        self.add(
            "PersonRelationship",
            Id=self.ids("PersonRelationship", key),
            PersonId=person,
            RefPersonRelationshipId=role,
            RelatedPersonId=related,
        )
