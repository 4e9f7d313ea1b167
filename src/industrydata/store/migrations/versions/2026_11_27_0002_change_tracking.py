"""Change tracking of the canonical tables: row numbers, row versions, counters, tombstones.

Revision ID: 0002_change_tracking
Revises: 0001_baseline
Create Date: 2026-11-27

Adds what ``canonical.changes`` describes: ``RowNumber`` and ``RowVersion`` (nullable
BIGINT) and an index on (``TenantId``, ``RowVersion``) on every canonical table, the tables
``canonical_changes`` and ``canonical_tombstones``, and the triggers that stamp writes which
bypass the loaders. The baseline creates the tables as the code defines them, so a store
created by it already has the columns, the index and the two tables: every step adds only
what is missing. Rows already stored get numbers (rowid order on SQLite, per tenant on
PostgreSQL) and version 1, and their tenants counter rows consistent with them; such rows
belong to stores written before this revision, whose tenants have no counter rows yet.

The triggers, per canonical table:

- an INSERT leaving ``RowNumber`` or ``RowVersion`` NULL gets them from the tenant's
  counter row (created when missing);
- an UPDATE leaving ``RowVersion`` as it was gets a new version;
- a DELETE leaves a tombstone with a new version.

SQLite runs AFTER row triggers that update the row they fired for (recursive triggers are
off, and the update changes ``RowVersion``, so it stamps nothing again); each stamped row
takes a version of its own. PostgreSQL runs BEFORE row triggers that set the new values and
a statement-level AFTER DELETE trigger that reads the deleted rows from its transition
table; ``canonical_change_version`` takes one version per tenant and transaction and
``canonical_next_row_number`` reserves numbers in blocks that double up to 65536, both
remembered in transaction-local settings. The WHEN clauses keep every trigger body from
running for the loaders' writes, which set both columns.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from industrydata.canonical.sql import CANONICAL_CHANGES, CANONICAL_TOMBSTONES, sql_table_name
from industrydata.canonical.tables import CANONICAL_TABLES, CanonicalTable

revision = "0002_change_tracking"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

_TRACKING_COLUMNS = ("RowNumber", "RowVersion")

# A random uuid4 as text, in SQLite's SQL.
_SQLITE_NEW_EPOCH = (
    "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4'"
    " || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (random() & 3), 1)"
    " || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))"
)

_POSTGRESQL_FUNCTIONS = (
    """
