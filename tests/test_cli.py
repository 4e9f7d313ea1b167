"""The ``industrydata`` command line: each command does its one thing and prints what it
promises (``token`` prints the JWT and nothing else); bad input ends in a clear one-line error
on stderr and exit status 1, and leaves the store as it was; an import that loaded but rejected
records exits 2."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from click.testing import Result
from sqlalchemy import select
from rich.console import Console
from typer.testing import CliRunner

from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.statistics import count_rows
from industrydata.canonical.tables import CANONICAL_TABLES, table_by_name
from industrydata import cli
from industrydata.cli import app
from industrydata.config import Settings
from industrydata.demo import DEMO_ADMINS, DEMO_TENANT_ID
from industrydata.directory import get_user, global_administrators, is_global_administrator
from industrydata.errors import Unauthenticated
from industrydata.identity import DEFAULT_DELEGATED_SCOPES, DevelopmentKeys, TokenValidator
from industrydata.store import Store, open_store
from tests.canonical.ingest_support import ONEROSTER_DROP, write_drop

TENANT = "5d0c3b1a-7e2f-4a6b-9c8d-0e1f2a3b4c5d"
USER = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
JWT = re.compile(r"[\w-]+\.[\w-]+\.[\w-]+")
SAMPLE = "sds-v2.1-csv-sample"
PROBLEM_HEADER = ["severity", "file", "line", "column", "value", "reason"]

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test passes configures the commands."""
    for name in list(os.environ):
        if name.startswith("INDUSTRYDATA_") and not name.startswith("INDUSTRYDATA_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An existing data dir (only serve, demo and directory add-user create a missing one)."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """The store the commands write to (SQLite, and PostgreSQL when configured)."""
    opened = open_store(store_url)
    yield opened
    opened.dispose()


def invoke(*args: str | Path, store_url: str | None = None) -> Result:
    environment = {"INDUSTRYDATA_DATABASE_URL": store_url} if store_url else {}
    return runner.invoke(app, [str(arg) for arg in args], env=environment, catch_exceptions=False)


def one_line(text: str) -> str:
    """Rich wraps long lines at the terminal width; compare text with whitespace collapsed."""
    return " ".join(text.split())


def error_line(result: Result) -> str:
    """The one line a failed command prints on stderr (failing the test unless it is one line)."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def rows_of(store: Store, table_name: str, tenant_id: str = TENANT) -> list[tuple]:
    table = sql_table(table_by_name(table_name))
    with store.engine.connect() as connection:
        query = (
            select(table)
            .where(table.c[TENANT_COLUMN] == tenant_id)
            .order_by(*table.primary_key.columns)
        )
        return [tuple(row) for row in connection.execute(query)]


def validator(data_dir: Path) -> TokenValidator:
    """What the service would validate tokens with, on ``data_dir``'s keys."""
    settings = Settings(data_dir=data_dir)
    return TokenValidator(
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        development_keys=DevelopmentKeys(settings.data_dir),
    )


# --- token --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "scp", "roles"),
    [
        ([], " ".join(DEFAULT_DELEGATED_SCOPES), None),
        (
            ["--scopes", "IndustryData-OutboundFlow.Read.All User.Read"],
            "IndustryData-OutboundFlow.Read.All User.Read",
            None,
        ),
        (
            ["--roles", "IndustryData-OutboundFlow.ReadWrite.All IndustryData-Run.Start"],
            None,
            ["IndustryData-OutboundFlow.ReadWrite.All", "IndustryData-Run.Start"],
        ),
        (
            ["--scopes", "User.Read", "--roles", "IndustryData-Run.Read.All"],
            "User.Read",
            ["IndustryData-Run.Read.All"],
        ),
    ],
)
def test_token_prints_only_a_jwt_with_the_asked_permissions(
    data_dir: Path, options: list[str], scp: str | None, roles: list[str] | None
) -> None:
    result = invoke("token", "--tenant", TENANT, "--user", USER, *options, "--data-dir", data_dir)

    assert result.exit_code == 0, result.stderr
    token = result.stdout.removesuffix("\n")
    assert JWT.fullmatch(token) and result.stdout == token + "\n"
    principal = validator(data_dir).validate(token)
    assert (principal.tenant_id, principal.object_id) == (TENANT, USER)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["tid"], claims["oid"]) == (TENANT, USER)
    assert claims.get("scp") == scp
    assert claims.get("roles") == roles


