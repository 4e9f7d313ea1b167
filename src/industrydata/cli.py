"""The ``industrydata`` command: serve the API, mint development tokens, manage the directory,
load roster files. Each command reads its options, calls one library function and prints."""

from __future__ import annotations

import csv
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from .config import Settings
from .errors import IndustryDataError, LoadError, LoadProblem

if TYPE_CHECKING:
    from .canonical.ingest import FileProgress, LoadReport, ProgressCallback

app = typer.Typer(
    help="industrydata: the industryData data-share outgoing flow, as open software.",
    no_args_is_help=True,
    add_completion=False,
)
directory_app = typer.Typer(
    help="The tenant directory (users, Global Administrators).", no_args_is_help=True
)
import_app = typer.Typer(help="Load roster files into the canonical store.", no_args_is_help=True)
generate_app = typer.Typer(help="Generate synthetic roster files.", no_args_is_help=True)
app.add_typer(directory_app, name="directory")
app.add_typer(import_app, name="import")
app.add_typer(generate_app, name="generate")

console = Console(soft_wrap=True)
errors = Console(stderr=True)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir", envvar="INDUSTRYDATA_DATA_DIR", help="Data folder (database, keys, lake)."
    ),
]
Tenant = Annotated[str, typer.Option("--tenant", help="Tenant id (GUID).")]


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


def _fail(error: IndustryDataError) -> None:
    errors.print(f"[red]error:[/red] {error.message}")
    raise typer.Exit(1)


def _guid(value: str, option: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        errors.print(f"[red]error:[/red] {option} must be a GUID, not {value!r}")
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: DataDir = Path("./data"),
) -> None:
    """Serve the API, scheduler and run executor in one process.

    Example: industrydata serve --port 8000 --data-dir ./data
    """
    from .api.server import serve as serve_api

    serve_api(_settings(data_dir), host=host, port=port)


