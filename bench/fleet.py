"""Production mode in one run: runs per minute with one worker and with two, and the latency of
one small run against embedded mode; prints ratios with PASS or MISS, never asserts.

    .venv/bin/python bench/fleet.py                      # 200 tenants x 1,000 students
    .venv/bin/python bench/fleet.py --seed-cache         # keep the seeded database for next time
    .venv/bin/python bench/fleet.py --tenants 20 --students 200 --latency-runs 5   # a quick look

Needs a PostgreSQL server on this machine (``--postgres-url``; default
``$INDUSTRYDATA_TEST_POSTGRES_URL``, else postgresql://postgres@127.0.0.1:5432/test): the
benchmark creates a database of its own and drops it at the end. The processes are those of
deploy/Procfile (bench/_procfile.py) with this checkout's ``src`` first on ``PYTHONPATH``.

Seeding: every tenant has two Global Administrators and a generated district; the first
district is generated and loaded with ``load_sds_csv``, the others are SQL copies of its rows
(bench/_tenants.py says why that is faithful). ``--seed-cache`` seeds a database named after
the size once, keeps it, and clones it (``CREATE DATABASE ... TEMPLATE``) on later runs.

Throughput: one ``api`` process in production mode; every tenant's flow is created and
accepted (schedule ``none``), and the runs the accepts start are drained by two workers
before anything is measured. Then one worker and two workers (each ``--concurrency`` C,
default 1: on two cores, one export at a time per worker), started afresh for each drain,
drain one new on-demand run per tenant, POSTed by 8 client threads; a drain's time runs from
its first POST to its last run's end. The tenants are split into ``--rounds`` groups, each
drained by both configurations in alternating order (1, 2 | 2, 1 | ...), so that other load
on a shared machine drifting during the benchmark weighs on both alike; each configuration's
drains are added up. ``--extra-concurrency`` adds one worker of that concurrency, for
context. CPU seconds per run: the workers' process trees (their export children included),
the API's, and the PostgreSQL backends of the database (bench/_cpu.py); ``cores`` is all of
it over the drain's time: the CPU the benchmark got (on a 2-core machine, at most 2).

Latency: one run after another on the first tenant's flow (POST, then GET every 20 ms until
it is no longer running), ``--warmup-runs`` first, median of ``--latency-runs``: production
(the api process and one fresh worker) against ``industrydata serve`` in embedded mode on
SQLite with the same district. Where the time goes is read from the runs' and the task
queue's timestamps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from _cpu import BackendUsage, PostgresBackendCpu, process_tree_cpu_seconds
from _procfile import Processes, ProcfileProcess
from _tenants import (
    FLOWS,
    BenchTenant,
    Tokens,
    add_administrators,
    bench_tenants,
    copy_tenant_rows,
    create_and_accept,
    start_run,
)
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import URL, make_url

from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest import load_sds_csv
from industrydata.canonical.sql import CANONICAL_CHANGES, CANONICAL_TOMBSTONES, sql_table
from industrydata.canonical.statistics import count_rows
from industrydata.canonical.tables import CANONICAL_TABLES
from industrydata.config import Settings
from industrydata.store import Run, Store, open_store, upgrade_to_head

POSTGRES_URL_ENV = "INDUSTRYDATA_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_THROUGHPUT_RATIO = 1.7
TARGET_LATENCY_RATIO = 1.5
CLIENT_THREADS = 8
POLL_SECONDS = 0.02
FINISHED_POLL_SECONDS = 0.5
RUN_TIMEOUT_SECONDS = 300.0
SETTLE_SECONDS = 1.0
ACCEPT_CONCURRENCY = 2
"""The accept runs (not measured) are drained by two workers of this concurrency."""
DISTRICT_SEED = 1
MiB = 1024 * 1024

COMMON_SETTINGS = {"INDUSTRYDATA_RUN_THROTTLE_COUNT": "1000000"}
"""Every process: a flow may start as many on-demand runs as the benchmark asks for."""


def utcnow() -> datetime:
    """Naive UTC, as the store keeps times."""
    return datetime.now(UTC).replace(tzinfo=None)


def epoch(moment: datetime) -> float:
    """Seconds since the epoch of a naive UTC time (or an aware one)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.timestamp()


