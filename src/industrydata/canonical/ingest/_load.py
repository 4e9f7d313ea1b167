"""What every full load shares, whatever the format: reading into canonical rows (stable ids,
the SourceSystem and RefDefinition rows, duplicate detection, progress) and writing them.

A format module subclasses ``Load`` with its files (in the order they load, referenced files
first) and one step per file that validates a record and adds canonical rows. A ``Load``
never touches the database: it hands row chunks to a sink. ``run_load`` checks the upload's
structure, takes the tenant's change version (``canonical.changes``), has ``TableUpsert``
write what the load reads and fixes the presence flags. On PostgreSQL that is one
transaction, written while the upload is read; on SQLite, whose one write lock would keep
every other writer out for the whole load, the rows are read into a spool first and applied
in short transactions behind a fence that keeps exports of the tenant out until the load is
whole (``_apply``). A large upload is read in a child process (``_reader_process``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import NoReturn

from sqlalchemy import Connection, Engine

from ...errors import LoadError, LoadProblem
from ..changes import ChangeStamp, begin_change
from ..ids import IdMinter, source_system_id
from ..tables import CANONICAL_TABLES
from ..vocabulary import REF_DEFINITIONS, ref_id, ref_ids_of_type
from ._apply import LoadFence, RowSpool, SliceClock
from ._csv import CsvFile, RecordReader
from ._keys import KeyBudget, KeyTable
from ._limits import DEFAULT_LIMITS, ReadLimits
from ._problems import ProblemLog, start_report_file
from ._reader_process import read_in_child
from ._record import Record
from ._rows import RowSink, TableRows
from ._source import Upload, open_upload
from ._upsert import TableUpsert, driver_time
from .progress import FileProgress, ProgressCallback
from .report import LoadReport

__all__ = [
    "PARALLEL_FROM_BYTES",
    "SQLITE_CACHE_KIB",
    "Load",
    "anchor_id",
    "load_time",
    "read_upload",
    "run_load",
    "user_match_id",
]

_Read = Callable[..., LoadReport]
"""Reads the load's upload into the ``sink=`` it is given and returns the report."""

SQLITE_CACHE_KIB = 128 * 1024
"""Page cache of the loading connection on SQLite: most of a district's indexes fit, so
inserting keys in random order does not keep re-reading pages (the default is 2 MiB)."""

PARALLEL_FROM_BYTES = 8 * 1024 * 1024
"""Uploads this large are read in a child process: below it, starting one costs more than
it saves."""

_PROGRESS_EVERY = 10_000
_EMAIL_TYPE_OTHER = str(ref_id("RefEmailAddressType", "Other"))
_PHONE_TYPES = {
    "phone": str(ref_id("RefPhoneNumberType", "Home")),
    "sms": str(ref_id("RefPhoneNumberType", "SMS")),
}
_IDENTIFIER_TYPES = {code: str(id_) for code, id_ in ref_ids_of_type("RefIdentifierType").items()}


def anchor_id(user_key: str) -> str:
    """The SDS v2.1 anchor of a user (SDS v1 used ``Student_…`` and ``Teacher_…``)."""
    return f"User_{user_key}"


def user_match_id(source_system: str, user_key: str) -> str:
    """The export's userMatchId: source system name and anchor."""
    return f"{source_system}_{anchor_id(user_key)}"


