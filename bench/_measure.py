"""One measured export, run alone in a child process of ``bench/export.py``.

A process of its own per measurement makes its peak RSS (``ru_maxrss``) that measurement's,
and keeps ADBC's SQLite away from the parent's Python sqlite3. Prints one JSON line: rows,
seconds of wall time spent exporting (imports excluded) and peak RSS in bytes.

    python bench/_measure.py KIND STORE_PATH TENANT OUT_DIR

KIND is ``floor`` (ADBC → Arrow → pyarrow.parquet per table, nothing else), ``pandas``
(``pandas.read_sql`` + ``to_csv`` per table, what a user would write), a format of
``export_snapshot`` (``sdsCsv``, ``parquet``, ``delta``: without deletion vectors, the server's
default), ``delta-dv`` (``delta`` with deletion vectors, a flow's choice) or ``delta-dv-nocdf``
(with deletion vectors, without the Change Data Feed).
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from industrydata.canonical.reader import DEFAULT_BATCH_ROWS
from industrydata.canonical.sql import sql_table
from industrydata.canonical.tables import CANONICAL_TABLES, CanonicalTable

BATCH_ROWS = str(DEFAULT_BATCH_ROWS)


def _select(table: CanonicalTable) -> str:
    """The query a user would write for a store holding one tenant: the table's CDM
    columns, all rows, no order (a plain scan, which is also how the service reads it)."""
    columns = ", ".join(f'"{name}"' for name in table.column_names)
    return f"SELECT {columns} FROM {sql_table(table).name}"


def floor(store: Path, out: Path) -> int:
    """Every table straight from ADBC into a zstd Parquet file: the cost of reading the store
    and writing Parquet with no service around it."""
    import pyarrow.parquet as pq
    from adbc_driver_sqlite import dbapi

    rows = 0
    with dbapi.connect(str(store)) as connection:
        for table in CANONICAL_TABLES:
            with connection.cursor() as cursor:
                # The service's batch size: the driver's default of 1,024 rows would make
                # the floor slower than the service, and tiny Parquet row groups.
                cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": BATCH_ROWS})
                cursor.execute(_select(table))
                reader = cursor.fetch_record_batch()
                path = out / f"{table.name}.parquet"
                with pq.ParquetWriter(path, reader.schema, compression="zstd") as writer:
                    for batch in reader:
                        writer.write_batch(batch)
                        rows += batch.num_rows
    return rows


def pandas_csv(store: Path, out: Path) -> int:
    """Every table through ``pandas.read_sql`` into ``DataFrame.to_csv``."""
    import sqlite3

    import pandas

    rows = 0
    connection = sqlite3.connect(store)
    try:
        for table in CANONICAL_TABLES:
            frame = pandas.read_sql(_select(table), connection)
            frame.to_csv(out / f"{table.name}.csv", index=False, header=False)
            rows += len(frame)
    finally:
        connection.close()
    return rows


DELTA_WITH_DELETION_VECTORS = "delta-dv"
DELTA_WITH_DELETION_VECTORS_NO_CDF = "delta-dv-nocdf"


def service_export(kind: str, store: Path, tenant: str, out: Path) -> int:
    """The service's own export of one snapshot (what a run does in its child process)."""
    from industrydata.lake import LocalDestination
    from industrydata.runs.export import export_snapshot

    deletion_vectors = kind in (DELTA_WITH_DELETION_VECTORS, DELTA_WITH_DELETION_VECTORS_NO_CDF)
    result = export_snapshot(
        f"sqlite:///{store}",
        tenant,
        LocalDestination(out),
        format="delta" if deletion_vectors else kind,
        run_id=str(uuid.uuid4()),
        snapshot_time=datetime.now(timezone.utc),
        deletion_vectors=deletion_vectors,
        change_data_feed=kind != DELTA_WITH_DELETION_VECTORS_NO_CDF,
    )
    return sum(table.rows_written for table in result.tables)


_MODULES = {
    "floor": ("adbc_driver_sqlite.dbapi", "pyarrow.parquet"),
    "pandas": ("pandas",),
}
_SERVICE_MODULES = ("industrydata.lake", "industrydata.runs.export")


def main(kind: str, store: Path, tenant: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for module in _MODULES.get(kind, _SERVICE_MODULES):
        importlib.import_module(module)  # imports are not the export's time
    started = time.perf_counter()
    if kind == "floor":
        rows = floor(store, out)
    elif kind == "pandas":
        rows = pandas_csv(store, out)
    else:
        rows = service_export(kind, store, tenant, out)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss": peak}))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