def machine_load() -> str:
    """The load average, and how much of the last 5 minutes some task waited for a CPU
    (pressure stall information): what other users of the machine leave to the benchmark."""
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    pressure = Path("/proc/pressure/cpu")
    if not pressure.exists():
        return load
    fields = dict(part.split("=") for part in pressure.read_text().split()[1:4])
    return f"{load}, cpu pressure (some, avg300) {fields['avg300']}%"


# --- the database ----------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    """How the bench database came to hold its tenants."""

    how: str
    rows_per_tenant: int


def _admin_engine(server: URL) -> Engine:
    return create_engine(server, isolation_level="AUTOCOMMIT")


def _exists(admin: Engine, database: str) -> bool:
    with admin.connect() as connection:
        found = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
        )
        return found.first() is not None


def _create(admin: Engine, database: str, template: str | None = None) -> None:
    clause = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"{clause}'))


def drop_database(admin: Engine, database: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def seed(url: str, tenants: Sequence[BenchTenant], students: int, district: Path) -> str:
    """Migrate the database at ``url`` and give every tenant its administrators and district."""
    engine = create_engine(url)
    store = open_store(url)
    try:
        upgrade_to_head(engine)
        add_administrators(store, tenants)
        started = time.perf_counter()
        generate_sds_csv(district, students=students, seed=DISTRICT_SEED)
        load_sds_csv(engine, district, tenant_id=tenants[0].tenant_id)
        loaded = time.perf_counter()
        copy_tenant_rows(engine, tenants[0].tenant_id, [t.tenant_id for t in tenants[1:]])
        copied = time.perf_counter()
    finally:
        store.dispose()
        engine.dispose()
    return (
        f"tenant 0 generated and loaded in {loaded - started:.1f} s, "
        f"{len(tenants) - 1:,} tenants copied by SQL in {copied - loaded:.1f} s"
    )


def _seeded_completely(url: str, tenants: int) -> bool:
    """A cached seed is whole when every tenant has its counter row (copied last)."""
    engine = create_engine(url)
    try:
        upgrade_to_head(engine)
        with engine.connect() as connection:
            counters = connection.execute(select(func.count()).select_from(CANONICAL_CHANGES))
            return counters.scalar_one() == tenants
    finally:
        engine.dispose()


def prepare_database(
    server: URL,
    database: str,
    tenants: Sequence[BenchTenant],
    *,
    students: int,
    district: Path,
    cache: bool,
) -> Seeded:
    """Create ``database`` holding the seeded tenants (from the cache when asked and whole)."""
    admin = _admin_engine(server)
    try:
        started = time.perf_counter()
        if not cache:
            _create(admin, database)
            how = seed(_url(server, database), tenants, students, district)
        else:
            template = f"industrydata_bench_seed_{len(tenants)}x{students}"
            cached = _exists(admin, template) and _seeded_completely(
                _url(server, template), len(tenants)
            )
            if cached:
                how = f"cloned from the cached {template}"
                generate_sds_csv(district, students=students, seed=DISTRICT_SEED)
            else:
                drop_database(admin, template)
                _create(admin, template)
                how = seed(_url(server, template), tenants, students, district)
            _create(admin, database, template=template)
            engine = create_engine(_url(server, database))
            upgrade_to_head(engine)
            engine.dispose()
        how += f"; ready in {time.perf_counter() - started:.0f} s"
    finally:
        admin.dispose()
    engine = create_engine(_url(server, database))
    try:
        rows = sum(count_rows(engine, tenants[0].tenant_id).values())
    finally:
        engine.dispose()
    return Seeded(how, rows)


def _url(server: URL, database: str) -> str:
    return server.set(database=database).render_as_string(hide_password=False)


def canonical_bytes(engine: Engine) -> int:
    """Bytes of the canonical tables with their indexes and TOAST, and the change tables."""
    names = [sql_table(table).name for table in CANONICAL_TABLES]
    names += [CANONICAL_CHANGES.name, CANONICAL_TOMBSTONES.name]
    with engine.connect() as connection:
        return sum(
            connection.execute(
                text("SELECT pg_total_relation_size(:name)"), {"name": name}
            ).scalar_one()
            for name in names
        )


def table_bytes(engine: Engine, *names: str) -> int:
    with engine.connect() as connection:
        return sum(
            connection.execute(
                text("SELECT pg_total_relation_size(:name)"), {"name": name}
            ).scalar_one()
            for name in names
        )


def connections(server: URL, database: str) -> int:
    """Connections to ``database`` now."""
    admin = _admin_engine(server)
    try:
        with admin.connect() as connection:
            found = connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"),
                {"name": database},
            )
            return int(found.scalar_one())
    finally:
        admin.dispose()


