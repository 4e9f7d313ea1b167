"""Loading an SDS v2.1 CSV upload into the canonical store, the way School Data Sync mapped it.

The field-by-field mapping is documented in ``docs/sds-csv-mapping.md``. A load is one
transaction: structural problems (a missing required file or header) reject it before
anything is written; record problems reject the record (error) or drop an optional value
(warning) and the rest commits. Files are streamed and rows upserted in chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from ...errors import LoadProblem
from ...observability import observe_import_rows
from ._csv import CsvFile, check_structure
from ._deferred import Deferred
from ._keys import KnownIds, id_fingerprint
from ._limits import DEFAULT_LIMITS, ReadLimits
from ._load import Load, anchor_id, run_load, user_match_id
from ._record import Record, ref_code
from ._source import Upload
from .progress import ProgressCallback
from .report import LoadReport

__all__ = ["SDS_FILES", "SOURCE_SYSTEM", "load_sds_csv"]

SOURCE_SYSTEM = "School Data Sync"

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
    optional_headers=(
        "givenName",
        "familyName",
        "activeDirectoryMatchId",
        "email",
        "phone",
        "sms",
        "userNumber",
    ),
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
    optional_headers=("sessionSourcedIds", "courseSourcedId", "code"),
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


def load_sds_csv(
    engine: Engine,
    folder: Path,
    *,
    tenant_id: str,
    now: datetime | None = None,
    progress: ProgressCallback | None = None,
    parallel: bool | None = None,
    report_path: Path | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> LoadReport:
    """Load the SDS v2.1 CSV files in ``folder`` as a full upload for ``tenant_id``.

    Args:
        engine: the canonical store.
        folder: the folder (or a zip archive of it) holding ``orgs.csv``, ``users.csv``,
            ``roles.csv`` and the optional files, named exactly.
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
        LoadError: the upload is refused and nothing was written: a required file or header
            is missing, a file is not readable CSV or breaks a limit of ``limits``, or a file
            has too many rejected records (``ReadLimits.max_rejected_fraction``).
    """
    report = run_load(
        _SdsLoad,
        engine,
        folder,
        tenant_id=tenant_id,
        now=now,
        progress=progress,
        parallel=parallel,
        what="SDS v2.1 CSV",
        limits=limits,
        report_path=report_path,
    )
    observe_import_rows("sds-csv", sum(report.rows.values()))
    return report


class _SdsLoad(Load):
    """One SDS load in progress: the keys seen so far, by file."""

    source_system = SOURCE_SYSTEM

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.sessions = KnownIds(self.mint["Session"], self.key_budget)
        self.orgs = KnownIds(self.mint["Organization"], self.key_budget)
        self.users = KnownIds(self.mint["Person"], self.key_budget)
        self.courses = KnownIds(self.mint["Course"], self.key_budget)
        self.classes = KnownIds(self.mint["Section"], self.key_budget)
        self._pending_orgs = Deferred()
        """(line, parentSourcedId, Organization row) of each org, until all orgs are known."""

    def close(self) -> None:
        self._pending_orgs.close()
        super().close()

    @classmethod
    def check(cls, upload: Upload) -> list[LoadProblem]:
        return check_structure(upload, SDS_FILES)

    def load_files(self) -> None:
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
        for spec in SDS_FILES:
            if spec.name in self.upload.names:
                self.read(spec, steps[spec.name])
            if spec is ORGS:
                self._write_orgs()

    def _session(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        title = record.text("title", required=True)
        session_type = record.enum("type", "RefSessionType", required=True)
        year = record.enum("schoolYear", "RefAcademicYear", required=True)
        start = record.date("startDate", required=True)
        end = record.date("endDate", required=True)
        if start and end and end < start:
            record.error("endDate", end, "endDate is before startDate")
        if record.rejected:
            return
        session_id = self.mint["Session"](key)
        if not self.claim(record, "sourcedId", id_fingerprint(session_id)):
            return
        self.sessions.add(session_id)
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
        if record.rejected:
            return
        org_id = self.mint["Organization"](key)
        if not self.claim(record, "sourcedId", id_fingerprint(org_id)):
            return
        self.orgs.add(org_id)
        row = {"Id": org_id, "ExternalId": key, "Name": name, "RefOrganizationTypeId": org_type}
        self._pending_orgs.append((record.line, record.values.get("parentSourcedId", ""), row))

    def _write_orgs(self) -> None:
        """Organizations are written once all are known: a parent may come after its child."""
        for line, parent_key, row in self._pending_orgs.drain():
            record = Record(ORGS.name, line, {"parentSourcedId": parent_key}, self.problems)
            parent = record.reference("parentSourcedId", self.orgs, "org")
            self.add(
                "Organization", **row, Identifier=row["ExternalId"], ParentOrganizationId=parent
            )

    def _user(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        username = record.text("username", required=True)
        email = record.email("email")
        phones = [(column, record.phone(column)) for column in ("phone", "sms")]
        if record.rejected:
            return
        person_id = self.mint["Person"](key)
        if not self.claim(record, "sourcedId", id_fingerprint(person_id)):
            return
        self.users.add(person_id)
        self.add(
            "Person",
            Id=person_id,
            GivenName=record.text("givenName"),
            Surname=record.text("familyName"),
        )
        identifiers = {
            "SDSAnchorId": anchor_id(key),
            "identifier": key,
            "userMatchId": user_match_id(SOURCE_SYSTEM, key),
            "sourceExternalId": key,
            "username": username,
            "activeDirectoryMatchId": record.text("activeDirectoryMatchId"),
            "studentOrTeacherNumberOrId": record.text("userNumber"),
        }
        self.add_contacts(key, person_id, identifiers, email, phones)

    def _course(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        org = record.reference("orgSourcedId", self.orgs, "org", required=True)
        title = record.text("title", required=True)
        year = record.reference("schoolYearSourcedId", self.sessions, "academic session")
        subject = record.enum("subject", "RefAcademicSubject")
        grade = record.enum("grade", "RefGradeLevel")
        if record.rejected:
            return
        course_id = self.mint["Course"](key)
        if not self.claim(record, "sourcedId", id_fingerprint(course_id)):
            return
        self.courses.add(course_id)
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
                Id=self.mint["CourseSubject"](key),
                CourseId=course_id,
                RefAcademicSubjectId=subject,
            )
        if grade:
            self.add(
                "CourseGradeLevel",
                Id=self.mint["CourseGradeLevel"](key),
                CourseId=course_id,
                RefGradeLevelId=grade,
            )

    def _class(self, record: Record) -> None:
        key = record.text("sourcedId", required=True)
        org = record.reference("orgSourcedId", self.orgs, "org", required=True)
        title = record.text("title", required=True)
        sessions = record.references("sessionSourcedIds", self.sessions, "academic session")
        course = record.reference("courseSourcedId", self.courses, "course")
        if record.rejected:
            return
        section_id = self.mint["Section"](key)
        if not self.claim(record, "sourcedId", id_fingerprint(section_id)):
            return
        self.classes.add(section_id)
        self.add(
            "Section",
            Id=section_id,
            ExternalId=key,
            Name=title,
            OrganizationId=org,
            Code=record.text("code"),
            CourseId=course,
        )
        self.add_links("SectionSession", key, {"SectionId": section_id}, "SessionId", sessions)

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
        key = (user_key, org_key, role_code, session_key)
        row_id = self.mint["PersonOrganizationRole"](*key)
        if not self.claim(record, "userSourcedId", id_fingerprint(row_id)):
            return
        parts = ("Role", org_key, user_match_id(SOURCE_SYSTEM, user_key), session_key, role_code)
        external_id = "_".join(part for part in parts if part)
        self.add(
            "PersonOrganizationRole",
            Id=row_id,
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
        key = (class_key, user_key, role_code)
        row_id = self.mint["Enrollment"](*key)
        if not self.claim(record, "userSourcedId", id_fingerprint(row_id)):
            return
        self.add(
            "Enrollment",
            Id=row_id,
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
        if not self.claim(record, "userSourcedId", id_fingerprint(person)):
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
        self.add_links(
            "PersonDemographicEthnicity",
            user_key,
            {"PersonId": person},
            "RefEthnicityId",
            ethnicities,
        )
        self.add_links("PersonDemographicRace", user_key, {"PersonId": person}, "RefRaceId", races)

    def _user_flag(self, record: Record) -> None:
        person = record.reference("userSourcedId", self.users, "user", required=True)
        flag = record.enum("flag", "RefPersonFlagType", required=True)
        if record.rejected:
            return
        key = (record.values["userSourcedId"], flag)
        row_id = self.mint["PersonDemographicPersonFlag"](*key)
        if not self.claim(record, "flag", id_fingerprint(row_id)):
            return
        self.add(
            "PersonDemographicPersonFlag",
            Id=row_id,
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
        key = (record.values["userSourcedId"], record.values["relationshipUserSourcedId"], role)
        row_id = self.mint["PersonRelationship"](*key)
        if not self.claim(record, "relationshipUserSourcedId", id_fingerprint(row_id)):
            return
        self.add(
            "PersonRelationship",
            Id=row_id,
            PersonId=person,
            RefPersonRelationshipId=role,
            RelatedPersonId=related,
        )
