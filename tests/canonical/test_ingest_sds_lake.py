"""An SDS lake-export snapshot loads into the canonical store as it is: SDS's ids, timestamps
and flags kept, an unquoted empty field null and ``""`` the empty string, the tenant's rows
replaced in one transaction. A row repeated verbatim loads once; a conflicting duplicate and
a value that does not parse reject their row (reported with file, line and column); a
structural problem rejects the whole snapshot and changes nothing."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from industrydata.canonical.ingest import ReadLimits
from industrydata.canonical.ingest.progress import FileProgress
from industrydata.canonical.ingest.sds_lake import SNAPSHOT_MANIFEST, load_sds_lake
from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.statistics import count_rows
from industrydata.canonical.tables import CANONICAL_TABLES, table_by_name
from industrydata.errors import LoadError
from industrydata.lake import cdm

TENANT = "6b0e9c1d-0000-4000-8000-000000000001"
OTHER_TENANT = "6b0e9c1d-0000-4000-8000-000000000002"
REFERENCE_SNAPSHOT = "2021-09-05T06-16-22"
SNAPSHOT = "2026-11-27T06-00-00"
SEEN = "2021-07-09T06:05:11.000Z,2021-09-05T06:16:22.000Z"


def _snapshot(root: Path, files: dict[str, str], *, entities: list[str] | None = None) -> Path:
    """A snapshot folder in the SDS layout: one part file per table (``files``: table name →
    CSV text) and a manifest naming ``entities`` (default: the tables of ``files``)."""
    folder = root / "roster" / SNAPSHOT
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).mkdir()
        (folder / name / "part-00000-0f1e2d3c-c000.csv").write_text(text, encoding="utf-8")
    tables = [table_by_name(name) for name in (entities if entities is not None else files)]
    (folder / SNAPSHOT_MANIFEST).write_bytes(cdm.render(cdm.snapshot_manifest(SNAPSHOT, tables)))
    return folder


def _stored(engine: Engine, table_name: str, tenant: str = TENANT) -> list[tuple]:
    table = table_by_name(table_name)
    sql = sql_table(table)
    query = (
        select(*(sql.c[name] for name in table.column_names))
        .where(sql.c[TENANT_COLUMN] == tenant)
        .order_by(*(sql.c[name] for name in table.key))
    )
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


def _errors(report_or_error) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [
        (problem.file, problem.line, problem.column, problem.value)
        for problem in report_or_error.problems
        if problem.severity == "error"
    ]


@pytest.mark.reference
def test_load_sds_lake_reference_loads_each_distinct_row_once(
    engine: Engine, reference_dir: Path
) -> None:
    folder = reference_dir / "sds-lake-export-2021" / "roster" / REFERENCE_SNAPSHOT
    distinct = {
        table.name: len(set(next((folder / table.name).glob("*.csv")).read_bytes().splitlines()))
        for table in CANONICAL_TABLES
    }

    report = load_sds_lake(engine, folder, tenant_id=TENANT)

    assert report.problems == []
    assert report.source_system == "School Data Sync"
    assert report.rows == distinct == count_rows(engine, TENANT)
    (enrollment_file,) = [name for name in report.records if name.startswith("Enrollment/")]
    assert (report.records[enrollment_file], report.rows["Enrollment"]) == (2280, 1140)


@pytest.mark.reference
def test_load_sds_lake_reference_keeps_ids_timestamps_and_values(
    engine: Engine, reference_dir: Path
) -> None:
    folder = reference_dir / "sds-lake-export-2021" / "roster" / REFERENCE_SNAPSHOT

    load_sds_lake(engine, folder, tenant_id=TENANT)

    assert _stored(engine, "SourceSystem") == [
        (
            "a644a836-3b7d-4f02-8faf-1b2091258163",
            datetime(2021, 7, 9, 6, 5, 11),
            datetime(2021, 9, 5, 6, 16, 22),
            "School Data Sync",
        )
    ]
    enrollments = {row[0]: row for row in _stored(engine, "Enrollment")}
    assert enrollments["666667c2-72cd-4a98-8f0e-bd291fbf0ea4"] == (
        "666667c2-72cd-4a98-8f0e-bd291fbf0ea4",
        "sec10_st14_student",
        datetime(2021, 9, 2, 18, 13, 59),
        True,
        datetime(2021, 9, 5, 6, 16, 22),
        "3301a575-02de-485d-95d0-42b56bf29317",
        "234",
        "6e56843a-66ef-4f5a-b80f-f53237b69d32",
        "a644a836-3b7d-4f02-8faf-1b2091258163",
        "",
        "",
        False,
    )
    references = {row[0]: row for row in _stored(engine, "RefDefinition")}
    assert references["1"][1:] == (
        "Home",
        datetime(2021, 9, 5, 6, 16, 22),
        datetime(2021, 9, 5, 6, 16, 22),
        "ceds.ed.gov",
        "RefPhoneNumberType",
        10,
    )


def test_load_sds_lake_tells_null_from_empty_string(engine: Engine, tmp_path: Path) -> None:
    folder = _snapshot(
        tmp_path,
        {
            "Person": f'p1,{SEEN},Ann,,"",,"Quote ""Q"", comma",Lee\n'
            'p2,,2021-09-05T06:16:22.5Z,"two\nlines",,,,,\n',
            "PersonEmailAddress": "e1,ann@x.example,,p1,,\n",
        },
    )

    report = load_sds_lake(engine, folder, tenant_id=TENANT)

    assert _errors(report) == []
    assert _stored(engine, "Person") == [
        (
            "p1",
            datetime(2021, 7, 9, 6, 5, 11),
            datetime(2021, 9, 5, 6, 16, 22),
            "Ann",
            None,
            "",
            None,
            'Quote "Q", comma',
            "Lee",
        ),
        ("p2", None, datetime(2021, 9, 5, 6, 16, 22, 500000), "two\nlines") + (None,) * 5,
    ]
    assert _stored(engine, "PersonEmailAddress") == [
        ("e1", "ann@x.example", None, "p1", None, None)
    ]


def test_load_sds_lake_replaces_only_the_tenants_rows(engine: Engine, tmp_path: Path) -> None:
    person = sql_table("Person")
    with engine.begin() as connection:
        connection.execute(
            insert(person),
            [{TENANT_COLUMN: TENANT, "Id": "old"}, {TENANT_COLUMN: OTHER_TENANT, "Id": "theirs"}],
        )
    folder = _snapshot(tmp_path, {"Person": f"new,{SEEN},,,,,,\n"})

    load_sds_lake(engine, folder, tenant_id=TENANT)

    assert [row[0] for row in _stored(engine, "Person")] == ["new"]
    assert [row[0] for row in _stored(engine, "Person", OTHER_TENANT)] == ["theirs"]


def test_load_sds_lake_verbatim_repeat_loads_once_and_conflicts_are_errors(
    engine: Engine, tmp_path: Path
) -> None:
    folder = _snapshot(
        tmp_path,
        {
            "Person": f"p1,{SEEN},Ann,,,,,Lee\n"
            f"p2,{SEEN},Bob,,,,,Ray\n"
            "p3,soon,,Cy,,,,,Day\n"
            f"p1,{SEEN},Ann,,,,,Lee\n"
            f"p1,{SEEN},Anna,,,,,Lee\n",
            "AadGroupMembership": f"g1,{SEEN},Member,u1\ng1,{SEEN},Owner,u1\ng1,{SEEN},Owner,u2\n",
        },
    )

    report = load_sds_lake(engine, folder, tenant_id=TENANT)

    person_file = "Person/part-00000-0f1e2d3c-c000.csv"
    membership_file = "AadGroupMembership/part-00000-0f1e2d3c-c000.csv"
    assert _errors(report) == [
        (membership_file, 2, "Role", "Owner"),
        (person_file, 3, "FirstSeenDateTime", "soon"),
        (person_file, 5, "GivenName", "Anna"),
    ]
    assert [problem.reason for problem in report.problems if problem.severity == "error"] == [
        "an earlier row with the same key (GroupObjectId=g1, UserObjectId=u1) has another Role;"
        " row not loaded",
        "not an ISO 8601 date-time; row not loaded",
        "an earlier row with the same key (Id=p1) has another GivenName; row not loaded",
    ]
    assert report.records == {person_file: 5, membership_file: 3}
    assert (report.rows["Person"], report.rows["AadGroupMembership"]) == (2, 2)
    assert [(row[0], row[3]) for row in _stored(engine, "Person")] == [("p1", "Ann"), ("p2", "Bob")]


@pytest.mark.parametrize(
    ("files", "table", "line", "column", "value"),
    [
        (
            {"Person": f"p1,{SEEN},A,,,,,\np2,yesterday,,,,,,,\n"},
            "Person",
            2,
            "FirstSeenDateTime",
            "yesterday",
        ),
        (
            {"Enrollment": "e1,x,,maybe,,,,,,,,\ne2,x,,true,,,,,,,,false\n"},
            "Enrollment",
            1,
            "IsActiveInSession",
            "maybe",
        ),
        (
            {"PersonEmailAddress": "e1,a@x.example,,p1,1x,\ne2,b@x.example,,p2,2,\n"},
            "PersonEmailAddress",
            1,
            "PriorityOrder",
            "1x",
        ),
    ],
)
def test_load_sds_lake_unparsable_value_rejects_its_row(
    engine: Engine,
    tmp_path: Path,
    files: dict[str, str],
    table: str,
    line: int,
    column: str,
    value: str,
) -> None:
    folder = _snapshot(tmp_path, files)

    report = load_sds_lake(engine, folder, tenant_id=TENANT)

    assert _errors(report) == [(f"{table}/part-00000-0f1e2d3c-c000.csv", line, column, value)]
    assert report.rows[table] == 1
    assert len(_stored(engine, table)) == 1


def test_load_sds_lake_other_and_missing_entities_are_warnings(
    engine: Engine, tmp_path: Path
) -> None:
    folder = _snapshot(tmp_path, {"Person": f"p1,{SEEN},,,,,,\n"})
    manifest = cdm.snapshot_manifest(SNAPSHOT, [table_by_name("Person")])
    manifest["entities"].append({**manifest["entities"][0], "entityName": "StudentActivity"})
    (folder / SNAPSHOT_MANIFEST).write_bytes(cdm.render(manifest))

    report = load_sds_lake(engine, folder, tenant_id=TENANT)

    warned = {problem.value for problem in report.problems if problem.severity == "warning"}
    assert warned == {"StudentActivity"} | {
        table.name for table in CANONICAL_TABLES if table.name != "Person"
    }
    assert report.errors == 0
    assert report.rows["Person"] == 1


def _no_manifest(folder: Path) -> None:
    (folder / SNAPSHOT_MANIFEST).unlink()


def _broken_manifest(folder: Path) -> None:
    (folder / SNAPSHOT_MANIFEST).write_text("{not json")


def _missing_partition_folder(folder: Path) -> None:
    for part in (folder / "Person").iterdir():
        part.unlink()
    (folder / "Person").rmdir()


def _other_schema(folder: Path) -> None:
    text = (folder / SNAPSHOT_MANIFEST).read_text()
    (folder / SNAPSHOT_MANIFEST).write_text(text.replace("roster.v0.3.2", "roster.v0.4.0"))


def _parquet_partitions(folder: Path) -> None:
    manifest = json.loads((folder / SNAPSHOT_MANIFEST).read_bytes())
    for entity in manifest["entities"]:
        for pattern in entity["dataPartitionPatterns"]:
            pattern["exhibitsTraits"] = [{"traitReference": "is.partition.format.parquet"}]
    (folder / SNAPSHOT_MANIFEST).write_bytes(cdm.render(manifest))


def _wrong_width(folder: Path) -> None:
    (part,) = (folder / "Person").iterdir()
    part.write_text(f"p1,{SEEN},,,,,,\np2,{SEEN},one too many,,,,,,\n")


def _not_utf8(folder: Path) -> None:
    (part,) = (folder / "Person").iterdir()
    part.write_bytes(f"p1,{SEEN},,,,,,Mu\xf1oz\n".encode("latin-1"))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_no_manifest, "the snapshot manifest is missing"),
        (_broken_manifest, "the snapshot manifest is not readable JSON"),
        (_missing_partition_folder, f"partition folder local:/roster/{SNAPSHOT}/Person is missing"),
        (_other_schema, "entity Person is defined by roster.v0.4.0.cdm.json"),
        (_parquet_partitions, "entity Person is stored as parquet; only CSV is read"),
        (_wrong_width, "expected 9 fields, found 10"),
        (_not_utf8, "not readable as UTF-8 CSV"),
    ],
)
def test_load_sds_lake_structural_problem_changes_nothing(
    engine: Engine,
    tmp_path: Path,
    damage,
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    with engine.begin() as connection:
        connection.execute(insert(sql_table("Person")), [{TENANT_COLUMN: TENANT, "Id": "kept"}])
    folder = _snapshot(
        tmp_path,
        {"Person": f"p1,{SEEN},,,,,,\n", "AadGroup": f"g1,Group,{SEEN},,,,\n"},
        entities=["AadGroup", "Person"],
    )
    damage(folder)

    with pytest.raises(LoadError) as raised:
        load_sds_lake(engine, folder, tenant_id=TENANT)

    assert any(reason in problem.reason for problem in raised.value.problems), raised.value.problems
    assert [row[0] for row in _stored(engine, "Person")] == ["kept"]
    assert _stored(engine, "AadGroup") == []


def test_load_sds_lake_snapshot_folder_copied_alone_still_reads(
    engine: Engine, tmp_path: Path
) -> None:
    folder = _snapshot(tmp_path / "lake", {"Person": f"p1,{SEEN},,,,,,\n"})
    alone = tmp_path / "copied" / folder.name
    alone.parent.mkdir()
    folder.rename(alone)

    report = load_sds_lake(engine, alone, tenant_id=TENANT)

    assert report.rows["Person"] == 1


def test_load_sds_lake_reports_progress_per_file(engine: Engine, tmp_path: Path) -> None:
    folder = _snapshot(
        tmp_path,
        {"Person": f"p1,{SEEN},,,,,,\np2,{SEEN},,,,,,\n", "AadGroup": ""},
    )
    reports: list[FileProgress] = []

    load_sds_lake(engine, folder, tenant_id=TENANT, progress=reports.append)

    done = [report for report in reports if report.done]
    person_size = next((folder / "Person").iterdir()).stat().st_size
    assert [(report.file.split("/")[0], report.records) for report in done] == [
        ("AadGroup", 0),
        ("Person", 2),
    ]
    assert done[1].bytes_read == done[1].bytes_total == person_size


def test_load_sds_lake_row_longer_than_a_block_is_refused(engine: Engine, tmp_path: Path) -> None:
    folder = _snapshot(tmp_path, {"Person": f"p1,{SEEN},{'x' * (3 << 20)},,,,,\n"})

    with pytest.raises(LoadError, match="Person/part-00000-0f1e2d3c-c000.csv cannot be read"):
        load_sds_lake(engine, folder, tenant_id=TENANT)

    assert _stored(engine, "Person") == []


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        (ReadLimits(), "20 of 25 records rejected, more than 10%; snapshot refused"),
        (ReadLimits(max_rejected_records=5), "more than 5 rows rejected; snapshot refused"),
    ],
)
def test_load_sds_lake_file_losing_too_many_rows_refuses_the_snapshot(
    engine: Engine, tmp_path: Path, limits: ReadLimits, reason: str
) -> None:
    """The snapshot replaces the tenant's roster: a file that lost most of its rows would
    empty it."""
    with engine.begin() as connection:
        connection.execute(insert(sql_table("Person")), [{TENANT_COLUMN: TENANT, "Id": "kept"}])
    good = "".join(f"p{n},{SEEN},,,,,,\n" for n in range(5))
    bad = "".join(f"b{n},yesterday,{SEEN.split(',')[1]},,,,,,\n" for n in range(20))
    folder = _snapshot(tmp_path, {"Person": good + bad})
    report_file = tmp_path / "problems.csv"

    with pytest.raises(LoadError) as raised:
        load_sds_lake(engine, folder, tenant_id=TENANT, limits=limits, report_path=report_file)

    assert raised.value.problems[0].reason == reason
    assert reason in report_file.read_text()
    assert [row[0] for row in _stored(engine, "Person")] == ["kept"]