def database_bytes(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_database_size(current_database())")).one()[0])


# --- runs ------------------------------------------------------------------------------


def wait_finished(store: Store, run_ids: Sequence[str], timeout: float) -> list[Run]:
    """The runs once none is running any more; exits the benchmark after ``timeout``.

    It asks only how many have ended, twice a second: the drain's time comes from the runs'
    end times, not from when this sees them, and a heavier poll would take CPU from the
    processes measured."""
    deadline = time.monotonic() + timeout
    ended = (
        select(func.count()).select_from(Run).where(Run.id.in_(run_ids), Run.status != "running")
    )
    while time.monotonic() < deadline:
        with store.reading() as session:
            if session.execute(ended).scalar_one() == len(run_ids):
                return list(session.scalars(select(Run).where(Run.id.in_(run_ids))))
        time.sleep(FINISHED_POLL_SECONDS)
    raise SystemExit(f"{len(run_ids)} runs did not finish within {timeout:.0f} s")


def check_completed(runs: Sequence[Run], what: str) -> None:
    failed = [(run.id, run.status, run.blocking_error) for run in runs if run.status != "completed"]
    if failed:
        raise SystemExit(f"{what}: {len(failed)} runs did not complete, e.g. {failed[:3]}")


def in_parallel(indexes: range, call: Callable[[int], str]) -> list[str]:
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        return list(pool.map(call, indexes))


@dataclass(frozen=True)
class Drain:
    """One throughput measurement, or several of one configuration added up."""

    label: str
    runs: int
    seconds: float
    worker_cpu: float
    api_cpu: float
    postgres: BackendUsage

    @property
    def runs_per_minute(self) -> float:
        return 60 * self.runs / self.seconds

    @property
    def cores(self) -> float:
        """CPU the benchmark's processes got, in cores: what other users left it."""
        return (self.worker_cpu + self.api_cpu + self.postgres.cpu_seconds) / self.seconds

    def line(self) -> str:
        per_run = (self.worker_cpu, self.api_cpu, self.postgres.cpu_seconds)
        cpu = " ".join(f"{seconds / self.runs:>9.3f}" for seconds in per_run)
        return (
            f"{self.label:<30} {self.runs:>5,} {self.seconds:>8.1f} {self.runs_per_minute:>9.1f} "
            f"{self.seconds / self.runs:>8.3f} {cpu} {self.cores:>6.2f} "
            f"{self.postgres.peak_connections:>6}"
        )


def added_up(label: str, drains: Sequence[Drain]) -> Drain:
    """The drains of one configuration as one: runs, seconds and CPU summed, peak of peaks."""
    return Drain(
        label,
        sum(drain.runs for drain in drains),
        sum(drain.seconds for drain in drains),
        sum(drain.worker_cpu for drain in drains),
        sum(drain.api_cpu for drain in drains),
        BackendUsage(
            sum(drain.postgres.cpu_seconds for drain in drains),
            max(drain.postgres.peak_connections for drain in drains),
        ),
    )


HEADER = (
    f"{'throughput':<30} {'runs':>5} {'seconds':>8} {'runs/min':>9} {'wall/run':>8} "
    f"{'cpu/run: workers':>9} {'api':>9} {'postgres':>9} {'cores':>6} {'conns':>6}"
)


@dataclass
class ProductionFleet:
    """The api process, the tenants' accepted flows and what the measurements need."""

    processes: Processes
    api: ProcfileProcess
    client: httpx.Client
    store: Store
    tokens: Tokens
    tenants: Sequence[BenchTenant]
    flow_ids: list[str]
    server_url: str
    database: str

    def drain(self, label: str, group: range, *, workers: int, concurrency: int) -> Drain:
        """Start ``workers`` fresh workers and time one new run per tenant of ``group``
        (indexes of ``tenants``) through them."""
        members = self.processes.start_ready(
            "worker", workers, INDUSTRYDATA_WORKER_CONCURRENCY=str(concurrency)
        )
        headers = {
            i: self.tokens.headers(self.tenants[i].tenant_id, self.tenants[i].owner) for i in group
        }
        workers_before = sum(process_tree_cpu_seconds(member.pid) for member in members)
        api_before = process_tree_cpu_seconds(self.api.pid)
        backends = PostgresBackendCpu(self.server_url, self.database).start()
        started = utcnow()
        run_ids = in_parallel(group, lambda i: start_run(self.client, headers[i], self.flow_ids[i]))
        runs = wait_finished(self.store, run_ids, timeout=max(600.0, 20.0 * len(run_ids)))
        check_completed(runs, label)
        seconds = max(epoch(run.end_at) for run in runs if run.end_at) - epoch(started)
        time.sleep(SETTLE_SECONDS)  # the last export child exits and is reaped
        worker_cpu = sum(process_tree_cpu_seconds(member.pid) for member in members)
        api_cpu = process_tree_cpu_seconds(self.api.pid) - api_before
        usage = backends.stop()
        for member in members:
            self.processes.stop(member)
        drain = Drain(label, len(runs), seconds, worker_cpu - workers_before, api_cpu, usage)
        print(f"  {label}: {drain.runs:,} runs in {drain.seconds:.1f} s", flush=True)
        return drain


# --- latency ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TimedRun:
    """One run as the client saw it (epoch seconds)."""

    run_id: str
    posted: float
    seen: float

    @property
    def milliseconds(self) -> float:
        return 1000 * (self.seen - self.posted)


def time_runs(
    client: httpx.Client, headers: dict[str, str], flow_id: str, *, warmup: int, count: int
) -> list[TimedRun]:
    """``warmup`` then ``count`` runs one after another: POST, then GET every 20 ms until the
    run is no longer running; the timed ones."""
    timed = []
    for number in range(warmup + count):
        posted = time.time()
        run_id = start_run(client, headers, flow_id)
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        while True:
            response = client.get(f"{FLOWS}/{flow_id}/runs/{run_id}", headers=headers)
            status = response.json().get("status")
            if status != "running" or time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
        seen = time.time()
        if status != "completed":
            raise SystemExit(f"latency run {run_id} ended {status}: {response.text}")
        if number >= warmup:
            timed.append(TimedRun(run_id, posted, seen))
    return timed


@dataclass(frozen=True)
class Latency:
    label: str
    runs: list[TimedRun]
    stages: dict[str, float]
    """Median milliseconds of each stage, in order."""

    @property
    def median(self) -> float:
        return statistics.median(run.milliseconds for run in self.runs)

    def line(self) -> str:
        values = [run.milliseconds for run in self.runs]
        return (
            f"{self.label:<30} {len(values):>5} {self.median:>10.0f} {min(values):>8.0f} "
            f"{max(values):>8.0f}"
        )

    def stages_line(self) -> str:
        return f"{self.label}: " + ", ".join(
            f"{name} {milliseconds:.0f}" for name, milliseconds in self.stages.items()
        )


def _median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values)


