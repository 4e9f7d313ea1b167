"""Change tracking of the canonical store: change versions, row numbers and tombstones.

An export to Delta writes only what changed since its previous run. For that every
canonical row carries two columns (``canonical.sql``): ``RowNumber``, a number unique per
tenant and table, given when the row is inserted and kept by every update, and
``RowVersion``, the change version of the row's last insert or update. A deleted row leaves
a tombstone in ``canonical_tombstones``: its tenant, table (CDM name), row number and the
version of the deletion.

Each tenant has one counter row in ``canonical_changes``: ``version``, the last change
version taken (it only grows), ``next_row_number``, and ``epoch``, a uuid4 chosen when the
row is created. An export remembers the ``ChangePosition`` (epoch and version) it read; a
later export reads the rows and tombstones with a version above it, or everything when the
epoch differs (the counters were created anew).

A version is taken by updating the tenant's counter row, which then stays locked until the
transaction ends (on PostgreSQL the row's lock, on SQLite the database's one write lock), so
versions are taken in commit order: a reader that sees version v in its snapshot sees every
row stamped with v or less, and every row committed after its snapshot carries a version
above v. A load takes one version for all the rows it writes (``begin_change``) and reserves
row numbers from the counter chunk by chunk, so the counter always says which numbers are
taken, whoever takes them in the transaction. Numbers handed to rows that turn out to be
updates stay unused: numbers are unique, not dense.

Writes that bypass the loaders are stamped by triggers (migration ``0002_change_tracking``):
an insert leaving ``RowNumber`` or ``RowVersion`` NULL gets them, an update leaving
``RowVersion`` unchanged gets a new version, a delete leaves a tombstone. Their WHEN clauses
keep them silent for the loaders, which set both columns themselves. On SQLite every row a
trigger stamps takes a version of its own. On PostgreSQL a transaction's triggers take one
version per tenant (remembered in a transaction-local setting) and reserve row numbers in
growing blocks: updating one row again and again in a transaction costs PostgreSQL time
quadratic in the number of updates.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, update
from sqlalchemy.dialects import postgresql, sqlite

from .sql import CANONICAL_CHANGES

__all__ = ["ChangePosition", "ChangeStamp", "begin_change"]

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


@dataclass(frozen=True)
class ChangePosition:
    """How far a tenant's changes have gone: what an export records to continue from."""

    epoch: str
    version: int


class ChangeStamp:
    """The change version one write transaction gives a tenant's rows, and the source of
    their row numbers."""

    def __init__(self, connection: Connection, tenant_id: str, position: ChangePosition) -> None:
        self._connection = connection
        self.tenant_id = tenant_id
        self.epoch = position.epoch
        self.version = position.version

    def row_numbers(self, count: int) -> range:
        """``count`` fresh row numbers, reserved in the tenant's counter row."""
        if count < 1:
            return range(0)
        counter = CANONICAL_CHANGES
        end = self._connection.execute(
            update(counter)
            .where(counter.c.tenant_id == self.tenant_id)
            .values(next_row_number=counter.c.next_row_number + count)
            .returning(counter.c.next_row_number)
        ).scalar_one()
        return range(end - count, end)


def begin_change(connection: Connection, tenant_id: str) -> ChangeStamp:
    """Take the tenant's next change version in ``connection``'s transaction, creating the
    tenant's counter row (with a new epoch) when there is none."""
    try:
        insert = _INSERTS[connection.dialect.name]
    except KeyError:
        dialect = connection.dialect.name
        raise ValueError(f"the canonical store does not support {dialect}") from None
    counter = CANONICAL_CHANGES
    statement = (
        insert(counter)
        .values(tenant_id=tenant_id, epoch=str(uuid.uuid4()), version=1, next_row_number=1)
        .on_conflict_do_update(
            index_elements=[counter.c.tenant_id], set_={"version": counter.c.version + 1}
        )
        .returning(counter.c.epoch, counter.c.version)
    )
    epoch, version = connection.execute(statement).one()
    return ChangeStamp(connection, tenant_id, ChangePosition(epoch, version))
