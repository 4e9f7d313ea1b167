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
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from alembic.script import ScriptDirectory
from click.testing import Result
from rich.console import Console
from sqlalchemy import select
from typer.testing import CliRunner

import industrydata
from industrydata import cli
from industrydata.canonical.sql import TENANT_COLUMN, sql_table
from industrydata.canonical.statistics import count_rows
from industrydata.canonical.tables import CANONICAL_TABLES, table_by_name
from industrydata.cli import app
from industrydata.config import Settings
from industrydata.demo import DEMO_ADMINS, DEMO_TENANT_ID
from industrydata.directory import get_user, global_administrators, is_global_administrator
from industrydata.errors import LoadError, Unauthenticated
from industrydata.identity import DEFAULT_DELEGATED_SCOPES, DevelopmentKeys, TokenValidator
from industrydata.store import Store, create_store_engine, open_store
from industrydata.store.migrate import alembic_config
from tests.canonical.ingest_support import ONEROSTER_DROP, with_line, write_drop
from tests.damaged_uploads import ZIP_DAMAGES, damaged_zip, deeply_nested_snapshot

TENANT = "5d0c3b1a-7e2f-4a6b-9c8d-0e1f2a3b4c5d"
USER = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
OTHER_TENANT = "3e2d1c0b-9a8f-4e7d-a6c5-b4a3f2e1d0c9"
OTHER_USER = "6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c"
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


def add_directory_user(
    data_dir: Path, *, tenant: str = TENANT, user: str = USER, store_url: str | None = None
) -> None:
    """``user`` joins ``tenant``'s directory (as an ordinary user) through the CLI."""
    result = invoke(
        "directory",
        "add-user",
        "--tenant",
        tenant,
        "--id",
        user,
        "--display-name",
        "Lee Gu",
        "--data-dir",
        data_dir,
        store_url=store_url,
    )
    assert result.exit_code == 0, result.stderr


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
    add_directory_user(data_dir)

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
    add_directory_user(data_dir)
    token = invoke(
        "token", "--tenant", TENANT, "--user", USER, "--data-dir", data_dir
    ).stdout.strip()

    with pytest.raises(Unauthenticated):
        validator(tmp_path / "elsewhere").validate(token)


def test_token_before_any_directory_exists_is_refused_and_creates_no_database(
    data_dir: Path,
) -> None:
    result = invoke("token", "--tenant", TENANT, "--user", USER, "--data-dir", data_dir)

    assert result.exit_code == 1 and result.stdout == ""
    assert "--allow-unknown-user" in result.stderr
    assert not (data_dir / "industrydata.db").exists()


@pytest.mark.parametrize(
    "directory",
    [
        pytest.param([], id="empty-directory"),
        pytest.param([(TENANT, OTHER_USER)], id="another-user"),
        pytest.param([(OTHER_TENANT, USER)], id="same-user-in-another-tenant"),
    ],
)
def test_token_for_a_user_absent_from_the_tenants_directory_is_refused(
    data_dir: Path, store_url: str, directory: list[tuple[str, str]]
) -> None:
    for tenant, user in directory:
        add_directory_user(data_dir, tenant=tenant, user=user, store_url=store_url)

    for options in ([], ["--scopes", "IndustryData-OutboundFlow.Read.All"]):
        result = invoke(
            "token",
            "--tenant",
            TENANT,
            "--user",
            USER,
            *options,
            "--data-dir",
            data_dir,
            store_url=store_url,
        )

        assert result.exit_code == 1
        assert result.stdout == ""
        assert len(result.stderr.splitlines()) == 1
        assert f"user {USER} is not in the directory of tenant {TENANT}" in result.stderr
        assert "--allow-unknown-user" in result.stderr