def run_stages(store: Store, timed: Sequence[TimedRun], *, queued: bool) -> dict[str, float]:
    """Median milliseconds from the POST to the run's row, (production) through the task
    queue's job events, to the run's end, and to the client seeing it."""
    ids = [run.run_id for run in timed]
    with store.reading() as session:
        rows = {run.id: run for run in session.scalars(select(Run).where(Run.id.in_(ids)))}
        events: dict[tuple[str, str], float] = {}
        if queued:
            found = session.execute(
                text(
                    "SELECT job.args->>'run_id', event.type::text, "
                    "extract(epoch FROM event.at) FROM procrastinate_jobs AS job "
                    "JOIN procrastinate_events AS event ON event.job_id = job.id "
                    "WHERE job.args->>'run_id' = ANY(:ids)"
                ),
                {"ids": ids},
            )
            events = {(run_id, kind): float(at) for run_id, kind, at in found}
    stored = [epoch(rows[run.run_id].start_at) - run.posted for run in timed]
    ended = [epoch(rows[run.run_id].end_at) for run in timed]  # type: ignore[arg-type]
    seen = [run.seen - end for run, end in zip(timed, ended)]
    if not queued:
        executed = [end - epoch(rows[run.run_id].start_at) for run, end in zip(timed, ended)]
        return {
            "POST -> run row": _median_ms(stored),
            "run row -> run ended (executor thread)": _median_ms(executed),
            "run ended -> client saw it": _median_ms(seen),
        }
    picked = [events[run.run_id, "started"] - events[run.run_id, "deferred"] for run in timed]
    executed = [end - events[run.run_id, "started"] for run, end in zip(timed, ended)]
    return {
        "POST -> run row": _median_ms(stored),
        "job deferred -> started (queue)": _median_ms(picked),
        "started -> run ended (worker)": _median_ms(executed),
        "run ended -> client saw it": _median_ms(seen),
    }