class Load:
    """One full load being read: id minters, row collectors, the report and the keys seen."""

    source_system: str
    """The source system's name: part of every id, so it never changes."""

    def __init__(
        self,
        upload: Upload,
        *,
        tenant_id: str,
        seen: str,
        sink: RowSink,
        progress: ProgressCallback | None,
        report_path: Path | None = None,
    ) -> None:
        self.upload = upload
        self.progress = progress
        self.source_system_id = source_system_id(tenant_id, self.source_system)
        self.problems = ProblemLog(upload.limits, report_path)
        self.report = LoadReport(
            source_system=self.source_system,
            problems=self.problems.kept,
            problem_counts=self.problems.counts,
        )
        self.mint = {
            table.name: IdMinter(tenant_id, self.source_system, table.name)
            for table in CANONICAL_TABLES
        }
        self.tables = {
            table.name: TableRows(
                table,
                tenant_id=tenant_id,
                source_system_id=self.source_system_id,
                seen=seen,
                sink=sink,
            )
            for table in CANONICAL_TABLES
        }
        self.key_budget = KeyBudget(upload.limits.max_key_memory)
        """What every key table of the load shares (``KeyBudget``)."""
        self._lines = KeyTable(values=True, budget=self.key_budget)

    @classmethod
    def check(cls, upload: Upload) -> list[LoadProblem]:
        """Structural problems of the upload (nothing is loaded when there are any)."""
        raise NotImplementedError

    def load_files(self) -> None:
        """Read the files, adding canonical rows."""
        raise NotImplementedError

    def run(self) -> LoadReport:
        """Read the whole upload; every row is handed to the sink when this returns."""
        self.add("SourceSystem", Id=self.source_system_id, Name=self.source_system)
        for ref in REF_DEFINITIONS:
            self.add(
                "RefDefinition",
                Id=str(ref.id),
                Code=ref.code,
                Namespace=ref.namespace,
                RefType=ref.ref_type,
                SortOrder=ref.sort_order,
            )
        self.load_files()
        for table in self.tables.values():
            table.flush()
        return self.report

    def add(self, table: str, **row: object) -> None:
        self.tables[table].add(row)

    def add_links(
        self, table: str, owner_key: str, owner: dict[str, str], column: str, values: Iterable[str]
    ) -> None:
        """One row of ``table`` per value: ``column`` holds it, ``owner`` names its parent row.

        The row's id is minted from the parent's source key and the value (SectionSession,
        CourseSubject, PersonDemographicRace ...).
        """
        mint = self.mint[table]
        for value in values:
            self.add(table, Id=mint(owner_key, value), **owner, **{column: value})

    def add_contacts(
        self,
        user_key: str,
        person_id: str,
        identifiers: dict[str, str],
        email: str,
        phones: list[tuple[str, str]],
    ) -> None:
        """A person's PersonIdentifier rows (by RefIdentifierType code), email and phones.

        Empty values are left out. ``phones`` holds (``phone`` or ``sms``, number) pairs; the
        person's numbers are given PriorityOrder 1, 2 in that order.
        """
        mint, identifier_rows = self.mint["PersonIdentifier"], self.tables["PersonIdentifier"]
        for identifier_type, identifier in identifiers.items():
            if identifier:
                identifier_rows.add(
                    {
                        "Id": mint(user_key, identifier_type),
                        "Identifier": identifier,
                        "PersonId": person_id,
                        "RefIdentifierTypeId": _IDENTIFIER_TYPES[identifier_type],
                    }
                )
        if email:
            self.add(
                "PersonEmailAddress",
                Id=self.mint["PersonEmailAddress"](user_key, "email"),
                EmailAddress=email,
                PersonId=person_id,
                PriorityOrder=1,
                RefEmailAddressTypeId=_EMAIL_TYPE_OTHER,
            )
        priority = 0
        for kind, number in phones:
            if number:
                priority += 1
                self.add(
                    "PersonPhoneNumber",
                    Id=self.mint["PersonPhoneNumber"](user_key, kind),
                    PersonId=person_id,
                    PhoneNumber=number,
                    PriorityOrder=priority,
                    RefPhoneNumberTypeId=_PHONE_TYPES[kind],
                )

    def read(self, spec: CsvFile, step: Callable[[Record], None]) -> None:
        """Run ``step`` on every record of ``spec``'s file (not on one already rejected for its
        width), reporting progress; refuse the upload when the file loses too many records."""
        self._lines = KeyTable(values=True, budget=self.key_budget)
        reader = RecordReader(self.upload, spec, self.problems)
        limits = self.upload.limits
        count = rejected = 0
        for record in reader:
            if not record.rejected:
                step(record)
            count += 1
            rejected += record.rejected
            if rejected > limits.max_rejected_records:
                self._refuse(spec, f"more than {limits.max_rejected_records:,} records rejected")
            if self.progress and count % _PROGRESS_EVERY == 0:
                self.progress(FileProgress(spec.name, count, reader.bytes_read, reader.bytes_total))
        self.report.records[spec.name] = count
        self.report.rejected[spec.name] = rejected
        reason = limits.refusal(count, rejected, required=spec.required)
        if reason is not None:
            self._refuse(spec, reason)
        if self.progress:
            total = reader.bytes_total
            self.progress(FileProgress(spec.name, count, total, total, done=True))

    def _refuse(self, spec: CsvFile, reason: str) -> NoReturn:
        """Refuse the upload for what reading ``spec``'s file found (``ReadLimits``)."""
        problem = LoadProblem("error", spec.name, None, None, None, f"{reason}; upload refused")
        self.problems.append(problem)
        examples = [p for p in self.problems.kept if p.file == spec.name and p is not problem]
        raise LoadError(
            f"{spec.name}: {reason}; the upload is refused and nothing was changed",
            problems=[problem, *examples],
        )

    def close(self) -> None:
        """Release what the load holds outside memory (its report file)."""
        self.problems.close()

    def claim(self, record: Record, column: str, key: int) -> bool:
        """False (and an error) when a record with the same key came earlier in the file.
        ``key`` is the 128-bit fingerprint of the record's key (``_keys``): the
        ``id_fingerprint`` of the row id minted from it, or its ``fingerprint``."""
        first = self._lines.setdefault(key, record.line)
        if first is not None:
            reason = f"duplicate of the record on line {first}"
            record.error(column, record.values.get(column), reason)
            return False
        return True