def test_token_for_an_unknown_user_with_the_flag_or_for_an_application(
    data_dir: Path, store_url: str
) -> None:
    for options in (["--allow-unknown-user"], ["--roles", "IndustryData-Run.Read.All"]):
        result = invoke(
            "token",
            "--tenant",
            TENANT,
            "--user",
            USER,
            *options,
            "--data-dir",
            data_dir,
            store_url=store_url,
        )

        assert result.exit_code == 0, result.stderr
        principal = validator(data_dir).validate(result.stdout.strip())
        assert (principal.tenant_id, principal.object_id) == (TENANT, USER)


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

    shown = one_line(error_line(result) + " " + result.stdout)
    assert "users.csv" in shown and "missing" in shown
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
    assert (
        result.stderr
        == f"warning: loaded, but 1 record was rejected; the problems are in {report}\n"
    )


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

    shown = one_line(error_line(result) + " " + result.stdout)
    assert "manifest.csv" in shown and "delta" in shown
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


# --- version ------------------------------------------------------------------------------


def test_version_prints_the_package_version() -> None:
    result = invoke("--version")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"industrydata {industrydata.__version__}\n"


# --- the error boundary: one line, exit 1, no traceback ---------------------------------


def import_args(kind: str, upload: Path, data_dir: Path, *options: str) -> list[str | Path]:
    return ["import", kind, upload, "--tenant", TENANT, *options, "--data-dir", data_dir]


@pytest.mark.parametrize("damage", sorted(ZIP_DAMAGES))
def test_a_damaged_zip_is_one_line_of_error_and_changes_nothing(
    data_dir: Path, store_url: str, store: Store, tmp_path: Path, damage: str
) -> None:
    upload = damaged_zip(tmp_path / "upload.zip", ONEROSTER_DROP, damage)

    result = invoke(
        *import_args("oneroster-csv", upload, data_dir, "--create-tenant"), store_url=store_url
    )

    assert "Traceback" not in error_line(result)
    assert result.stdout == ""
    assert sum(count_rows(store.engine, TENANT).values()) == 0


def test_a_deeply_nested_lake_manifest_is_one_line_of_error(
    data_dir: Path, store_url: str, store: Store, tmp_path: Path
) -> None:
    snapshot = deeply_nested_snapshot(tmp_path / "roster" / "2021-09-05T06-16-22")

    result = invoke(
        *import_args("sds-lake", snapshot, data_dir, "--create-tenant"), store_url=store_url
    )

    error_line(result)
    assert result.stdout == ""
    assert sum(count_rows(store.engine, TENANT).values()) == 0


def fail_unexpectedly(*_args: object, **_kwargs: object) -> None:
    """A loader with a bug; its local variable stands for a secret a traceback could show."""
    signing_secret = SECRET  # noqa: F841 - what a traceback with locals would print
    raise KeyError("the bug")


SECRET = f"s3cret-{uuid.uuid4().hex}"


