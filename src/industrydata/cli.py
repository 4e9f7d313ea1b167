"""The ``industrydata`` command: serve the API, mint development tokens, manage the directory,
load roster files. Each command reads its options, calls one library function and prints.

Every failure ends the same way (``_ErrorBoundary``): one line ``error: ...`` on stderr and exit
status 1, never a traceback (``--debug`` or ``INDUSTRYDATA_DEBUG=1`` adds the plain Python
traceback of an unexpected error; local variables, which may hold secrets, are never shown).
An import exits 0 when it loaded cleanly, 2 when it loaded but rejected records, 1 when it was
refused or failed.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional

import typer
from pydantic import ValidationError
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
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from typer.core import TyperGroup

from . import __version__
from .config import Mode, Settings
from .errors import IndustryDataError, LoadError, LoadProblem

if TYPE_CHECKING:
    from .canonical.ingest import FileProgress, LoadReport, ProgressCallback
    from .store import Store

EXIT_REFUSED = 1
"""Any failure: a refused command line or input, a rejected load, an unexpected error."""
EXIT_REJECTED_RECORDS = 2
"""An import that loaded, but rejected some records (the report lists them)."""


class CommandRefused(Exception):
    """A command refuses its options or its environment before doing anything."""


class _ErrorBoundary(TyperGroup):
    """The one place where a command's failure becomes one line on stderr and exit status 1."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as usage:
            _exit_1_for_usage(usage)
            raise

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except typer.TyperException as usage:  # a subcommand's command line
            _exit_1_for_usage(usage)
            raise
        except Exception as error:  # noqa: BLE001 - this is the boundary
            _exit_with(error, debug=bool(ctx.params.get("debug")))


def _exit_1_for_usage(usage: typer.TyperException) -> None:
    """A bad command line exits 1: Click's 2 would read as "loaded with rejected records"."""
    if getattr(usage, "exit_code", EXIT_REFUSED) == EXIT_REJECTED_RECORDS:
        usage.exit_code = EXIT_REFUSED  # type: ignore[attr-defined]


app = typer.Typer(
    cls=_ErrorBoundary,
    help="industrydata: the industryData data-share outgoing flow, as open software.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)
directory_app = typer.Typer(
    help="The tenant directory (users, Global Administrators).", no_args_is_help=True
)
import_app = typer.Typer(help="Load roster files into the canonical store.", no_args_is_help=True)
db_app = typer.Typer(help="The database's schema.", no_args_is_help=True)
generate_app = typer.Typer(help="Generate synthetic roster files.", no_args_is_help=True)
app.add_typer(directory_app, name="directory")
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(generate_app, name="generate")

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True, highlight=False)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir", envvar="INDUSTRYDATA_DATA_DIR", help="Data folder (database, keys, lake)."
    ),
]
Tenant = Annotated[str, typer.Option("--tenant", help="Tenant id (GUID).")]


def _show_version(value: bool) -> None:
    if value:
        console.print(f"industrydata {__version__}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _global_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="INDUSTRYDATA_DEBUG",
            help="On an unexpected error, also print its Python traceback.",
        ),
    ] = False,
) -> None:
    """Options that apply to every command."""


def _printable(text: str) -> str:
    """``text`` on one line: line breaks, terminal escapes and other invisible characters escaped."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def _print_error(message: str, *, label: str = "error") -> None:
    errors.print(Text.assemble((f"{label}: ", "red"), _printable(message)))


def _describe(error: Exception, *, debug: bool = False) -> str:
    """One line for ``error``, without anything that could hold a secret or a remote's words."""
    if isinstance(error, CommandRefused):
        return str(error)
    if isinstance(error, IndustryDataError):
        return error.message
    if isinstance(error, ValidationError):
        settings = "; ".join(
            f"INDUSTRYDATA_{'_'.join(map(str, problem['loc'])).upper()}: {problem['msg']}"
            for problem in error.errors()
        )
        return f"invalid setting: {settings}"
    if isinstance(error, OSError):
        reason = error.strerror or type(error).__name__
        return f"{error.filename}: {reason}" if error.filename is not None else reason
    if isinstance(error, DBAPIError):
        return f"database error: {_driver_reason(error)}"
    kind = type(error)
    name = kind.__qualname__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__}.{name}"
    if debug:
        return f"internal error ({name}), traceback above"
    return (
        f"internal error ({name}); run again with --debug (or INDUSTRYDATA_DEBUG=1) "
        "to see the traceback"
    )