def embedded_latency(
    root: Path, district: Path, tenant: BenchTenant, *, warmup: int, count: int
) -> Latency:
    """``industrydata serve`` on SQLite (the Procfile's api command, embedded settings) with
    the same district; its latency."""
    data_dir = root / "embedded"
    data_dir.mkdir(mode=0o700)
    tokens = Tokens(data_dir)
    url = Settings(data_dir=data_dir, database_url=None).effective_database_url
    store = open_store(url)
    try:
        upgrade_to_head(store.write_engine)
        add_administrators(store, [tenant])
        load_sds_csv(store.write_engine, district, tenant_id=tenant.tenant_id)
        processes = Processes(COMMON_SETTINGS, data_dir=data_dir, log_dir=root / "logs-embedded")
        try:
            (api,) = processes.start_ready("api")
            with httpx.Client(base_url=api.url, timeout=120, trust_env=False) as client:
                flow_id = create_and_accept(client, tokens, tenant, data_dir / "lake" / "tenant-0")
                with store.reading() as session:
                    accept_run = session.scalars(select(Run.id)).one()
                check_completed(wait_finished(store, [accept_run], RUN_TIMEOUT_SECONDS), "accept")
                headers = tokens.headers(tenant.tenant_id, tenant.owner)
                timed = time_runs(client, headers, flow_id, warmup=warmup, count=count)
        finally:
            processes.stop_all()
        return Latency("embedded (serve, SQLite)", timed, run_stages(store, timed, queued=False))
    finally:
        store.dispose()


# --- the benchmark ---------------------------------------------------------------------


def lake_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def report_throughput(accepted: str, drains: Sequence[Drain]) -> None:
    print(accepted)
    print(HEADER)
    for drain in drains:
        print(drain.line())
    one, two = drains[0], drains[1]
    ratio = two.runs_per_minute / one.runs_per_minute
    print(f"2 workers / 1 worker: {ratio:.2f}x")
    verdict = "PASS" if ratio >= TARGET_THROUGHPUT_RATIO else "MISS"
    print(f"target: runs per minute, 2 workers / 1 worker >= {TARGET_THROUGHPUT_RATIO}x: {verdict}")