def test_token_does_not_validate_with_another_data_dirs_keys(
    data_dir: Path, tmp_path: Path
) -> None:
    token = invoke(
        "token", "--tenant", TENANT, "--user", USER, "--data-dir", data_dir
    ).stdout.strip()

    with pytest.raises(Unauthenticated):
        validator(tmp_path / "elsewhere").validate(token)


# --- directory add-user -------------------------------------------------------------------


def test_add_user_global_admin_makes_a_global_administrator(
    data_dir: Path, store_url: str, store: Store
) -> None:
    result = invoke(
        "directory",
        "add-user",
        "--tenant",
        TENANT,
        "--id",
        USER,
        "--display-name",
        "Adele Vance",
        "--upn",
        "adele@contoso.example",
        "--global-admin",
        "--data-dir",
        data_dir,
        store_url=store_url,
    )

    assert result.exit_code == 0, result.stderr
    assert "Global Administrator" in one_line(result.stdout)
    with store.reading() as session:
        assert is_global_administrator(session, tenant_id=TENANT, object_id=USER)
        (admin,) = global_administrators(session, tenant_id=TENANT)
        assert (admin.display_name, admin.user_principal_name) == (
            "Adele Vance",
            "adele@contoso.example",
        )


def test_add_user_again_without_the_flag_replaces_the_user(
    data_dir: Path, store_url: str, store: Store
) -> None:
    for name, flag in (("Adele Vance", ["--global-admin"]), ("Adele V.", [])):
        result = invoke(
            "directory",
            "add-user",
            "--tenant",
            TENANT,
            "--id",
            USER,
            "--display-name",
            name,
            *flag,
            "--data-dir",
            data_dir,
            store_url=store_url,
        )
        assert result.exit_code == 0, result.stderr

    with store.reading() as session:
        assert not is_global_administrator(session, tenant_id=TENANT, object_id=USER)
        user = get_user(session, tenant_id=TENANT, object_id=USER)
        assert user is not None and user.display_name == "Adele V."


# --- import sds-csv -----------------------------------------------------------------------


def printed_rows(output: str) -> dict[str, int]:
    """The 'table  rows' lines of the load summary."""
    return {
        name: int(rows)
        for name, rows in re.findall(
            r"^[^\w\n]*([A-Z]\w+)[^\w\n]+(\d+)[^\w\n]*$", output, re.MULTILINE
        )
    }


@pytest.mark.reference
def test_import_sds_csv_sample_prints_rows_per_table(
    data_dir: Path, store_url: str, store: Store, reference_dir: Path
) -> None:
    result = invoke(
        "import",
        "sds-csv",
        reference_dir / SAMPLE,
        "--tenant",
        TENANT,
        "--create-tenant",
        "--data-dir",
        data_dir,
        store_url=store_url,
    )

    assert result.exit_code == 0, result.stderr
    counts = count_rows(store.engine, TENANT)
    assert printed_rows(result.stdout) == counts
    assert set(counts) == {table.name for table in CANONICAL_TABLES}
    assert counts["Person"] > 0 and counts["Enrollment"] > 0
    assert "errors: 0, warnings: 0" in result.stdout
    assert f"created tenant {TENANT}" in result.stdout and result.stderr == ""


@pytest.mark.reference
def test_import_sds_csv_without_users_file_fails_and_changes_nothing(
    data_dir: Path, store_url: str, store: Store, reference_dir: Path, tmp_path: Path
) -> None:
    assert (
        invoke(
            "import",
            "sds-csv",
            reference_dir / SAMPLE,
            "--tenant",
            TENANT,
            "--create-tenant",
            "--data-dir",
            data_dir,
            store_url=store_url,
        ).exit_code
        == 0
    )
    before = (count_rows(store.engine, TENANT), rows_of(store, "Person"))
    incomplete = shutil.copytree(reference_dir / SAMPLE, tmp_path / "incomplete")
    (incomplete / "users.csv").unlink()

    result = invoke(
        "import",
        "sds-csv",
        incomplete,
        "--tenant",
        TENANT,
        "--data-dir",
        data_dir,
        store_url=store_url,
    )

    assert "incomplete" in error_line(result)
    assert "users.csv" in result.stdout and "missing" in one_line(result.stdout)
    assert (count_rows(store.engine, TENANT), rows_of(store, "Person")) == before