def _driver_reason(error: DBAPIError) -> str:
    """The first line of the database driver's message (the rest repeats SQL and parameters)."""
    lines = str(error.orig).strip().splitlines()
    return lines[0] if lines else type(error.orig).__name__


def _exit_with(error: Exception, *, debug: bool) -> NoReturn:
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    _print_error(_describe(error, debug=debug))
    raise typer.Exit(EXIT_REFUSED)


def _settings(data_dir: Path, *, create: bool = False) -> Settings:
    """Settings on ``data_dir``, which must exist unless the command may ``create`` it.

    Only the commands that set a data dir up (``serve``, ``demo``, ``directory add-user``)
    create it: elsewhere a mistyped path would quietly start an empty store.
    """
    settings = Settings(data_dir=data_dir)
    folder = settings.data_dir
    if folder.is_dir():
        return settings
    if folder.exists():
        raise CommandRefused(f"data dir {data_dir} is not a folder")
    if not create:
        raise CommandRefused(
            f"data dir {data_dir} does not exist; run `industrydata demo` or "
            "`industrydata serve` first, or pass --data-dir"
        )
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise CommandRefused(
            f"cannot create data dir {data_dir}: {error.strerror or type(error).__name__}"
        ) from None
    return settings


@contextmanager
def _opened_store(settings: Settings) -> Iterator[Store]:
    """The migrated store of ``settings``; a database that cannot be reached is one line."""
    from .store import open_store, upgrade_to_head

    url = settings.effective_database_url
    try:
        store = open_store(url)
    except ArgumentError:  # its message quotes the URL, password included
        raise CommandRefused("INDUSTRYDATA_DATABASE_URL is not a usable database URL") from None
    try:
        try:
            upgrade_to_head(store.write_engine)
        except DBAPIError as error:
            raise CommandRefused(_unreachable(url, error)) from None
        yield store
    finally:
        store.dispose()


def _unreachable(url: str, error: DBAPIError) -> str:
    """Why the database at ``url`` cannot be used, with its password hidden everywhere."""
    parsed = make_url(url)
    reason = _driver_reason(error)
    if parsed.password:
        reason = reason.replace(str(parsed.password), "***")
    return f"cannot use the database {parsed.render_as_string(hide_password=True)}: {reason}"


def _guid(value: str, option: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise CommandRefused(f"{option} must be a GUID, not {value!r}") from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: DataDir = Path("./data"),
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="API processes sharing the port (production mode only: embedded mode is "
            "one process).",
        ),
    ] = 1,
) -> None:
    """Serve the API (embedded mode: with the scheduler and run executor, in one process).

    Example: industrydata serve --port 8000 --data-dir ./data
    """
    from .api.server import serve as serve_api

    settings = _settings(data_dir, create=True)
    if workers > 1 and settings.mode is not Mode.PRODUCTION:
        raise CommandRefused(
            "--workers needs INDUSTRYDATA_MODE=production: embedded mode runs its runs and "
            "schedules inside its one process"
        )
    serve_api(settings, host=host, port=port, processes=workers)


def _production_settings(data_dir: Path) -> Settings:
    settings = _settings(data_dir, create=True)
    if settings.mode is not Mode.PRODUCTION:
        raise CommandRefused(
            "workers serve production mode: set INDUSTRYDATA_MODE=production and "
            "INDUSTRYDATA_DATABASE_URL=postgresql://..."
        )
    return settings


