"""The importer's limits: every hostile drop of the corpus (``hostile_drops``, made small) is
refused with one line and changes nothing; problems are kept in bounded memory and all of
them streamed to the report file; a file with too many rejected records refuses the upload.
Peak memory and time at full size are measured by ``bench/importer_limits.py``."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import Engine

from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest._keys import KeyTable
from industrydata.canonical.ingest import (
    ReadLimits,
    load_oneroster_csv,
    load_sds_csv,
    load_sds_lake,
)
from industrydata.canonical.statistics import count_rows
from industrydata.errors import LoadError
from industrydata.store import create_store_engine, upgrade_to_head
from tests.canonical.hostile_drops import (
    BASE_SDS,
    HOSTILE_DROPS,
    all_rejected_users,
    deep_manifest,
    sds_zip,
)
from tests.canonical.ingest_support import ONEROSTER_DROP, whole_store, write_drop

TENANT = "4c2b7e10-0000-4000-8000-000000000001"

SMALL = {
    "x-lines zip bomb": 1_000,
    "NUL flood": 3 << 20,
    "endless quoted field": 3 << 20,
    "1M-column header": 5_000,
    "100k zip members": 1_200,
    "corrupt deflate": 200_000,
    "all users rejected": 300,
    "8M distinct valid users": 300,
    "deep lake manifest": 5_000,
}
"""Sizes just past each limit: the tests stay fast, the bench uses the full sizes."""

REASONS = {
    "x-lines zip bomb": "all 500 records rejected; upload refused",
    "NUL flood": "a record longer than 1,048,576 characters",
    "endless quoted field": "not valid CSV: field larger than field limit (131072)",
    "1M-column header": "the header has 5,002 columns; at most 1,000",
    "100k zip members": "1,203 entries in the archive; at most 1,000",
    "duplicate member": "two members named 'users.csv' and 'users.csv'",
    "case-duplicate member": "two members named 'users.csv' and 'Users.csv'",
    "encrypted member": "users.csv is encrypted",
    "unknown compression": "users.csv uses compression method 99; only stored or deflate",
    "bad CRC": "the zip member is damaged (Bad CRC-32 for file 'users.csv')",
    "corrupt deflate": "the zip member is damaged",
    "all users rejected": "all 300 records rejected; upload refused",
    "8M distinct valid users": "all 300 records rejected; upload refused",
    "deep lake manifest": "the snapshot manifest nests deeper than 32 levels",
}


def _load(kind: str):  # type: ignore[no-untyped-def]
    return load_sds_csv if kind == "sds-csv" else load_sds_lake


@pytest.mark.parametrize("name", list(HOSTILE_DROPS))
def test_hostile_drop_is_refused_in_one_line_and_changes_nothing(
    engine: Engine, tmp_path: Path, name: str
) -> None:
    load_sds_csv(engine, write_drop(tmp_path / "roster", BASE_SDS), tenant_id=TENANT)
    before = whole_store(engine)
    kind, make, _ = HOSTILE_DROPS[name]
    drop = make(tmp_path / "drop", SMALL.get(name, 0))
    report_file = tmp_path / "problems.csv"

    with pytest.raises(LoadError) as raised:
        _load(kind)(engine, drop, tenant_id=TENANT, report_path=report_file)

    message = str(raised.value)
    assert "\n" not in message and len(message) < 300, message
    assert REASONS[name] in raised.value.problems[0].reason
    with report_file.open(newline="") as handle:
        written = list(csv.reader(handle))
    assert written[0] == ["severity", "file", "line", "column", "value", "reason"]
    assert any(REASONS[name] in row[5] for row in written[1:])
    assert whole_store(engine) == before


def test_hostile_drop_read_in_a_child_process_is_refused_alike(
    engine: Engine, tmp_path: Path
) -> None:
    drop = HOSTILE_DROPS["NUL flood"][1](tmp_path / "drop", SMALL["NUL flood"])

    with pytest.raises(LoadError, match="a record longer than 1,048,576 characters"):
        load_sds_csv(engine, drop, tenant_id=TENANT, parallel=True)

    assert sum(count_rows(engine, TENANT).values()) == 0


def test_rejections_past_the_limit_refuse_at_once_and_bound_the_report_file(
    engine: Engine, tmp_path: Path
) -> None:
    drop = HOSTILE_DROPS["x-lines zip bomb"][1](tmp_path / "drop", 10_000)  # 5,000 records
    report_file = tmp_path / "problems.csv"
    limits = ReadLimits(max_rejected_records=50)

    with pytest.raises(LoadError, match=r"^users\.csv: more than 50 records rejected; the"):
        load_sds_csv(engine, drop, tenant_id=TENANT, report_path=report_file, limits=limits)

    with report_file.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 52
    assert rows[0]["reason"] == "expected 2 fields, found 1; record skipped"
    assert rows[-1]["reason"] == "more than 50 records rejected; upload refused"


def test_record_limit_counts_every_line_of_a_record(engine: Engine, tmp_path: Path) -> None:
    users = 'sourcedId,username\nu1,"' + "a\n" * 30 + '"\n'
    drop = write_drop(tmp_path, BASE_SDS | {"users.csv": users})

    with pytest.raises(LoadError) as raised:
        load_sds_csv(engine, drop, tenant_id=TENANT, limits=ReadLimits(max_record_chars=50))

    assert [(p.file, p.line, p.reason) for p in raised.value.problems] == [
        ("users.csv", 2, "a record longer than 50 characters")
    ]


def test_problems_beyond_the_kept_ones_are_counted_and_all_written_to_the_report_file(
    engine: Engine, tmp_path: Path
) -> None:
    """Warnings (dropped emails) do not reject records: 40 problems, 5 kept in detail."""
    users = "sourcedId,username,email\n" + "".join(f"u{n},n{n},not-mail-{n}\n" for n in range(40))
    roles = "userSourcedId,orgSourcedId,role\n" + "".join(f"u{n},s1,student\n" for n in range(40))
    drop = write_drop(tmp_path / "drop", BASE_SDS | {"users.csv": users, "roles.csv": roles})
    report_file = tmp_path / "problems.csv"

    report = load_sds_csv(
        engine,
        drop,
        tenant_id=TENANT,
        report_path=report_file,
        limits=ReadLimits(max_problems_kept=5),
    )

    assert [p.value for p in report.problems] == [f"not-mail-{n}" for n in range(5)]
    assert report.warnings == 40 and report.problems_left_out == 35
    assert report.problem_counts == {
        ("warning", "users.csv", "email", "not an email address; value left out"): 40
    }
    assert (report.rejected_records, report.rows["Person"]) == (0, 40)
    with report_file.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["value"] for row in rows] == [f"not-mail-{n}" for n in range(40)]
    assert rows[0]["line"] == "2"


def test_problem_kinds_are_bounded_too(engine: Engine, tmp_path: Path) -> None:
    """Each duplicate names the line of its first record: a reason per line, counted under
    "other problems" once the kinds run out."""
    users = "sourcedId,username\n" + "".join(f"u{n},a\nu{n},b\n" for n in range(8))
    roles = "userSourcedId,orgSourcedId,role\n" + "".join(f"u{n},s1,student\n" for n in range(8))
    drop = write_drop(tmp_path, BASE_SDS | {"users.csv": users, "roles.csv": roles})
    limits = ReadLimits(max_problem_kinds=3, tolerated_rejections=100)

    report = load_sds_csv(engine, drop, tenant_id=TENANT, limits=limits)

    assert len(report.problem_counts) == 4
    assert report.problem_counts[("error", "users.csv", None, "other problems")] == 5
    assert report.errors == 8 and report.rejected == {"orgs.csv": 0, "users.csv": 8, "roles.csv": 0}


def test_long_values_are_shortened_in_problems(engine: Engine, tmp_path: Path) -> None:
    email = "x" * 5_000
    users = f"sourcedId,username,email\nu1,a,{email}\n"
    drop = write_drop(tmp_path, BASE_SDS | {"users.csv": users})

    report = load_sds_csv(engine, drop, tenant_id=TENANT)

    (problem,) = report.problems
    assert problem.value == "x" * 200 + "… (5,000 characters)"


def _users_with_bad(good: int, bad: int) -> dict[str, str]:
    users = "sourcedId,username\n" + "".join(f"u{n},n{n}\n" for n in range(good))
    users += "".join(f"b{n},\n" for n in range(bad))
    roles = "userSourcedId,orgSourcedId,role\n" + "".join(f"u{n},s1,student\n" for n in range(good))
    return BASE_SDS | {"users.csv": users, "roles.csv": roles}


@pytest.mark.parametrize(
    ("good", "bad", "refused"),
    [
        (100, 10, False),  # 10 rejected: tolerated whatever the share
        (100, 11, False),  # 11 of 111 = 9.9%
        (98, 12, True),  # 12 of 110 = 10.9%
        (0, 3, True),  # a required file whose records are all rejected
    ],
)
def test_a_file_with_too_many_rejected_records_refuses_the_upload(
    engine: Engine, tmp_path: Path, good: int, bad: int, refused: bool
) -> None:
    load_sds_csv(engine, write_drop(tmp_path / "first", BASE_SDS), tenant_id=TENANT)
    before = whole_store(engine)
    drop = write_drop(tmp_path / "second", _users_with_bad(good, bad))

    if refused:
        with pytest.raises(LoadError, match=r"^users\.csv: .* the upload is refused") as raised:
            load_sds_csv(engine, drop, tenant_id=TENANT)
        assert raised.value.problems[0].reason.endswith("records rejected; upload refused") or (
            "more than 10%" in raised.value.problems[0].reason
        )
        assert whole_store(engine) == before
    else:
        report = load_sds_csv(engine, drop, tenant_id=TENANT)
        assert report.rejected["users.csv"] == report.rejected_records == bad
        assert report.records["users.csv"] == good + bad


def test_all_users_rejected_does_not_deactivate_the_roster(engine: Engine, tmp_path: Path) -> None:
    """The case of the issue: 50,028 rejected users committed as a full upload and marked
    every enrollment inactive. Refused now, the roster stays active."""
    load_sds_csv(engine, write_drop(tmp_path / "first", BASE_SDS), tenant_id=TENANT)
    before = whole_store(engine)

    with pytest.raises(LoadError, match="all 200 records rejected"):
        load_sds_csv(engine, all_rejected_users(tmp_path / "bad", 200), tenant_id=TENANT)

    assert whole_store(engine) == before


def test_a_required_file_without_records_refuses_the_upload(
    engine: Engine, tmp_path: Path
) -> None:
    drop = write_drop(tmp_path, BASE_SDS | {"roles.csv": "userSourcedId,orgSourcedId,role\n"})

    with pytest.raises(LoadError, match=r"^roles\.csv: no records in a required file"):
        load_sds_csv(engine, drop, tenant_id=TENANT)


def test_an_optional_file_may_lose_a_few_records(engine: Engine, tmp_path: Path) -> None:
    enrollments = "classSourcedId,userSourcedId,role\nk9,u1,student\n"
    drop = write_drop(tmp_path, BASE_SDS | {"enrollments.csv": enrollments})

    report = load_sds_csv(engine, drop, tenant_id=TENANT)

    assert report.rejected["enrollments.csv"] == report.records["enrollments.csv"] == 1


def test_header_duplicates_are_found_in_a_wide_header(engine: Engine, tmp_path: Path) -> None:
    names = ",".join(f"c{n % 400}" for n in range(800))
    drop = write_drop(tmp_path, BASE_SDS | {"users.csv": f"sourcedId,username,{names}\n"})

    with pytest.raises(LoadError) as raised:
        load_sds_csv(engine, drop, tenant_id=TENANT)

    duplicated = [p.column for p in raised.value.problems]
    assert len(duplicated) == 400 and duplicated[:2] == ["c0", "c1"]


def test_a_folder_with_too_many_files_is_refused(engine: Engine, tmp_path: Path) -> None:
    drop = write_drop(tmp_path, BASE_SDS | {f"extra{n}.txt": "" for n in range(5)})

    with pytest.raises(LoadError, match="more than 6 files in the folder"):
        load_sds_csv(engine, drop, tenant_id=TENANT, limits=ReadLimits(max_members=6))


def test_a_member_name_too_long_is_refused(engine: Engine, tmp_path: Path) -> None:
    files = {name: text.encode() for name, text in BASE_SDS.items()}
    drop = sds_zip(tmp_path / "drop.zip", files | {"n" * 300 + ".csv": b""})

    with pytest.raises(LoadError, match="a member name longer than 255 characters"):
        load_sds_csv(engine, drop, tenant_id=TENANT)


def test_oneroster_zip_with_two_members_of_one_name_is_refused(
    engine: Engine, tmp_path: Path
) -> None:
    drop = tmp_path / "oneroster.zip"
    with zipfile.ZipFile(drop, "w") as archive:
        for name, text in ONEROSTER_DROP.items():
            archive.writestr(f"export/{name}", text)
        archive.writestr("export/USERS.csv", "sourcedId\n")

    with pytest.raises(LoadError, match="two members named 'users.csv' and 'USERS.csv'"):
        load_oneroster_csv(engine, drop, tenant_id=TENANT)


def test_a_file_that_is_neither_folder_nor_zip_is_refused(engine: Engine, tmp_path: Path) -> None:
    truncated = tmp_path / "drop.zip"
    truncated.write_bytes(b"PK\x03\x04 not really")

    with pytest.raises(LoadError, match="not a folder or zip archive"):
        load_sds_csv(engine, truncated, tenant_id=TENANT)


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        ('{"entities": [{"entityName": "Person", "dataPartitions": [1]}]}', "dataPartitions"),
        ('{"entities": [{"entityName": "Person", "dataPartitions": "x"}]}', "dataPartitions"),
        (
            '{"entities": [{"entityName": "Person", "dataPartitionPatterns": '
            '[{"rootLocation": "local:/roster", "regularExpression": "("}]}]}',
            "is not a regular expression",
        ),
        (
            '{"entities": [{"entityName": "Person", "dataPartitions": [{"location": 7}]}]}',
            "location in the snapshot manifest is not a string",
        ),
        ("[" * 100_000 + "]" * 100_000, "nests deeper than 32 levels"),
        (" " * (5 << 20), "larger than 4,194,304 bytes"),
    ],
)
def test_a_malformed_lake_manifest_is_refused_in_one_line(
    engine: Engine, tmp_path: Path, manifest: str, reason: str
) -> None:
    folder = deep_manifest(tmp_path, 1)
    (folder / "snapshot.roster.manifest.cdm.json").write_text(manifest)

    with pytest.raises(LoadError) as raised:
        load_sds_lake(engine, folder, tenant_id=TENANT)

    assert reason in str(raised.value) and "\n" not in str(raised.value)


def test_a_oneroster_manifest_bomb_is_refused_without_reading_it_all(
    engine: Engine, tmp_path: Path
) -> None:
    drop = tmp_path / "oneroster.zip"
    with zipfile.ZipFile(drop, "w", zipfile.ZIP_DEFLATED) as archive:
        manifest = ONEROSTER_DROP["manifest.csv"] + "x\n" * 5_000
        for name, text in (ONEROSTER_DROP | {"manifest.csv": manifest}).items():
            archive.writestr(name, text)

    with pytest.raises(LoadError) as raised:
        load_oneroster_csv(engine, drop, tenant_id=TENANT, limits=ReadLimits(max_members=100))

    reasons = [problem.reason for problem in raised.value.problems]
    assert reasons[-1] == "more than 100 entries; not read further"
    entries = ONEROSTER_DROP["manifest.csv"].count("\n") - 1
    assert len(reasons) == 101 - entries + 1  # the bad lines of 101 records, then the refusal


def test_an_archive_whose_end_record_understates_its_entries_is_refused(
    engine: Engine, tmp_path: Path
) -> None:
    drop = HOSTILE_DROPS["100k zip members"][1](tmp_path / "drop", 50)
    data = bytearray(drop.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    data[end + 8 : end + 12] = (3).to_bytes(2, "little") * 2  # entries on disk, in total
    drop.write_bytes(bytes(data))

    with pytest.raises(LoadError, match="more than 10 entries in the archive"):
        load_sds_csv(engine, drop, tenant_id=TENANT, limits=ReadLimits(max_members=10))


def test_keys_spilled_to_disk_give_the_same_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key budget far below the drop's keys makes every key table spill and merge runs;
    duplicates (named by the line of the first) and broken references are found alike."""
    drop = tmp_path / "drop"
    generate_sds_csv(drop, students=400, seed=3)
    users = (drop / "users.csv").read_text().splitlines()
    enrollments = (drop / "enrollments.csv").read_text().splitlines()
    with (drop / "users.csv").open("a") as extra:
        extra.writelines(f"{line}\n" for line in users[1:4])  # duplicates of the first users
    with (drop / "enrollments.csv").open("a") as extra:
        extra.writelines(f"{line}\n" for line in enrollments[1:3])
        extra.write(enrollments[1].replace(enrollments[1].split(",")[1], "nobody") + "\n")

    spills = []
    monkeypatch.setattr(KeyTable, "spill", _counted(KeyTable.spill, spills))
    reports = []
    for name, limits in (("roomy", ReadLimits()), ("spilled", ReadLimits(max_key_memory=64 << 10))):
        store = create_store_engine(f"sqlite:///{tmp_path / name}.db")
        upgrade_to_head(store)
        reports.append(load_sds_csv(store, drop, tenant_id=TENANT, limits=limits))
        store.dispose()

    roomy, spilled = reports
    assert len(spills) >= 3  # only the spilled load
    assert spilled.records == roomy.records
    assert spilled.rows == roomy.rows
    assert spilled.rejected == roomy.rejected == {**roomy.rejected, "users.csv": 3}
    assert roomy.rejected["enrollments.csv"] == 3
    assert [p.__dict__ for p in spilled.problems] == [p.__dict__ for p in roomy.problems]


def _counted(method, calls: list):  # type: ignore[no-untyped-def]
    def counting(self, *args):  # type: ignore[no-untyped-def]
        if len(self):
            calls.append(len(self))
        return method(self, *args)

    return counting