@pytest.mark.reference
def test_import_sds_csv_report_writes_the_problems_as_csv(
    data_dir: Path, store_url: str, reference_dir: Path, tmp_path: Path
) -> None:
    drop = shutil.copytree(reference_dir / SAMPLE, tmp_path / "drop")
    demographics = (drop / "demographics.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    line = next(
        number
        for number, text in enumerate(demographics, start=1)
        if text.startswith("114003,male,")
    )
    demographics[line - 1] = demographics[line - 1].replace("114003,male,", "114003,robot,")
    (drop / "demographics.csv").write_text("".join(demographics), encoding="utf-8")
    report = tmp_path / "problems.csv"

    result = invoke(
        "import",
        "sds-csv",
        drop,
        "--tenant",
        TENANT,
        "--create-tenant",
        "--report",
        report,
        "--data-dir",
        data_dir,
        store_url=store_url,
    )

    assert result.exit_code == 2, result.stderr
    with report.open(encoding="utf-8", newline="") as handle:
        header, *problems = list(csv.reader(handle))
    assert header == PROBLEM_HEADER
    assert [problem[:5] for problem in problems] == [
        ["error", "demographics.csv", str(line), "sex", "robot"]
    ]
    assert problems[0][5]
    assert "errors: 1, warnings: 0" in one_line(result.stdout)
    assert result.stderr == f"warning: loaded, but 1 records were rejected; the problems are in {report}\n"


# --- import oneroster-csv and load progress -----------------------------------------------


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_import_oneroster_csv_prints_rows_per_table_and_a_line_per_file(
    data_dir: Path, store_url: str, store: Store, tmp_path: Path, packed: bool
) -> None:
    upload = write_drop(tmp_path / "oneroster", ONEROSTER_DROP)
    if packed:
        upload = Path(shutil.make_archive(str(tmp_path / "oneroster"), "zip", upload))

    result = invoke(
        "import",
        "oneroster-csv",
        upload,
        "--tenant",
        TENANT,
        "--create-tenant",
        "--data-dir",
        data_dir,
        store_url=store_url,
    )

    assert result.exit_code == 0, result.stderr
    counts = count_rows(store.engine, TENANT)
    assert printed_rows(result.stdout) == counts
    assert counts["Person"] == 3 and counts["Enrollment"] == 2
    progress = re.findall(
        r"^(\w+\.csv): ([\d,]+) records \(([\d,]+) rows/s\)$", result.stdout, re.M
    )
    assert [(file, records) for file, records, _ in progress] == [
        ("academicSessions.csv", "3"),
        ("orgs.csv", "2"),
        ("courses.csv", "1"),
        ("classes.csv", "1"),
        ("users.csv", "3"),
        ("enrollments.csv", "2"),
        ("demographics.csv", "1"),
    ]
    assert "errors: 0, warnings: 0" in result.stdout


def test_import_oneroster_csv_structural_error_prints_the_problems_and_changes_nothing(
    data_dir: Path, store_url: str, store: Store, tmp_path: Path
) -> None:
    manifest = ONEROSTER_DROP["manifest.csv"].replace("file.users,bulk", "file.users,delta")
    upload = write_drop(tmp_path / "delta", ONEROSTER_DROP | {"manifest.csv": manifest})
    report = tmp_path / "problems.csv"

    result = invoke(
        "import",
        "oneroster-csv",
        upload,
        "--tenant",
        TENANT,
        "--create-tenant",
        "--report",
        report,
        "--data-dir",
        data_dir,
        store_url=store_url,
    )

    error_line(result)
    assert "manifest.csv" in result.stdout and "delta" in one_line(result.stdout)
    with report.open(encoding="utf-8", newline="") as handle:
        header, *problems = list(csv.reader(handle))
    assert header == PROBLEM_HEADER
    assert [problem[:4] for problem in problems] == [["error", "manifest.csv", "16", "value"]]
    assert sum(count_rows(store.engine, TENANT).values()) == 0