def report_latency(production: Latency, embedded: Latency) -> None:
    print(
        f"{'latency (POST -> completed)':<30} {'runs':>5} {'median ms':>10} {'min':>8} {'max':>8}"
    )
    print(production.line())
    print(embedded.line())
    ratio = production.median / embedded.median
    print(f"production / embedded (median): {ratio:.2f}x")
    print("where the time goes (median ms)")
    print(production.stages_line())
    print(embedded.stages_line())
    verdict = "PASS" if ratio <= TARGET_LATENCY_RATIO else "MISS"
    print(f"target: latency, production / embedded <= {TARGET_LATENCY_RATIO}x: {verdict}")


def compare_one_and_two_workers(
    fleet: ProductionFleet, concurrency: int, *, rounds: int
) -> list[Drain]:
    """One run per tenant with one worker and one with two, in ``rounds`` rounds of a group
    of tenants each, the order alternating (1, 2 | 2, 1 | ...) so that a machine whose other
    load drifts during the benchmark weighs on both alike; each configuration added up."""
    configurations = {
        1: f"1 worker  x concurrency {concurrency}",
        2: f"2 workers x concurrency {concurrency}",
    }
    tenants = len(fleet.tenants)
    measured: dict[int, list[Drain]] = {1: [], 2: []}
    for number in range(rounds):
        group = range(number * tenants // rounds, (number + 1) * tenants // rounds)
        for workers in (1, 2) if number % 2 == 0 else (2, 1):
            label = f"{configurations[workers]}, round {number + 1}"
            measured[workers].append(
                fleet.drain(label, group, workers=workers, concurrency=concurrency)
            )
    return [added_up(configurations[workers], measured[workers]) for workers in (1, 2)]


def run_production(
    root: Path,
    server: URL,
    database: str,
    tenants: Sequence[BenchTenant],
    arguments: argparse.Namespace,
) -> tuple[str, list[Drain], Latency, str]:
    """Accept every flow, drain runs with 1 and 2 workers, time the latency runs; also the
    storage line (run history, task queue and lake bytes per run)."""
    url = _url(server, database)
    data_dir = root / "production"
    data_dir.mkdir(mode=0o700)
    tokens = Tokens(data_dir)
    settings = {
        **COMMON_SETTINGS,
        "INDUSTRYDATA_MODE": "production",
        "INDUSTRYDATA_DATABASE_URL": url,
    }
    processes = Processes(settings, data_dir=data_dir, log_dir=root / "logs-production")
    store = open_store(url)
    concurrency = arguments.concurrency
    try:
        (api,) = processes.start_ready("api")
        client = httpx.Client(base_url=api.url, timeout=120, trust_env=False)
        at_rest = connections(server, database)
        accepting = processes.start_ready(
            "worker", 2, INDUSTRYDATA_WORKER_CONCURRENCY=str(ACCEPT_CONCURRENCY)
        )
        started = time.perf_counter()
        lake = data_dir / "lake"
        flow_ids = in_parallel(
            range(len(tenants)),
            lambda i: create_and_accept(client, tokens, tenants[i], lake / f"tenant-{i}"),
        )
        with store.reading() as session:
            accept_runs = list(session.scalars(select(Run.id)))
        check_completed(wait_finished(store, accept_runs, 20.0 * len(accept_runs)), "accept")
        accepted = (
            f"accept: {len(tenants):,} flows created and accepted, their runs drained by "
            f"2 workers x concurrency {ACCEPT_CONCURRENCY} in {time.perf_counter() - started:.1f} s"
            f" (connections of the api process at rest before: {at_rest})"
        )
        print(accepted, flush=True)
        for member in accepting:
            processes.stop(member)

        fleet = ProductionFleet(
            processes, api, client, store, tokens, tenants, flow_ids,
            server.render_as_string(hide_password=False), database,
        )  # fmt: skip
        drains = compare_one_and_two_workers(fleet, concurrency, rounds=arguments.rounds)
        if arguments.extra_concurrency:
            extra = arguments.extra_concurrency
            drains.append(
                fleet.drain(
                    f"1 worker  x concurrency {extra}",
                    range(len(tenants)),
                    workers=1,
                    concurrency=extra,
                )
            )

        processes.start_ready("worker", 1, INDUSTRYDATA_WORKER_CONCURRENCY=str(concurrency))
        first = tenants[0]
        timed = time_runs(
            client,
            tokens.headers(first.tenant_id, first.owner),
            flow_ids[0],
            warmup=arguments.warmup_runs,
            count=arguments.latency_runs,
        )
        latency = Latency(
            "production (1 api, 1 worker)", timed, run_stages(store, timed, queued=True)
        )
        client.close()
    finally:
        processes.stop_all()
        store.dispose()
    return accepted, drains, latency, _storage_per_run(url, lake)


def _storage_per_run(url: str, lake: Path) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            runs = connection.execute(select(func.count()).select_from(Run.__table__)).scalar_one()
            jobs = connection.execute(text("SELECT count(*) FROM procrastinate_jobs")).scalar_one()
        history = table_bytes(engine, "run")
        queue = table_bytes(engine, "procrastinate_jobs", "procrastinate_events")
    finally:
        engine.dispose()
    return (
        f"per run: {lake_bytes(lake) / runs / MiB:.2f} MiB written to the lake (sdsCsv), "
        f"{history / runs / 1024:.2f} KiB of run history and {queue / jobs / 1024:.2f} KiB "
        f"of task queue (jobs and events) in PostgreSQL ({runs:,} runs, {jobs:,} jobs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--students", type=int, default=1000, help="per tenant")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs at once per worker")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds of the 1- and 2-worker drains, each on its share of the tenants",
    )
    parser.add_argument(
        "--extra-concurrency",
        type=int,
        default=0,
        help="also drain with one worker at this concurrency, for context (0: skip)",
    )
    parser.add_argument("--latency-runs", type=int, default=10)
    parser.add_argument("--warmup-runs", type=int, default=3)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL),
        help="a database of the server, to create the benchmark's own from",
    )
    parser.add_argument("--seed-cache", action="store_true", help="keep and reuse the seed")
    parser.add_argument("--work-dir", type=Path, default=None)
    arguments = parser.parse_args()
    if min(arguments.tenants, arguments.students, arguments.latency_runs, arguments.rounds) < 1:
        parser.error("--tenants, --students, --latency-runs and --rounds take a positive number")
    if arguments.rounds > arguments.tenants:
        parser.error("--rounds takes at most --tenants")

    print(f"load average before: {machine_load()}", flush=True)
    server = make_url(arguments.postgres_url).set(drivername="postgresql+psycopg")
    database = f"industrydata_bench_fleet_{uuid.uuid4().hex[:12]}"
    tenants = bench_tenants(arguments.tenants)
    admin = _admin_engine(server)
    with tempfile.TemporaryDirectory(dir=arguments.work_dir, prefix="industrydata-fleet-") as work:
        root = Path(work)
        district = root / "district"
        try:
            seeded = prepare_database(
                server,
                database,
                tenants,
                students=arguments.students,
                district=district,
                cache=arguments.seed_cache,
            )
            engine = create_engine(_url(server, database))
            stored, whole = canonical_bytes(engine), database_bytes(engine)
            engine.dispose()
            seed_line = (
                f"seed: {arguments.tenants:,} tenants x {arguments.students:,} students, "
                f"{seeded.rows_per_tenant:,} canonical rows each ({seeded.how})"
            )
            store_line = (
                f"store: {stored / MiB:,.1f} MiB of canonical tables, indexes and change "
                f"tables: {stored / arguments.tenants / MiB:.2f} MiB per tenant "
                f"(database {whole / MiB:,.0f} MiB)"
            )
            print(seed_line, flush=True)
            accepted, drains, production, per_run = run_production(
                root, server, database, tenants, arguments
            )
        finally:
            drop_database(admin, database)
            admin.dispose()
        embedded = embedded_latency(
            root,
            district,
            tenants[0],
            warmup=arguments.warmup_runs,
            count=arguments.latency_runs,
        )

    print()
    print(f"database: {database}, dropped")
    print(seed_line)
    print(store_line)
    print(per_run)
    report_throughput(accepted, drains)
    report_latency(production, embedded)
    print(f"load average after: {machine_load()}")


if __name__ == "__main__":
    main()