@app.command()
def worker(
    data_dir: DataDir = Path("./data"),
    concurrency: Annotated[
        int,
        typer.Option(
            min=1,
            max=16,
            envvar="INDUSTRYDATA_WORKER_CONCURRENCY",
            help="Runs and imports executed at once (each run exports in a process of its own).",
        ),
    ] = 2,
    queues: Annotated[
        str,
        typer.Option(help="Comma-separated queues to serve: runs, imports, periodic."),
    ] = "runs,imports,periodic",
    health_host: Annotated[
        str, typer.Option(help="Interface of the health server (/healthz, /readyz, /metrics).")
    ] = "127.0.0.1",
    health_port: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            max=65535,
            envvar="INDUSTRYDATA_WORKER_HEALTH_PORT",
            help="Port of the health server; none without it.",
        ),
    ] = None,
) -> None:
    """Execute runs, imports and the periodic work of production mode until SIGTERM.

    Example: INDUSTRYDATA_MODE=production INDUSTRYDATA_DATABASE_URL=postgresql://... \
    industrydata worker --concurrency 2
    """
    from .fleet import QUEUES, run_worker
    from .observability import configure_logging

    chosen = [queue.strip() for queue in queues.split(",") if queue.strip()]
    unknown = sorted(set(chosen) - set(QUEUES))
    if not chosen or unknown:
        raise CommandRefused(
            f"--queues takes {', '.join(QUEUES)}; not {', '.join(unknown) or 'nothing'}"
        )
    settings = _production_settings(data_dir)
    with _opened_store(settings):
        pass
    configure_logging(settings.log_format)
    health = (health_host, health_port) if health_port is not None else None
    run_worker(settings, concurrency=concurrency, queues=chosen, health_address=health)


@app.command()
def jobs(data_dir: DataDir = Path("./data")) -> None:
    """List the jobs of production mode's queue that wait or execute, with their progress
    (tab-separated).

    Example: industrydata jobs
    """
    from .fleet import queued_jobs

    settings = _production_settings(data_dir)
    with _opened_store(settings) as store:
        listed = queued_jobs(store)
    if not listed:
        console.print("no job is waiting or executing")
        return
    # Tab-separated, one job a line: whole ids, for people and for scripts alike.
    lines = ["job\ttask\tqueue\tstate\trun or load\ttenant\tprogress\tsince"]
    for job in listed:
        since = job.since.isoformat(timespec="seconds") + "Z" if job.since else ""
        fields = (
            str(job.job_id),
            job.task.removeprefix("industrydata."),
            job.queue,
            "executing" if job.status == "doing" else "waiting",
            job.subject,
            job.tenant_id or "",
            job.progress,
            since,
        )
        lines.append("\t".join(_printable(field) for field in fields))
    sys.stdout.write("\n".join(lines) + "\n")


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = Path("./data")) -> None:
    """Bring the database to the newest schema (the service's tables and, on PostgreSQL, the
    task queue's), then print its revision. Safe to run from several processes at once.

    Example: INDUSTRYDATA_DATABASE_URL=postgresql://... industrydata db upgrade
    """
    from sqlalchemy import text

    settings = _settings(data_dir, create=True)
    with _opened_store(settings) as store, store.reading() as session:
        revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    console.print(f"database at revision {revision}", markup=False, highlight=False)


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
        raise CommandRefused(
            f"user {object_id} is not in the directory of tenant {tenant_id} "
            "(add it with 'industrydata directory add-user', or pass --allow-unknown-user)"
        )
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

    tenant_id, object_id = _guid(tenant, "--tenant"), _guid(id, "--id")
    settings = _settings(data_dir, create=True)
    with _opened_store(settings) as store, store.writing() as session:
        add_directory_user(
            session,
            tenant_id=tenant_id,
            object_id=object_id,
            display_name=display_name,
            user_principal_name=upn,
            is_global_admin=global_admin,
        )
        session.commit()
    role = "Global Administrator" if global_admin else "user"
    console.print(
        Text(_printable(f"added {display_name} ({object_id}) as {role} of tenant {tenant_id}"))
    )


def _problem_table(
    problems: list[LoadProblem], *, total: int | None = None, shown: int = 200
) -> Table:
    """The first ``shown`` problems; ``total`` counts those the loader did not keep too."""
    total = max(total or 0, len(problems))
    title = (
        "Problems" if total <= shown else f"Problems (first {min(shown, len(problems))} of {total})"
    )
    table = Table(title=title)
    for column in ("severity", "file", "line", "column", "value", "reason"):
        table.add_column(column)
    for problem in problems[:shown]:
        cells = (
            problem.severity,
            problem.file,
            str(problem.line or ""),
            problem.column or "",
            problem.value or "",
            problem.reason,
        )
        # Text cells: a value from the files is shown as it is, never read as Rich markup.
        table.add_row(*(Text(_printable(cell)) for cell in cells))
    return table