def test_import_shows_a_progress_bar_per_file_on_a_terminal(
    data_dir: Path, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=screen, force_terminal=True, width=140))
    upload = write_drop(tmp_path / "oneroster", ONEROSTER_DROP)

    result = invoke(
        "import",
        "oneroster-csv",
        upload,
        "--tenant",
        TENANT,
        "--create-tenant",
        "--data-dir",
        data_dir,
        store_url=store_url,
    )

    assert result.exit_code == 0, result.stderr
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    for file in ("academicSessions.csv", "users.csv", "demographics.csv"):
        assert re.search(rf"{re.escape(file)}.*rows/s", shown), file
    assert not re.search(r"^\w+\.csv: [\d,]+ records \(", shown, re.M)


# --- generate sds-csv ---------------------------------------------------------------------


def test_generate_sds_csv_prints_the_rows_of_the_same_files_for_a_seed(tmp_path: Path) -> None:
    outputs = []
    for folder in ("first", "second"):
        result = invoke("generate", "sds-csv", tmp_path / folder, "--students", "25", "--seed", "7")
        assert result.exit_code == 0, result.stderr
        outputs.append(result.stdout)

    printed = dict(re.findall(r"^(\w+\.csv): (\d+)$", outputs[0], re.MULTILINE))
    files = sorted(path.name for path in (tmp_path / "first").iterdir())
    assert sorted(printed) == files and "users.csv" in files
    for name, rows in printed.items():
        with (tmp_path / "first" / name).open(encoding="utf-8", newline="") as handle:
            assert len(list(csv.reader(handle))) - 1 == int(rows), name
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()
    assert outputs[0] == outputs[1]


# --- demo ---------------------------------------------------------------------------------


def test_demo_seeds_the_demo_tenant_once_and_prints_how_to_try_it(
    data_dir: Path, store_url: str, store: Store
) -> None:
    results, people = [], []
    for _ in range(2):
        results.append(
            invoke("demo", "--port", "8123", "--data-dir", data_dir, store_url=store_url)
        )
        people.append(rows_of(store, "Person", DEMO_TENANT_ID))
    counts = count_rows(store.engine, DEMO_TENANT_ID)

    assert [result.exit_code for result in results] == [0, 0], results[0].stderr
    assert people[0] and people[1] == people[0]
    for result in results:
        output = one_line(result.stdout)
        assert f"demo tenant: {DEMO_TENANT_ID} ({sum(counts.values())} canonical rows)" in output
        (token,) = [line for line in result.stdout.splitlines() if JWT.fullmatch(line)]
        principal = validator(data_dir).validate(token)
        assert (principal.tenant_id, principal.object_id) == (
            DEMO_TENANT_ID,
            DEMO_ADMINS[0].object_id,
        )
        (curl,) = [line for line in result.stdout.splitlines() if line.startswith("curl ")]
        assert f"Bearer {token}" in curl and "http://127.0.0.1:8123/beta/industryData/" in curl
    with store.reading() as session:
        admins = global_administrators(session, tenant_id=DEMO_TENANT_ID)
    assert sorted(admin.object_id for admin in admins) == sorted(
        admin.object_id for admin in DEMO_ADMINS
    )


# --- bad GUIDs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["token", "--tenant", "not-a-guid", "--user", USER], "--tenant"),
        (["token", "--tenant", TENANT, "--user", "12345"], "--user"),
        (
            [
                "directory",
                "add-user",
                "--tenant",
                "acme",
                "--id",
                USER,
                "--display-name",
                "X",
                "--global-admin",
            ],
            "--tenant",
        ),
        (
            [
                "directory",
                "add-user",
                "--tenant",
                TENANT,
                "--id",
                "adele",
                "--display-name",
                "X",
                "--global-admin",
            ],
            "--id",
        ),
        (["import", "sds-csv", ".", "--tenant", "acme"], "--tenant"),
    ],
)
def test_bad_guid_is_a_clear_error(
    data_dir: Path, store_url: str, store: Store, args: list[str], option: str
) -> None:
    result = invoke(*args, "--data-dir", data_dir, store_url=store_url)

    assert result.stdout == ""
    assert f"{option} must be a GUID" in error_line(result)
    with store.reading() as session:
        assert global_administrators(session, tenant_id=TENANT) == []
    assert sum(count_rows(store.engine, TENANT).values()) == 0