def read_upload(
    load_class: type[Load],
    path: Path,
    *,
    tenant_id: str,
    seen: str,
    sink: RowSink,
    progress: ProgressCallback | None,
    limits: ReadLimits = DEFAULT_LIMITS,
    report_path: Path | None = None,
) -> LoadReport:
    """Read the (checked) upload at ``path`` into ``sink``: the part of a load that needs no
    database, the same in this process or a child. Problems are appended to the report file
    at ``report_path`` as they are found."""
    with open_upload(path, limits) as upload:
        load = load_class(
            upload,
            tenant_id=tenant_id,
            seen=seen,
            sink=sink,
            progress=progress,
            report_path=report_path,
        )
        try:
            return load.run()
        finally:
            load.close()


def run_load(
    load_class: type[Load],
    engine: Engine,
    path: Path,
    *,
    tenant_id: str,
    now: datetime | None,
    progress: ProgressCallback | None,
    parallel: bool | None,
    what: str,
    limits: ReadLimits = DEFAULT_LIMITS,
    report_path: Path | None = None,
) -> LoadReport:
    """Check the upload at ``path``, then load it with ``load_class``: in one transaction on
    PostgreSQL; on SQLite read into a spool first, then applied in short transactions behind
    the tenant's fence (``_apply``), so the store's write lock is never held for long.

    ``parallel`` reads the upload in a child process; ``None`` decides by the upload's size
    (``PARALLEL_FROM_BYTES``). ``report_path``, when given, becomes a CSV file of every
    problem (``REPORT_COLUMNS``), written as they are found.

    Raises:
        LoadError: the upload is refused (``what`` names the format in the message): a
            structural problem, a limit of ``limits`` broken, or too many records of a file
            rejected; or another load of the tenant is being applied. Nothing was written.
    """
    if report_path is not None:
        start_report_file(report_path)
    try:
        with open_upload(path, limits) as upload:
            problems = load_class.check(upload)
            size = sum(upload.sizes.values())
        if problems:
            first = problems[0]
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            raise LoadError(
                f"the {what} upload is refused: {first.file}: {first.reason}{more}",
                problems=problems,
            )
    except LoadError as error:
        _log(error.problems, limits, report_path)
        raise
    if parallel is None:
        parallel = size >= PARALLEL_FROM_BYTES
    moment = load_time(now)
    # Reading into a sink: in this process, or in a child while this one writes.
    read: _Read = partial(
        read_in_child if parallel else read_upload,
        load_class,
        path,
        tenant_id=tenant_id,
        seen=driver_time(moment),
        progress=progress,
        limits=limits,
        report_path=report_path,
    )
    if engine.dialect.name == "sqlite":
        return _load_in_slices(read, engine, tenant_id, moment)
    return _load_in_one_transaction(read, engine, tenant_id, moment)