def _print_report(report: LoadReport) -> None:
    table = Table(title="Rows written per table")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in report.rows.items():
        table.add_row(name, str(rows))
    console.print(table)
    if report.problems:
        total = len(report.problems) + report.problems_left_out
        console.print(_problem_table(report.problems, total=total))
    console.print(
        f"rejected records: {report.rejected_records}, errors: {report.errors}, "
        f"warnings: {report.warnings}"
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
                    Text(
                        f"{_printable(progress.file)}: {progress.records:,} records "
                        f"({per_second:,.0f} rows/s)"
                    )
                )

        yield line
        return
    columns = (
        TextColumn("{task.description:<22}", markup=False),
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
                    _printable(progress.file),
                    total=max(progress.bytes_total, 1),
                    records=0,
                    rate=0.0,
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
    create_tenant: bool,
    enqueue: bool = False,
    format: str = "",
) -> None:
    """Run one loader as a full upload for a tenant, with progress, then print its report.

    Everything the command can check is checked before the load starts (a report file that
    cannot be written must not be found out after a long load). Exits 2 when the load
    committed but rejected records.
    """
    tenant_id = _guid(tenant, "--tenant")
    settings = _settings(data_dir)
    _check_input(path)
    if report_file is not None:
        _check_report_file(report_file)
    if enqueue:
        _enqueue_load(settings, format, path, tenant_id, report_file, create_tenant)
        return
    with _opened_store(settings) as store:
        new_tenant = _check_tenant(store, tenant_id, create_tenant=create_tenant)
        try:
            with _load_progress() as progress:
                report = load(
                    store.write_engine,
                    path,
                    tenant_id=tenant_id,
                    progress=progress,
                    report_path=report_file,
                )
        except LoadError as error:
            if not _says_it_all(error):
                console.print(_problem_table(error.problems))
            raise
    _print_report(report)
    if new_tenant:
        console.print(f"created tenant {tenant_id}")
    if report.rejected_records:
        where = f"; the problems are in {report_file}" if report_file is not None else ""
        count = report.rejected_records
        rejected = "1 record was" if count == 1 else f"{count} records were"
        _print_error(f"loaded, but {rejected} rejected{where}", label="warning")
        raise typer.Exit(EXIT_REJECTED_RECORDS)


def _enqueue_load(
    settings: Settings,
    format: str,
    path: Path,
    tenant_id: str,
    report_file: Path | None,
    create_tenant: bool,
) -> None:
    """Queue the load for a worker (production mode); the workers read ``path`` there."""
    from .fleet import enqueue_load
    from .runs import utcnow

    if settings.mode is not Mode.PRODUCTION:
        raise CommandRefused(
            "--enqueue queues the load for workers: set INDUSTRYDATA_MODE=production and "
            "INDUSTRYDATA_DATABASE_URL=postgresql://..."
        )
    with _opened_store(settings) as store:
        _check_tenant(store, tenant_id, create_tenant=create_tenant)
        load_id, job_id = enqueue_load(
            store,
            format=format,
            source=path,
            tenant_id=tenant_id,
            report_path=report_file,
            now=utcnow(),
        )
    console.print(
        f"queued load {load_id} (job {job_id}); follow it with `industrydata jobs`",
        markup=False,
        highlight=False,
    )


def _says_it_all(error: LoadError) -> bool:
    """Whether the error's one line already tells its only problem (no table needed)."""
    return not error.problems or (
        len(error.problems) == 1 and error.problems[0].reason in error.message
    )


def _check_input(path: Path) -> None:
    if not path.exists():
        raise CommandRefused(f"{path} does not exist")
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise CommandRefused(f"{path} is not readable")


