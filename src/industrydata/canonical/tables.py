"""The 26 canonical roster tables: the one definition of names, column order, types and keys.

Column order and CDM data formats are those of the School Data Sync lake export schema
``roster.v0.3.2.cdm.json``; references are the relationships its snapshot manifest declares.
SQL tables, Arrow schemas, CSV column order, CDM manifests and Delta schemas are all derived
from ``CANONICAL_TABLES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "BOOLEAN",
    "CANONICAL_TABLES",
    "DATETIME",
    "INT32",
    "SCHEMA_VERSION",
    "STRING",
    "CanonicalTable",
    "Column",
    "ColumnType",
    "Reference",
    "table_by_name",
]

SCHEMA_VERSION = "0.3.2"


class ColumnType(str, Enum):
    """A CDM ``dataFormat``."""

    STRING = "String"
    DATETIME = "DateTime"
    BOOLEAN = "Boolean"
    INT32 = "Int32"


STRING = ColumnType.STRING
DATETIME = ColumnType.DATETIME
BOOLEAN = ColumnType.BOOLEAN
INT32 = ColumnType.INT32


@dataclass(frozen=True)
class Column:
    """One attribute of a canonical table, in export order."""

    name: str
    type: ColumnType


@dataclass(frozen=True)
class Reference:
    """A CDM relationship: ``column`` holds a value of ``to_table.to_column``."""

    column: str
    to_table: str
    to_column: str


@dataclass(frozen=True)
class CanonicalTable:
    """A canonical roster table: CDM entity name, columns in export order, natural key."""

    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    references: tuple[Reference, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def has_column(self, name: str) -> bool:
        return any(column.name == name for column in self.columns)


CANONICAL_TABLES: tuple[CanonicalTable, ...] = (
    CanonicalTable(
        "AadGroup",
        key=("ObjectId",),
        columns=(
            Column("ObjectId", STRING),
            Column("DisplayName", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("LastSeenDateTime", DATETIME),
            Column("Mail", STRING),
            Column("MailNickname", STRING),
            Column("AnchorId", STRING),
            Column("SectionId", STRING),
        ),
    ),
    CanonicalTable(
        "AadGroupMembership",
        key=("GroupObjectId", "UserObjectId"),
        columns=(
            Column("GroupObjectId", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("LastSeenDateTime", DATETIME),
            Column("Role", STRING),
            Column("UserObjectId", STRING),
        ),
    ),
    CanonicalTable(
        "AadUser",
        key=("ObjectId",),
        columns=(
            Column("ObjectId", STRING),
            Column("AnchorId", STRING),
            Column("DisplayName", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("GivenName", STRING),
            Column("LastSeenDateTime", DATETIME),
            Column("Mail", STRING),
            Column("MailNickname", STRING),
            Column("Role", STRING),
            Column("Surname", STRING),
            Column("UserPrincipalName", STRING),
            Column("StudentId", STRING),
            Column("TeacherId", STRING),
        ),
    ),
    CanonicalTable(
        "AadUserPersonMapping",
        key=("ObjectId", "PersonId"),
        columns=(
            Column("ObjectId", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("LastSeenDateTime", DATETIME),
            Column("PersonId", STRING),
        ),
        references=(
            Reference("ObjectId", "AadUser", "ObjectId"),
            Reference("PersonId", "Person", "Id"),
        ),
    ),
    CanonicalTable(
        "Course",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("AcademicYearSessionId", STRING),
            Column("ExternalId", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("IsActiveInSession", BOOLEAN),
            Column("LastSeenDateTime", DATETIME),
            Column("Name", STRING),
            Column("OrganizationId", STRING),
            Column("SourceSystemId", STRING),
            Column("Code", STRING),
        ),
        references=(
            Reference("OrganizationId", "Organization", "Id"),
            Reference("AcademicYearSessionId", "Session", "Id"),
        ),
    ),
    CanonicalTable(
        "CourseGradeLevel",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("CourseId", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("RefGradeLevelId", STRING),
        ),
        references=(Reference("CourseId", "Course", "Id"),),
    ),
    CanonicalTable(
        "CourseSubject",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("CourseId", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("RefAcademicSubjectId", STRING),
        ),
        references=(Reference("CourseId", "Course", "Id"),),
    ),
    CanonicalTable(
        "Enrollment",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("ExternalId", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("IsActiveInSession", BOOLEAN),
            Column("LastSeenDateTime", DATETIME),
            Column("PersonId", STRING),
            Column("RefSectionRoleId", STRING),
            Column("SectionId", STRING),
            Column("SourceSystemId", STRING),
            Column("EntryDate", STRING),
            Column("ExitDate", STRING),
            Column("IsPrimaryStaffForSection", BOOLEAN),
        ),
        references=(
            Reference("PersonId", "Person", "Id"),
            Reference("SectionId", "Section", "Id"),
        ),
    ),
    CanonicalTable(
        "Organization",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("ExternalId", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("LastSeenDateTime", DATETIME),
            Column("Name", STRING),
            Column("RefOrganizationTypeId", STRING),
            Column("SourceSystemId", STRING),
            Column("Identifier", STRING),
            Column("ParentOrganizationId", STRING),
        ),
        references=(Reference("ParentOrganizationId", "Organization", "Id"),),
    ),
    CanonicalTable(
        "Person",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("LastSeenDateTime", DATETIME),
            Column("GivenName", STRING),
            Column("MiddleName", STRING),
            Column("PreferredGivenName", STRING),
            Column("PreferredMiddleName", STRING),
            Column("PreferredSurname", STRING),
            Column("Surname", STRING),
        ),
    ),
    CanonicalTable(
        "PersonDemographic",
        key=("PersonId",),
        columns=(
            Column("PersonId", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("BirthCity", STRING),
            Column("BirthCountryCode", STRING),
            Column("BirthDate", STRING),
            Column("BirthState", STRING),
            Column("RefSexId", STRING),
        ),
        references=(Reference("PersonId", "Person", "Id"),),
    ),
    CanonicalTable(
        "PersonDemographicEthnicity",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("PersonId", STRING),
            Column("RefEthnicityId", STRING),
        ),
        references=(Reference("PersonId", "Person", "Id"),),
    ),
    CanonicalTable(
        "PersonDemographicPersonFlag",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("PersonId", STRING),
            Column("RefPersonFlagId", STRING),
        ),
        references=(Reference("PersonId", "Person", "Id"),),
    ),
    CanonicalTable(
        "PersonDemographicRace",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("PersonId", STRING),
            Column("RefRaceId", STRING),
        ),
        references=(Reference("PersonId", "Person", "Id"),),
    ),
    CanonicalTable(
        "PersonEmailAddress",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("EmailAddress", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("PersonId", STRING),
            Column("PriorityOrder", INT32),
            Column("RefEmailAddressTypeId", STRING),
        ),
        references=(Reference("PersonId", "Person", "Id"),),
    ),
    CanonicalTable(
        "PersonIdentifier",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("Identifier", STRING),
            Column("IsPresentInSource", BOOLEAN),
            Column("PersonId", STRING),
            Column("RefIdentifierTypeId", STRING),
            Column("SourceSystemId", STRING),
        ),
        references=(Reference("PersonId", "Person", "Id"),),
    ),
    CanonicalTable(
        "PersonOrganizationRole",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("ExternalId", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("IsActiveInSession", BOOLEAN),
            Column("LastSeenDateTime", DATETIME),
            Column("OrganizationId", STRING),
            Column("PersonId", STRING),
            Column("RefRoleId", STRING),
            Column("SessionId", STRING),
            Column("SourceSystemId", STRING),
            Column("IsPrimary", BOOLEAN),
            Column("RefGradeLevelId", STRING),
            Column("RoleEndDate", STRING),
            Column("RoleStartDate", STRING),
        ),
        references=(
            Reference("OrganizationId", "Organization", "Id"),
            Reference("PersonId", "Person", "Id"),
            Reference("SessionId", "Session", "Id"),
        ),
    ),
    CanonicalTable(
        "PersonPhoneNumber",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("PersonId", STRING),
            Column("PhoneNumber", STRING),
            Column("PriorityOrder", INT32),
            Column("RefPhoneNumberTypeId", STRING),
        ),
        references=(Reference("PersonId", "Person", "Id"),),
    ),
    CanonicalTable(
        "PersonRelationship",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("PersonId", STRING),
            Column("RefPersonRelationshipId", STRING),
            Column("RelatedPersonId", STRING),
        ),
        references=(
            Reference("PersonId", "Person", "Id"),
            Reference("RelatedPersonId", "Person", "Id"),
        ),
    ),
    CanonicalTable(
        "RefDefinition",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("Code", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("LastSeenDateTime", DATETIME),
            Column("Namespace", STRING),
            Column("RefType", STRING),
            Column("SortOrder", INT32),
        ),
    ),
    CanonicalTable(
        "Section",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("ExternalId", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("LastSeenDateTime", DATETIME),
            Column("Name", STRING),
            Column("OrganizationId", STRING),
            Column("SourceSystemId", STRING),
            Column("Code", STRING),
            Column("CourseId", STRING),
            Column("Location", STRING),
        ),
        references=(
            Reference("OrganizationId", "Organization", "Id"),
            Reference("CourseId", "Course", "Id"),
        ),
    ),
    CanonicalTable(
        "SectionGradeLevel",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("RefGradeLevelId", STRING),
            Column("SectionId", STRING),
        ),
        references=(Reference("SectionId", "Section", "Id"),),
    ),
    CanonicalTable(
        "SectionSession",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("IsActiveInSession", BOOLEAN),
            Column("LastSeenDateTime", DATETIME),
            Column("SectionId", STRING),
            Column("SessionId", STRING),
        ),
        references=(
            Reference("SectionId", "Section", "Id"),
            Reference("SessionId", "Session", "Id"),
        ),
    ),
    CanonicalTable(
        "SectionSubject",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("RefAcademicSubjectId", STRING),
            Column("SectionId", STRING),
        ),
        references=(Reference("SectionId", "Section", "Id"),),
    ),
    CanonicalTable(
        "Session",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("EndDate", STRING),
            Column("ExternalId", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("LastSeenDateTime", DATETIME),
            Column("Name", STRING),
            Column("RefAcademicYearId", STRING),
            Column("RefSessionTypeId", STRING),
            Column("SourceSystemId", STRING),
            Column("StartDate", STRING),
            Column("ParentSessionId", STRING),
        ),
        references=(Reference("ParentSessionId", "Session", "Id"),),
    ),
    CanonicalTable(
        "SourceSystem",
        key=("Id",),
        columns=(
            Column("Id", STRING),
            Column("FirstSeenDateTime", DATETIME),
            Column("LastSeenDateTime", DATETIME),
            Column("Name", STRING),
        ),
    ),
)

_BY_NAME = {table.name: table for table in CANONICAL_TABLES}


def table_by_name(name: str) -> CanonicalTable:
    """The canonical table called ``name`` (CDM entity name); KeyError when there is none."""
    return _BY_NAME[name]