@app.command()
def token(
    tenant: Tenant,
    user: Annotated[str, typer.Option("--user", help="Object id (GUID) of the user or app.")],
    scopes: Annotated[
        Optional[str], typer.Option(help="Delegated permissions, space-separated.")
    ] = None,
    roles: Annotated[
        Optional[str], typer.Option(help="Application permissions, space-separated.")
    ] = None,
    allow_unknown_user: Annotated[
        bool,
        typer.Option(
            "--allow-unknown-user",
            help="Mint a delegated token for a user absent from the tenant's directory.",
        ),
    ] = False,
    data_dir: DataDir = Path("./data"),
) -> None:
    """Print a bearer token signed by the development identity provider (and nothing else).

    A delegated token (the default, or --scopes) is for a user of the tenant's directory;
    an application token (--roles only) is for any object id.

    Example: industrydata token --tenant $TENANT --user $ADMIN
    """
    from .identity import DevelopmentKeys, is_delegated, mint_token

    settings = _settings(data_dir)
    tenant_id, object_id = _guid(tenant, "--tenant"), _guid(user, "--user")
    scope_list = scopes.split() if scopes is not None else None
    role_list = roles.split() if roles is not None else None
    if (
        is_delegated(scope_list, role_list)
        and not allow_unknown_user
        and not _in_directory(settings, tenant_id, object_id)
    ):
        errors.print(
            f"[red]error:[/red] user {object_id} is not in the directory of tenant {tenant_id} "
            "(add it with 'industrydata directory add-user', or pass --allow-unknown-user)",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    jwt = mint_token(
        DevelopmentKeys(settings.data_dir),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        tenant_id=tenant_id,
        object_id=object_id,
        scopes=scope_list,
        roles=role_list,
        lifetime_seconds=settings.token_lifetime_seconds,
    )
    sys.stdout.write(jwt + "\n")


def _in_directory(settings: Settings, tenant_id: str, object_id: str) -> bool:
    """Whether the store of ``settings`` has this user (a store not created yet has none)."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    from .directory import get_user
    from .store import DirectoryUser, open_store

    url = make_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        return False
    store = open_store(settings.effective_database_url)
    try:
        with store.reading() as session:
            if not inspect(session.connection()).has_table(DirectoryUser.__tablename__):
                return False
            return get_user(session, tenant_id=tenant_id, object_id=object_id) is not None
    finally:
        store.dispose()


@directory_app.command("add-user")
def add_user(
    tenant: Tenant,
    id: Annotated[str, typer.Option("--id", help="Object id (GUID) of the user.")],
    display_name: Annotated[str, typer.Option("--display-name", help="Display name.")],
    upn: Annotated[Optional[str], typer.Option("--upn", help="User principal name.")] = None,
    global_admin: Annotated[
        bool, typer.Option("--global-admin", help="Holds the Global Administrator role.")
    ] = False,
    data_dir: DataDir = Path("./data"),
) -> None:
    """Add (or replace) a user of a tenant's directory.

    Example: industrydata directory add-user --tenant $T --id $U --display-name Adele --global-admin
    """
    from .directory import add_user as add_directory_user
    from .store import open_store, upgrade_to_head

    settings = _settings(data_dir)
    store = open_store(settings.effective_database_url)
    try:
        upgrade_to_head(store.write_engine)
        with store.writing() as session:
            add_directory_user(
                session,
                tenant_id=_guid(tenant, "--tenant"),
                object_id=_guid(id, "--id"),
                display_name=display_name,
                user_principal_name=upn,
                is_global_admin=global_admin,
            )
            session.commit()
    finally:
        store.dispose()
    role = "Global Administrator" if global_admin else "user"
    console.print(f"added {display_name} ({id}) as {role} of tenant {tenant}")


def _problem_table(problems: list[LoadProblem], *, shown: int = 200) -> Table:
    title = "Problems" if len(problems) <= shown else f"Problems (first {shown} of {len(problems)})"
    table = Table(title=title)
    for column in ("severity", "file", "line", "column", "value", "reason"):
        table.add_column(column)
    for problem in problems[:shown]:
        table.add_row(
            problem.severity,
            problem.file,
            str(problem.line or ""),
            problem.column or "",
            problem.value or "",
            problem.reason,
        )
    return table


def _print_report(report: LoadReport, report_file: Path | None) -> None:
    table = Table(title="Rows written per table")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in report.rows.items():
        table.add_row(name, str(rows))
    console.print(table)
    if report.problems:
        console.print(_problem_table(report.problems))
    console.print(f"errors: {report.errors}, warnings: {report.warnings}")
    if report_file is not None:
        _write_problems(report.problems, report_file)


def _write_problems(problems: list[LoadProblem], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["severity", "file", "line", "column", "value", "reason"])
        for problem in problems:
            writer.writerow(
                [
                    problem.severity,
                    problem.file,
                    problem.line,
                    problem.column,
                    problem.value,
                    problem.reason,
                ]
            )


class _RowsPerSecond(ProgressColumn):
    """Records read per second since the file's first record."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.fields['rate']:>9,.0f} rows/s")


@contextmanager
def _load_progress() -> Iterator[ProgressCallback]:
    """A progress bar per file on a terminal; a line per file otherwise (logs, pipes)."""
    started = [time.perf_counter()]
    first_seen: dict[str, float] = {}

    def rate(progress: FileProgress) -> float:
        begun = first_seen.setdefault(progress.file, started[0])
        elapsed = time.perf_counter() - begun
        if progress.done:
            started[0] = time.perf_counter()
        return progress.records / elapsed if elapsed > 0 else 0.0

    if not console.is_terminal:

        def line(progress: FileProgress) -> None:
            if progress.done:
                per_second = rate(progress)
                console.print(
                    f"{progress.file}: {progress.records:,} records ({per_second:,.0f} rows/s)"
                )

        yield line
        return
    columns = (
        TextColumn("{task.description:<22}"),
        BarColumn(),
        TextColumn("{task.fields[records]:>12,} records"),
        _RowsPerSecond(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bars:
        tasks: dict[str, TaskID] = {}

        def bar(progress: FileProgress) -> None:
            if progress.file not in tasks:
                tasks[progress.file] = bars.add_task(
                    progress.file, total=max(progress.bytes_total, 1), records=0, rate=0.0
                )
            bars.update(
                tasks[progress.file],
                completed=progress.bytes_read,
                records=progress.records,
                rate=rate(progress),
            )

        yield bar


def _import(
    load: Callable[..., LoadReport],
    path: Path,
    tenant: str,
    report_file: Path | None,
    data_dir: Path,
) -> None:
    """Run one loader as a full upload for a tenant, with progress, then print its report."""
    from .store import open_store, upgrade_to_head

    tenant_id = _guid(tenant, "--tenant")
    settings = _settings(data_dir)
    store = open_store(settings.effective_database_url)
    try:
        upgrade_to_head(store.write_engine)
        with _load_progress() as progress:
            report = load(store.write_engine, path, tenant_id=tenant_id, progress=progress)
    except LoadError as error:
        errors.print(_problem_table(error.problems))
        if report_file is not None:
            _write_problems(error.problems, report_file)
        _fail(error)
        return
    finally:
        store.dispose()
    _print_report(report, report_file)


ReportFile = Annotated[
    Optional[Path], typer.Option("--report", help="Write the problems as CSV to this file.")
]


@import_app.command("sds-csv")
def import_sds_csv(
    folder: Annotated[
        Path, typer.Argument(help="Folder (or zip archive) with the SDS v2.1 CSV files.")
    ],
    tenant: Tenant,
    report_file: ReportFile = None,
    data_dir: DataDir = Path("./data"),
) -> None:
    """Load an SDS v2.1 CSV drop as a full upload for a tenant; prints a summary.

    Example: industrydata import sds-csv ./sds-drop --tenant $TENANT --report problems.csv
    """
    from .canonical.ingest import load_sds_csv

    _import(load_sds_csv, folder, tenant, report_file, data_dir)


@import_app.command("oneroster-csv")
def import_oneroster_csv(
    path: Annotated[
        Path, typer.Argument(help="Folder or zip archive with manifest.csv and the CSV files.")
    ],
    tenant: Tenant,
    report_file: ReportFile = None,
    data_dir: DataDir = Path("./data"),
) -> None:
    """Load a OneRoster 1.1 CSV upload (bulk) as a full upload for a tenant; prints a summary.

    Example: industrydata import oneroster-csv ./oneroster.zip --tenant $TENANT
    """
    from .canonical.ingest import load_oneroster_csv

    _import(load_oneroster_csv, path, tenant, report_file, data_dir)


@import_app.command("sds-lake")
def import_sds_lake(
    snapshot_folder: Annotated[
        Path,
        typer.Argument(
            help="A snapshot folder of an SDS lake export (roster/<yyyy-MM-ddTHH-mm-ss>)."
        ),
    ],
    tenant: Tenant,
    report_file: ReportFile = None,
    data_dir: DataDir = Path("./data"),
) -> None:
    """Replace a tenant's roster with an SDS lake-export snapshot (ids and timestamps kept).

    Example: industrydata import sds-lake ./lake/roster/2021-09-05T06-16-22 --tenant $TENANT
    """
    from .canonical.ingest import load_sds_lake

    _import(load_sds_lake, snapshot_folder, tenant, report_file, data_dir)


@generate_app.command("sds-csv")
def generate_sds_csv(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the files to.")],
    students: Annotated[int, typer.Option(min=1, help="Number of students.")] = 100,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 0,
) -> None:
    """Generate a synthetic, consistent SDS v2.1 district.

    Example: industrydata generate sds-csv ./district --students 1000
    """
    from .canonical.generator import generate_sds_csv as generate

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = generate(out_dir, students=students, seed=seed)
    for name, count in rows.items():
        console.print(f"{name}: {count}")


@app.command()
def demo(
    data_dir: DataDir = Path("./data"),
    port: Annotated[
        int, typer.Option(help="Port the service will listen on (for the curl line).")
    ] = 8000,
) -> None:
    """Seed the demo tenant (two Global Administrators, a generated roster) and print how to try it.

    Example: industrydata demo --data-dir ./data
    """
    from .demo import DEMO_ADMINS, DEMO_TENANT_ID, seed_demo
    from .identity import DevelopmentKeys, mint_token

    settings = _settings(data_dir)
    rows = seed_demo(settings)
    admin = DEMO_ADMINS[0]
    jwt = mint_token(
        DevelopmentKeys(settings.data_dir),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        tenant_id=DEMO_TENANT_ID,
        object_id=admin.object_id,
        lifetime_seconds=12 * 3600,
    )
    console.print(f"demo tenant: {DEMO_TENANT_ID} ({rows} canonical rows)")
    console.print(
        "Global Administrators: "
        + ", ".join(f"{a.display_name} {a.object_id}" for a in DEMO_ADMINS)
    )
    console.print(f"admin token ({admin.display_name}, valid 12 h):")
    sys.stdout.write(jwt + "\n")
    console.print("try:", style="bold")
    sys.stdout.write(
        f"curl -s -H 'Authorization: Bearer {jwt}' "
        f"http://127.0.0.1:{port}/beta/industryData/dataShareOutgoingFlows/getPotentialDataShareInvitees\n"
    )


def main() -> None:
    """Console entry point; domain errors become one line and a non-zero exit."""
    try:
        app()
    except IndustryDataError as error:
        errors.print(f"[red]error:[/red] {error.message}")
        sys.exit(1)