def test_an_unexpected_error_is_one_line_naming_the_debug_switch(
    data_dir: Path, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("industrydata.canonical.ingest.load_oneroster_csv", fail_unexpectedly)
    upload = write_drop(tmp_path / "oneroster", ONEROSTER_DROP)

    result = invoke(
        *import_args("oneroster-csv", upload, data_dir, "--create-tenant"), store_url=store_url
    )

    assert error_line(result) == (
        "error: internal error (KeyError); run again with --debug "
        "(or INDUSTRYDATA_DEBUG=1) to see the traceback"
    )


@pytest.mark.parametrize("switch", ["option", "environment"])
def test_debug_adds_the_plain_traceback_without_local_variables(
    data_dir: Path, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, switch: str
) -> None:
    monkeypatch.setattr("industrydata.canonical.ingest.load_oneroster_csv", fail_unexpectedly)
    upload = write_drop(tmp_path / "oneroster", ONEROSTER_DROP)
    args = import_args("oneroster-csv", upload, data_dir, "--create-tenant")
    if switch == "option":
        result = invoke("--debug", *args, store_url=store_url)
    else:
        environment = {"INDUSTRYDATA_DEBUG": "1", "INDUSTRYDATA_DATABASE_URL": store_url}
        result = runner.invoke(app, list(map(str, args)), env=environment)

    assert result.exit_code == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "in fail_unexpectedly" in result.stderr and "KeyError: 'the bug'" in result.stderr
    assert result.stderr.endswith("error: internal error (KeyError), traceback above\n")
    assert SECRET not in result.stderr + result.stdout


def test_an_error_message_is_printed_as_text_on_one_line(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message carrying file content: no Rich markup is read in it, no line break or terminal
    escape is printed."""
    hostile = "[/bold] users.csv\nline two \x1b[31mred\x1b[0m [red]x[/red]"

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise LoadError(hostile)

    monkeypatch.setattr("industrydata.canonical.ingest.load_oneroster_csv", refuse)
    upload = write_drop(tmp_path / "oneroster", ONEROSTER_DROP)

    result = invoke(*import_args("oneroster-csv", upload, data_dir, "--create-tenant"))

    assert error_line(result) == (
        r"error: [/bold] users.csv\nline two \x1b[31mred\x1b[0m [red]x[/red]"
    )


# --- exit codes of imports ----------------------------------------------------------------


def test_an_import_that_rejects_records_exits_2_and_says_which(
    data_dir: Path, store_url: str, store: Store, tmp_path: Path
) -> None:
    """The rejected value is shown as it is in the file (markup and escapes inert)."""
    users = with_line(
        ONEROSTER_DROP["users.csv"],
        5,
        "x1,,,true,s1,[bold]robot\x1b[31m,x1@x.example,,Xi,Yu,,,,,,,,",
    )
    upload = write_drop(tmp_path / "oneroster", ONEROSTER_DROP | {"users.csv": users})
    report = tmp_path / "problems.csv"

    result = invoke(
        *import_args("oneroster-csv", upload, data_dir, "--create-tenant", "--report", report),
        store_url=store_url,
    )

    assert result.exit_code == 2, result.stderr
    assert result.stderr == (
        f"warning: loaded, but 1 record was rejected; the problems are in {report}\n"
    )
    assert "[bold]robot\\x1b" in result.stdout and "\x1b" not in result.stdout
    with report.open(encoding="utf-8", newline="") as handle:
        header, *problems = list(csv.reader(handle))
    assert header == PROBLEM_HEADER
    assert [problem[:4] for problem in problems] == [["error", "users.csv", "5", "role"]]
    assert count_rows(store.engine, TENANT)["Person"] == 3


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["import", "oneroster-csv", "."], "Missing option '--tenant'"),
        (["import", "sds-csv", ".", "--tenant", TENANT, "--bogus"], "No such option: --bogus"),
        (["--bogus"], "No such option: --bogus"),
        (["import"], "Usage:"),
    ],
)
def test_a_bad_command_line_exits_1_not_2(args: list[str], said: str) -> None:
    """Status 2 is kept for imports that loaded with rejected records."""
    result = invoke(*args)

    assert result.exit_code == 1
    assert said in result.stdout + result.stderr


# --- the data dir -------------------------------------------------------------------------


def commands_on(data_dir: Path, upload: Path) -> dict[str, list[str | Path]]:
    """Every command that takes --data-dir, with valid options, run on ``data_dir``."""
    user = ["--tenant", TENANT, "--id", USER, "--display-name", "Adele Vance"]
    return {
        "serve": ["serve", "--port", "1", "--data-dir", data_dir],
        "demo": ["demo", "--data-dir", data_dir],
        "directory add-user": ["directory", "add-user", *user, "--data-dir", data_dir],
        "token": ["token", "--tenant", TENANT, "--user", USER, "--data-dir", data_dir],
        "import sds-csv": import_args("sds-csv", upload, data_dir, "--create-tenant"),
        "import oneroster-csv": import_args("oneroster-csv", upload, data_dir, "--create-tenant"),
        "import sds-lake": import_args("sds-lake", upload, data_dir, "--create-tenant"),
    }


CREATING_COMMANDS = ("serve", "demo", "directory add-user")
OTHER_COMMANDS = ("token", "import sds-csv", "import oneroster-csv", "import sds-lake")


@pytest.mark.parametrize("command", OTHER_COMMANDS)
def test_a_missing_data_dir_is_refused_by_commands_that_do_not_set_one_up(
    tmp_path: Path, command: str
) -> None:
    missing = tmp_path / "typo"

    result = invoke(*commands_on(missing, tmp_path)[command])

    assert error_line(result) == (
        f"error: data dir {missing} does not exist; run `industrydata demo` or "
        "`industrydata serve` first, or pass --data-dir"
    )
    assert not missing.exists()


@pytest.mark.parametrize("command", ["demo", "directory add-user"])
def test_a_missing_data_dir_is_created_by_commands_that_set_one_up(
    tmp_path: Path, store_url: str, command: str
) -> None:
    created = tmp_path / "new" / "data"

    result = invoke(*commands_on(created, tmp_path)[command], store_url=store_url)

    assert result.exit_code == 0, result.stderr
    assert created.is_dir() and created.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("command", [*CREATING_COMMANDS, *OTHER_COMMANDS])
def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path, command: str) -> None:
    file = tmp_path / "data"
    file.write_text("not a folder", encoding="utf-8")

    result = invoke(*commands_on(file, tmp_path)[command])

    assert error_line(result) == f"error: data dir {file} is not a folder"
    assert file.read_text(encoding="utf-8") == "not a folder"


@pytest.mark.parametrize("command", CREATING_COMMANDS)
def test_a_data_dir_that_cannot_be_created_is_one_line(tmp_path: Path, command: str) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    impossible = tmp_path / "file" / "data"

    result = invoke(*commands_on(impossible, tmp_path)[command])

    assert error_line(result) == f"error: cannot create data dir {impossible}: Not a directory"


def test_invalid_settings_are_one_line_without_the_value(data_dir: Path) -> None:
    result = runner.invoke(
        app,
        ["token", "--tenant", TENANT, "--user", USER, "--data-dir", str(data_dir)],
        env={"INDUSTRYDATA_TOKEN_LIFETIME_SECONDS": SECRET},
    )

    line = error_line(result)
    assert line.startswith("error: invalid setting: INDUSTRYDATA_TOKEN_LIFETIME_SECONDS: ")
    assert SECRET not in line


# --- --tenant on imports ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sds-csv", "oneroster-csv", "sds-lake"])
def test_an_import_into_an_unknown_tenant_needs_create_tenant(
    data_dir: Path, store_url: str, store: Store, tmp_path: Path, kind: str
) -> None:
    upload = write_drop(tmp_path / "oneroster", ONEROSTER_DROP)

    result = invoke(*import_args(kind, upload, data_dir), store_url=store_url)

    assert error_line(result) == (
        f"error: tenant {TENANT} has no directory users and no roster data; "
        "pass --create-tenant to load into a new tenant"
    )
    assert result.stdout == ""
    assert sum(count_rows(store.engine, TENANT).values()) == 0


def test_an_import_into_a_tenant_with_directory_users_needs_no_flag(
    data_dir: Path, store_url: str, store: Store, tmp_path: Path
) -> None:
    commands = commands_on(data_dir, tmp_path)
    assert invoke(*commands["directory add-user"], store_url=store_url).exit_code == 0
    upload = write_drop(tmp_path / "oneroster", ONEROSTER_DROP)

    result = invoke(*import_args("oneroster-csv", upload, data_dir), store_url=store_url)

    assert result.exit_code == 0, result.stderr
    assert "created tenant" not in result.stdout
    assert count_rows(store.engine, TENANT)["Person"] == 3


def test_an_import_into_a_tenant_with_roster_data_needs_no_flag(
    data_dir: Path, store_url: str, store: Store, tmp_path: Path
) -> None:
    upload = write_drop(tmp_path / "oneroster", ONEROSTER_DROP)
    first = invoke(
        *import_args("oneroster-csv", upload, data_dir, "--create-tenant"), store_url=store_url
    )
    assert first.exit_code == 0 and f"created tenant {TENANT}" in first.stdout

    again = invoke(*import_args("oneroster-csv", upload, data_dir), store_url=store_url)

    assert again.exit_code == 0, again.stderr
    assert "created tenant" not in again.stdout


# --- input and report paths, the database -------------------------------------------------


def test_a_missing_input_path_is_one_line(data_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.zip"

    result = invoke(*import_args("sds-csv", missing, data_dir, "--create-tenant"))

    assert error_line(result) == f"error: {missing} does not exist"


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("missing-folder/problems.csv", "folder {parent} does not exist"),
        ("a-file/problems.csv", "folder {parent} does not exist"),
        ("a-folder", "is a folder"),
    ],
)
def test_a_report_path_that_cannot_be_written_is_refused_before_loading(
    data_dir: Path, store_url: str, store: Store, tmp_path: Path, where: str, reason: str
) -> None:
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    (tmp_path / "a-folder").mkdir()
    report = tmp_path / where
    upload = write_drop(tmp_path / "oneroster", ONEROSTER_DROP)

    result = invoke(
        *import_args("oneroster-csv", upload, data_dir, "--create-tenant", "--report", report),
        store_url=store_url,
    )

    assert reason.format(parent=report.parent) in error_line(result)
    assert sum(count_rows(store.engine, TENANT).values()) == 0


def closed_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("command", ["directory add-user", "import oneroster-csv"])
def test_a_database_that_does_not_answer_is_one_line_without_the_password(
    data_dir: Path, tmp_path: Path, command: str
) -> None:
    port = closed_loopback_port()
    url = f"postgresql://operator:{SECRET}@127.0.0.1:{port}/industrydata"
    upload = write_drop(tmp_path / "oneroster", ONEROSTER_DROP)

    result = invoke(*commands_on(data_dir, upload)[command], store_url=url)

    line = error_line(result)
    assert line.startswith(
        f"error: cannot use the database postgresql+psycopg://operator:***@127.0.0.1:{port}/"
        "industrydata: "
    )
    assert SECRET not in result.stdout + result.stderr


def test_a_database_url_that_does_not_parse_is_one_line_without_the_url(data_dir: Path) -> None:
    result = invoke(
        "directory",
        "add-user",
        "--tenant",
        TENANT,
        "--id",
        USER,
        "--display-name",
        "A",
        "--data-dir",
        data_dir,
        store_url=f"not a url {SECRET}",
    )

    assert error_line(result) == "error: INDUSTRYDATA_DATABASE_URL is not a usable database URL"


# --- generate sds-csv's folder ------------------------------------------------------------


def test_generate_into_a_file_is_one_line(tmp_path: Path) -> None:
    file = tmp_path / "district"
    file.write_text("", encoding="utf-8")

    for target, expected in (
        (file, f"error: {file} is not a folder"),
        (file / "inside", f"error: {file / 'inside'}: Not a directory"),
    ):
        assert error_line(invoke("generate", "sds-csv", target)) == expected


@pytest.mark.parametrize(
    "args",
    [
        ("worker",),
        ("jobs",),
        ("serve", "--workers", "2"),
    ],
)
def test_production_commands_are_refused_in_embedded_mode(
    args: tuple[str, ...], data_dir: Path
) -> None:
    line = error_line(invoke(*args, "--data-dir", data_dir))
    assert "INDUSTRYDATA_MODE=production" in line


def test_worker_refuses_an_unknown_queue(data_dir: Path) -> None:
    line = error_line(invoke("worker", "--queues", "runs,everything", "--data-dir", data_dir))
    assert "everything" in line and "runs, imports, periodic" in line


def test_db_upgrade_brings_the_store_to_the_newest_revision(store_url: str, data_dir: Path) -> None:
    result = invoke("db", "upgrade", "--data-dir", data_dir, store_url=store_url)
    assert result.exit_code == 0, result.stderr
    head = ScriptDirectory.from_config(alembic_config(create_store_engine(store_url)))
    assert result.stdout.strip() == f"database at revision {head.get_current_head()}"