CREATE OR REPLACE FUNCTION canonical_change_version(tenant text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    setting text := 'industrydata.change_version_' || md5(tenant);
    taken text := current_setting(setting, true);
    stamp bigint;
BEGIN
    IF taken <> '' THEN
        RETURN taken::bigint;
    END IF;
    INSERT INTO canonical_changes AS counter (tenant_id, epoch, version, next_row_number)
    VALUES (tenant, gen_random_uuid()::text, 1, 1)
    ON CONFLICT (tenant_id) DO UPDATE SET version = counter.version + 1
    RETURNING counter.version INTO stamp;
    PERFORM set_config(setting, stamp::text, true);
    RETURN stamp;
END
$$
""",
    """
CREATE OR REPLACE FUNCTION canonical_next_row_number(tenant text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    setting text := 'industrydata.row_numbers_' || md5(tenant);
    reserved text[] := string_to_array(nullif(current_setting(setting, true), ''), ' ');
    next_number bigint := reserved[1]::bigint;
    last_number bigint := reserved[2]::bigint;
    block bigint := coalesce(reserved[3]::bigint, 0);
BEGIN
    IF next_number IS NULL OR next_number > last_number THEN
        block := greatest(least(block * 2, 65536), 1);
        INSERT INTO canonical_changes AS counter (tenant_id, epoch, version, next_row_number)
        VALUES (tenant, gen_random_uuid()::text, 0, 1 + block)
        ON CONFLICT (tenant_id) DO UPDATE SET next_row_number = counter.next_row_number + block
        RETURNING counter.next_row_number - block, counter.next_row_number - 1
        INTO next_number, last_number;
    END IF;
    PERFORM set_config(setting, concat_ws(' ', next_number + 1, last_number, block), true);
    RETURN next_number;
END
$$
""",
    """
CREATE OR REPLACE FUNCTION canonical_stamp_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW."RowVersion" := coalesce(NEW."RowVersion", canonical_change_version(NEW."TenantId"));
    NEW."RowNumber" := coalesce(NEW."RowNumber", canonical_next_row_number(NEW."TenantId"));
    RETURN NEW;
END
$$
""",
    """
CREATE OR REPLACE FUNCTION canonical_stamp_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW."RowVersion" := canonical_change_version(NEW."TenantId");
    RETURN NEW;
END
$$
""",
    """
CREATE OR REPLACE FUNCTION canonical_tombstone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO canonical_tombstones (tenant_id, table_name, row_number, version)
    SELECT removed."TenantId", TG_ARGV[0], removed."RowNumber",
           canonical_change_version(removed."TenantId")
    FROM removed
    WHERE removed."RowNumber" IS NOT NULL;
    RETURN NULL;
END
$$
""",
)
_POSTGRESQL_FUNCTION_NAMES = (
    "canonical_stamp_insert()",
    "canonical_stamp_update()",
    "canonical_tombstone()",
    "canonical_next_row_number(text)",
    "canonical_change_version(text)",
)


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table in (CANONICAL_CHANGES, CANONICAL_TOMBSTONES):
        table.create(bind, checkfirst=True)
    numbered = 0
    for table in CANONICAL_TABLES:
        name = sql_table_name(table)
        present = {column["name"] for column in inspector.get_columns(name)}
        for column in _TRACKING_COLUMNS:
            if column not in present:
                op.add_column(name, sa.Column(column, sa.BigInteger()))
        numbered += bind.exec_driver_sql(_number_rows_sql(bind.dialect.name, name)).rowcount
        index = f"ix_{name}_row_version"
        if index not in {found["name"] for found in inspector.get_indexes(name)}:
            op.create_index(index, name, ["TenantId", "RowVersion"])
    if numbered:
        bind.exec_driver_sql(_counters_sql(bind.dialect.name))
    if bind.dialect.name == "postgresql":
        for function in _POSTGRESQL_FUNCTIONS:
            bind.exec_driver_sql(function)
    existing = _trigger_names(bind)
    for table in CANONICAL_TABLES:
        for trigger, sql in _triggers(bind.dialect.name, table).items():
            if trigger not in existing:
                bind.exec_driver_sql(sql)


def downgrade() -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    for table in CANONICAL_TABLES:
        name = sql_table_name(table)
        for trigger in _triggers(bind.dialect.name, table):
            bind.exec_driver_sql(
                f'DROP TRIGGER IF EXISTS "{trigger}"' + (f' ON "{name}"' if postgresql else "")
            )
        op.drop_index(f"ix_{name}_row_version", table_name=name)
        for column in _TRACKING_COLUMNS:
            op.drop_column(name, column)
    if postgresql:
        for function in _POSTGRESQL_FUNCTION_NAMES:
            bind.exec_driver_sql(f"DROP FUNCTION IF EXISTS {function}")
    for table in (CANONICAL_TOMBSTONES, CANONICAL_CHANGES):
        table.drop(bind, checkfirst=True)


def _number_rows_sql(dialect: str, name: str) -> str:
    """Numbers and version 1 for the rows stored without them."""
    unstamped = '"RowNumber" IS NULL OR "RowVersion" IS NULL'
    if dialect == "sqlite":
        return (
            f'UPDATE "{name}" SET "RowNumber" = coalesce("RowNumber", rowid),'
            f' "RowVersion" = coalesce("RowVersion", 1) WHERE {unstamped}'
        )
    return (
        f'UPDATE "{name}" AS target SET'
        ' "RowNumber" = coalesce(target."RowNumber", numbered.number),'
        ' "RowVersion" = coalesce(target."RowVersion", 1)'
        " FROM (SELECT ctid AS row_id,"
        ' row_number() OVER (PARTITION BY "TenantId") AS number'
        f' FROM "{name}" WHERE {unstamped}) AS numbered'
        " WHERE target.ctid = numbered.row_id"
    )


def _counters_sql(dialect: str) -> str:
    """Counter rows of the tenants with rows: their highest version and the number after
    their highest row number."""
    tops = " UNION ALL ".join(
        f'SELECT "TenantId" AS tenant, max("RowNumber") AS top_number,'
        f' max("RowVersion") AS top_version FROM "{sql_table_name(table)}" GROUP BY "TenantId"'
        for table in CANONICAL_TABLES
    )
    if dialect == "sqlite":
        epoch, greatest = _SQLITE_NEW_EPOCH, "max"
    else:
        epoch, greatest = "gen_random_uuid()::text", "greatest"
    # WHERE true: SQLite would read ON CONFLICT as a join constraint otherwise.
    return (
        "INSERT INTO canonical_changes (tenant_id, epoch, version, next_row_number)"
        f" SELECT tenant, {epoch}, max(top_version), max(top_number) + 1 FROM ({tops}) AS tops"
        " WHERE true GROUP BY tenant"
        " ON CONFLICT (tenant_id) DO UPDATE SET"
        f" version = {greatest}(canonical_changes.version, excluded.version),"
        " next_row_number ="
        f" {greatest}(canonical_changes.next_row_number, excluded.next_row_number)"
    )


def _trigger_names(bind: sa.Connection) -> set[str]:
    if bind.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    return set(bind.exec_driver_sql(query).scalars())


def _triggers(dialect: str, table: CanonicalTable) -> dict[str, str]:
    """The three triggers of a canonical table: name → CREATE statement."""
    name = sql_table_name(table)
    names = (f"{name}_stamp_insert", f"{name}_stamp_update", f"{name}_tombstone")
    if dialect == "sqlite":
        statements = _sqlite_triggers(name, table.name, names)
    else:
        statements = _postgresql_triggers(name, table.name, names)
    return dict(zip(names, statements, strict=True))


def _sqlite_triggers(name: str, cdm_name: str, names: tuple[str, ...]) -> tuple[str, ...]:
    def bump(tenant: str, *, numbers: bool) -> str:
        """Take a new version (and a row number) from the tenant's counter row."""
        more = ", next_row_number = next_row_number + 1" if numbers else ""
        return (
            "INSERT INTO canonical_changes (tenant_id, epoch, version, next_row_number)"
            f" VALUES ({tenant}, {_SQLITE_NEW_EPOCH}, 1, {2 if numbers else 1})"
            f" ON CONFLICT (tenant_id) DO UPDATE SET version = version + 1{more};"
        )

    new, old = 'NEW."TenantId"', 'OLD."TenantId"'
    taken_number = f"(SELECT next_row_number - 1 FROM canonical_changes WHERE tenant_id = {new})"
    taken_version = f"(SELECT version FROM canonical_changes WHERE tenant_id = {new})"
    insert, update, delete = names
    return (
        f"""CREATE TRIGGER "{insert}" AFTER INSERT ON "{name}" FOR EACH ROW
WHEN NEW."RowNumber" IS NULL OR NEW."RowVersion" IS NULL BEGIN
    {bump(new, numbers=True)}
    UPDATE "{name}" SET "RowNumber" = coalesce(NEW."RowNumber", {taken_number}),
        "RowVersion" = coalesce(NEW."RowVersion", {taken_version})
    WHERE rowid = NEW.rowid;
END""",
        f"""CREATE TRIGGER "{update}" AFTER UPDATE ON "{name}" FOR EACH ROW
WHEN NEW."RowVersion" IS OLD."RowVersion" BEGIN
    {bump(new, numbers=False)}
    UPDATE "{name}" SET "RowVersion" = {taken_version} WHERE rowid = NEW.rowid;
END""",
        f"""CREATE TRIGGER "{delete}" AFTER DELETE ON "{name}" FOR EACH ROW
WHEN OLD."RowNumber" IS NOT NULL BEGIN
    {bump(old, numbers=False)}
    INSERT INTO canonical_tombstones (tenant_id, table_name, row_number, version)
    SELECT {old}, '{cdm_name}', OLD."RowNumber", version
    FROM canonical_changes WHERE tenant_id = {old};
END""",
    )


def _postgresql_triggers(name: str, cdm_name: str, names: tuple[str, ...]) -> tuple[str, ...]:
    insert, update, delete = names
    return (
        f"""CREATE TRIGGER "{insert}" BEFORE INSERT ON "{name}" FOR EACH ROW
WHEN (NEW."RowNumber" IS NULL OR NEW."RowVersion" IS NULL)
EXECUTE FUNCTION canonical_stamp_insert()""",
        f"""CREATE TRIGGER "{update}" BEFORE UPDATE ON "{name}" FOR EACH ROW
WHEN (NEW."RowVersion" IS NOT DISTINCT FROM OLD."RowVersion")
EXECUTE FUNCTION canonical_stamp_update()""",
        f"""CREATE TRIGGER "{delete}" AFTER DELETE ON "{name}"
REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
EXECUTE FUNCTION canonical_tombstone('{cdm_name}')""",
    )