def _upserts(
    connection: Connection, tenant_id: str, moment: datetime
) -> tuple[ChangeStamp, dict[str, TableUpsert]]:
    """Take the tenant's change version and ready a writer per table (in the transaction)."""
    stamp = begin_change(connection, tenant_id)
    writers = {
        table.name: TableUpsert(connection, table, tenant_id=tenant_id, now=moment, stamp=stamp)
        for table in CANONICAL_TABLES
    }
    for writer in writers.values():
        writer.before_load()
    return stamp, writers


def _load_in_one_transaction(
    read: _Read, engine: Engine, tenant_id: str, moment: datetime
) -> LoadReport:
    """PostgreSQL: row locks keep other writers free, so the load is one transaction, written
    while it is read."""
    with engine.begin() as connection:
        _, writers = _upserts(connection, tenant_id, moment)
        report = read(sink=lambda table, rows: writers[table].write(rows))
        for writer in writers.values():
            writer.after_load()
    report.rows = {name: writer.written for name, writer in writers.items()}
    return report


def _load_in_slices(
    read: _Read, engine: Engine, tenant_id: str, moment: datetime
) -> LoadReport:
    """SQLite: read into a spool (beside the database, on its disk), then apply it in short
    transactions behind the tenant's fence (``_apply``), so other writers wait a slice at
    most, never the whole load."""
    database = engine.url.database
    beside = Path(database).parent if database and database != ":memory:" else None
    with tempfile.TemporaryDirectory(prefix="industrydata-load-", dir=beside) as folder:
        spool = RowSpool(Path(folder) / "rows.marshal")
        try:
            report = read(sink=spool.write)
            with engine.connect() as connection, _page_cache(connection):
                stamp, writers = _upserts(connection, tenant_id, moment)
                fence = LoadFence(connection, tenant_id)
                fence.take(stamp.version, _utcnow())
                connection.commit()
                clock = SliceClock()
                for table, rows in spool.chunks():
                    writers[table].write(rows)
                    if clock.due():
                        fence.renew(_utcnow())
                        connection.commit()
                        clock.pause()
                for writer in writers.values():
                    writer.after_load()
                    if clock.due():
                        connection.commit()
                        clock.pause()
                fence.remove()
                connection.commit()
        finally:
            spool.close()
    report.rows = {name: writer.written for name, writer in writers.items()}
    return report


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _log(problems: list[LoadProblem], limits: ReadLimits, report_path: Path | None) -> None:
    """Write the problems that refused an upload before it was read to its report file."""
    log = ProblemLog(limits, report_path)
    try:
        log.extend(problems)
    finally:
        log.close()


def load_time(now: datetime | None) -> datetime:
    """Naive UTC with millisecond precision, the precision the lake export writes."""
    moment = now or datetime.now(timezone.utc)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@contextmanager
def _page_cache(connection: Connection) -> Iterator[None]:
    """A larger SQLite page cache for the load, the connection's own again afterwards."""
    if connection.dialect.name != "sqlite":
        yield
        return
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar_one()
    connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")
