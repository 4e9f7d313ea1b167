"""Shared helpers of the loader tests: a small valid OneRoster 1.1 upload, writing uploads,
reading the store back, checking references."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, and_, func, select

from industrydata.canonical.ingest._rows import row_columns
from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.tables import CANONICAL_TABLES, table_by_name


# A small valid OneRoster 1.1 bulk upload: 3 sessions, 2 orgs (the school before its district),
# 1 course, 1 class, a student, a teacher at two orgs and the student's parent, 2 enrollments.
ONEROSTER_MANIFEST = """propertyName,value
manifest.version,1.0
oneroster.version,1.1
file.academicSessions,bulk
file.categories,absent
file.classes,bulk
file.classResources,absent
file.courses,bulk
file.courseResources,absent
file.demographics,bulk
file.enrollments,bulk
file.lineItems,absent
file.orgs,bulk
file.resources,absent
file.results,absent
file.users,bulk
source.systemName,Example SIS
source.systemCode,EX
"""

ONEROSTER_DROP = {
    "manifest.csv": ONEROSTER_MANIFEST,
    "academicSessions.csv": """sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear
y1,,,2025-2026,schoolYear,2025-08-25,2026-06-12,,2026
f1,,,Fall 2025,term,2025-08-25,2026-01-16,y1,2026
q1,,,Quarter 1,gradingPeriod,2025-08-25,2025-10-31,f1,2026
""",
    "orgs.csv": """sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId
s1,,,North High,school,NH-001,d1
d1,,,North District,district,,
""",
    "courses.csv": """sourcedId,status,dateLastModified,schoolYearSourcedId,title,courseCode,grades,orgSourcedId,subjects,subjectCodes
c1,,,y1,Algebra I,ALG1,"09,10",s1,Mathematics,02001
""",
    "classes.csv": """sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods
k1,,,"Algebra I, period 1",09,c1,ALG1-1,scheduled,Room 101,s1,"f1,q1",Mathematics,02,1
""",
    "users.csv": """sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password
u1,,,true,s1,student,ann@x.example,{Fed:F-1},Ann,Lee,Marie,S-0001,Ann@X.example,,,p1,09,Secret-1
t1,,,true,"s1,d1",teacher,tia@x.example,,Tia,Fox,,T-01,tia@x.example,,+1 (555) 123-0002,,,Secret-2
p1,,,true,s1,parent,pat@mail.example,,Pat,Lee,,,pat@mail.example,+15551230003,,u1,,Secret-3
""",
    "enrollments.csv": """sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate
e1,,,k1,s1,u1,student,false,2025-08-25,
e2,,,k1,s1,t1,teacher,true,,
""",
    "demographics.csv": """sourcedId,status,dateLastModified,birthDate,sex,americanIndianOrAlaskaNative,asian,blackOrAfricanAmerican,nativeHawaiianOrOtherPacificIslander,white,demographicRaceTwoOrMoreRaces,hispanicOrLatinoEthnicity,countryOfBirthCode,stateOfBirthAbbreviation,cityOfBirth,publicSchoolResidenceStatus
u1,,,2010-03-04,female,false,true,false,false,true,true,true,US,wa,Seattle,01652
""",
}


def write_drop(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def with_line(text: str, line: int, content: str | None) -> str:
    """``text`` with physical line ``line`` replaced (appended past the end, removed if None)."""
    lines = text.splitlines()
    if line > len(lines):
        lines.append(content or "")
    elif content is None:
        del lines[line - 1]
    else:
        lines[line - 1] = content
    return "\n".join(lines) + "\n"


def rows_of(engine: Engine, table_name: str, tenant: str) -> list[dict]:
    table = table_by_name(table_name)
    sql = sql_table(table)
    query = (
        select(*(sql.c[name] for name in table.column_names))
        .where(sql.c[TENANT_COLUMN] == tenant)
        .order_by(*(sql.c[name] for name in table.key))
    )
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def whole_store(engine: Engine, *, tracking: bool = True) -> dict[str, list[tuple]]:
    """Every row of every canonical table, of every tenant; ``tracking=False`` leaves out
    the change-tracking columns (RowNumber, RowVersion), keeping what an export shows."""
    with engine.connect() as connection:
        return {
            table.name: sorted(
                tuple(map(str, row))
                for row in connection.execute(
                    select(sql_table(table))
                    if tracking
                    else select(*(sql_table(table).c[name] for name in row_columns(table)))
                )
            )
            for table in CANONICAL_TABLES
        }


def _links() -> list[tuple[str, str, str, str]]:
    """(table, column, target table, target column) of every reference a loaded row can hold."""
    links = [
        (table.name, ref.column, ref.to_table, ref.to_column)
        for table in CANONICAL_TABLES
        for ref in table.references
    ]
    for table in CANONICAL_TABLES:
        for column in table.column_names:
            if column.startswith("Ref") and column.endswith("Id") and table.name != "RefDefinition":
                links.append((table.name, column, "RefDefinition", "Id"))
            if column == "SourceSystemId":
                links.append((table.name, column, "SourceSystem", "Id"))
    return links


def dangling(engine: Engine, tenant: str) -> list[str]:
    """References that point at no row of the tenant ("" means no reference)."""
    found = []
    with engine.connect() as connection:
        for table, column, to_table, to_column in _links():
            source, target = sql_table(table).alias("source"), sql_table(to_table).alias("target")
            value = source.c[column]
            joined = source.outerjoin(
                target,
                and_(
                    target.c[TENANT_COLUMN] == source.c[TENANT_COLUMN], target.c[to_column] == value
                ),
            )
            query = (
                select(func.count())
                .select_from(joined)
                .where(
                    source.c[TENANT_COLUMN] == tenant,
                    value.is_not(None),
                    value != "",
                    target.c[to_column].is_(None),
                )
            )
            missing = connection.execute(query).scalar_one()
            if missing:
                found.append(f"{table}.{column}: {missing}")
    return found


def problems_of(report_or_error) -> list[tuple]:
    return [(p.severity, p.file, p.line, p.column, p.value) for p in report_or_error.problems]