def _check_report_file(path: Path) -> None:
    if not path.parent.is_dir():
        raise CommandRefused(f"--report {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise CommandRefused(f"--report {path} is a folder")
    if not os.access(path if path.exists() else path.parent, os.W_OK):
        raise CommandRefused(f"--report {path} is not writable")


def _check_tenant(store: Store, tenant_id: str, *, create_tenant: bool) -> bool:
    """Whether the load creates ``tenant_id``; refused unless asked, so a mistyped GUID
    cannot quietly start a tenant."""
    from .canonical import has_rows
    from .directory import has_users

    with store.reading() as session:
        known = has_users(session, tenant_id=tenant_id)
    if known or has_rows(store.engine, tenant_id):
        return False
    if not create_tenant:
        raise CommandRefused(
            f"tenant {tenant_id} has no directory users and no roster data; "
            "pass --create-tenant to load into a new tenant"
        )
    return True


ReportFile = Annotated[
    Optional[Path], typer.Option("--report", help="Write the problems as CSV to this file.")
]
Enqueue = Annotated[
    bool,
    typer.Option(
        "--enqueue",
        help="Production mode: queue the load for a worker and return at once (the workers "
        "must read the files at the same path).",
    ),
]
CreateTenant = Annotated[
    bool,
    typer.Option(
        "--create-tenant",
        help="Allow loading into a tenant that has no directory users and no roster data yet.",
    ),
]


@import_app.command("sds-csv")
def import_sds_csv(
    folder: Annotated[
        Path, typer.Argument(help="Folder (or zip archive) with the SDS v2.1 CSV files.")
    ],
    tenant: Tenant,
    report_file: ReportFile = None,
    create_tenant: CreateTenant = False,
    enqueue: Enqueue = False,
    data_dir: DataDir = Path("./data"),
) -> None:
    """Load an SDS v2.1 CSV drop as a full upload for a tenant; prints a summary.

    Example: industrydata import sds-csv ./sds-drop --tenant $TENANT --report problems.csv
    """
    from .canonical.ingest import load_sds_csv

    _import(load_sds_csv, folder, tenant, report_file, data_dir, create_tenant, enqueue, "sds-csv")


@import_app.command("oneroster-csv")
def import_oneroster_csv(
    path: Annotated[
        Path, typer.Argument(help="Folder or zip archive with manifest.csv and the CSV files.")
    ],
    tenant: Tenant,
    report_file: ReportFile = None,
    create_tenant: CreateTenant = False,
    enqueue: Enqueue = False,
    data_dir: DataDir = Path("./data"),
) -> None:
    """Load a OneRoster 1.1 CSV upload (bulk) as a full upload for a tenant; prints a summary.

    Example: industrydata import oneroster-csv ./oneroster.zip --tenant $TENANT
    """
    from .canonical.ingest import load_oneroster_csv

    _import(
        load_oneroster_csv,
        path,
        tenant,
        report_file,
        data_dir,
        create_tenant,
        enqueue,
        "oneroster-csv",
    )


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
    create_tenant: CreateTenant = False,
    enqueue: Enqueue = False,
    data_dir: DataDir = Path("./data"),
) -> None:
    """Replace a tenant's roster with an SDS lake-export snapshot (ids and timestamps kept).

    Example: industrydata import sds-lake ./lake/roster/2021-09-05T06-16-22 --tenant $TENANT
    """
    from .canonical.ingest import load_sds_lake

    _import(
        load_sds_lake,
        snapshot_folder,
        tenant,
        report_file,
        data_dir,
        create_tenant,
        enqueue,
        "sds-lake",
    )


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

    if out_dir.exists() and not out_dir.is_dir():
        raise CommandRefused(f"{out_dir} is not a folder")
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

    settings = _settings(data_dir, create=True)
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
    """Console entry point. The commands' failures are handled in ``_ErrorBoundary``; this
    catches what fails before a command runs, the same way."""
    try:
        app()
    except Exception as error:  # noqa: BLE001 - the last boundary
        try:
            _exit_with(error, debug=os.environ.get("INDUSTRYDATA_DEBUG", "") not in ("", "0"))
        except typer.Exit as done:
            sys.exit(done.exit_code)
