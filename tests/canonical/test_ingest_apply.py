"""On SQLite a load applies its rows in short transactions behind the tenant's fence: other
writers get the lock between slices, exports never see a half-applied load, a second load of
the tenant is refused while the first is live, and a load that died is repaired by the next.
On PostgreSQL a load stays one transaction and never sets the fence."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.engine import make_url

from industrydata.canonical.generator import generate_sds_csv
from industrydata.canonical.ingest import _apply, load_sds_csv
from industrydata.canonical.reader import open_store_reader
from industrydata.canonical.sql import CANONICAL_LOADS_APPLYING
from industrydata.canonical.statistics import count_rows
from industrydata.errors import LoadError

TENANT = str(uuid.uuid4())


@pytest.fixture
def district(tmp_path: Path) -> Path:
    generate_sds_csv(tmp_path / "district", students=40, seed=7)
    return tmp_path / "district"


@pytest.fixture
def sliced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every chunk its own slice, and no pause (the probes below stand in for one)."""
    monkeypatch.setattr(_apply, "APPLY_SLICE_SECONDS", 0.0)
    monkeypatch.setattr(_apply, "APPLY_PAUSE_SECONDS", 0.0)


def _fences(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(CANONICAL_LOADS_APPLYING.c.tenant_id)))


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_between_slices_the_lock_is_free_and_exports_are_fenced(
    engine: Engine,
    store_url: str,
    district: Path,
    sliced: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probes: list[tuple[bool, int]] = []
    pause = _apply.SliceClock.pause

    def probe(clock: _apply.SliceClock) -> None:
        # Python's sqlite3 only: ADBC's copy of SQLite must not open the file while the
        # load's connection is open in this process.
        other = sqlite3.connect(make_url(store_url).database, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # raises "database is locked" if the load held it
            fenced = other.execute(
                "SELECT count(*) FROM canonical_loads_applying WHERE tenant_id = ?", (TENANT,)
            ).fetchone()[0]
            other.execute("ROLLBACK")
        finally:
            other.close()
        probes.append((fenced == 1, sum(count_rows(engine, TENANT).values())))
        pause(clock)

    monkeypatch.setattr(_apply.SliceClock, "pause", probe)

    report = load_sds_csv(engine, district, tenant_id=TENANT)

    assert len(probes) > 10
    assert all(fenced for fenced, _ in probes)
    assert probes[0][1] < probes[-1][1]  # the slices were committed as they went
    assert _fences(engine) == []
    assert sum(count_rows(engine, TENANT).values()) == sum(report.rows.values())


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_load_that_dies_while_applying_keeps_the_fence_until_the_next_load(
    engine: Engine, store_url: str, district: Path, sliced: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = load_sds_csv(engine, district, tenant_id=str(uuid.uuid4()))
    pauses = 0

    def die_on_the_third(clock: _apply.SliceClock) -> None:
        nonlocal pauses
        pauses += 1
        if pauses == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(_apply.SliceClock, "pause", die_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        load_sds_csv(engine, district, tenant_id=TENANT)
    monkeypatch.undo()

    assert _fences(engine) == [TENANT]
    with engine.begin() as connection:  # the dead load's fence has gone stale
        connection.execute(
            CANONICAL_LOADS_APPLYING.update().values(touched_at=_utcnow() - timedelta(hours=1))
        )

    report = load_sds_csv(engine, district, tenant_id=TENANT)

    assert _fences(engine) == []
    assert report.rows == reference.rows
    assert count_rows(engine, TENANT) == count_rows(engine, next(iter(_tenants(engine) - {TENANT})))


def _tenants(engine: Engine) -> set[str]:
    from industrydata.canonical.sql import CANONICAL_CHANGES

    with engine.connect() as connection:
        return set(connection.scalars(select(CANONICAL_CHANGES.c.tenant_id)))


def _fence(engine: Engine, tenant_id: str, touched_at: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(CANONICAL_LOADS_APPLYING).values(
                tenant_id=tenant_id, version=7, started_at=touched_at, touched_at=touched_at
            )
        )


def test_the_store_reader_sees_the_fence_in_its_snapshot(engine: Engine, store_url: str) -> None:
    _fence(engine, TENANT, _utcnow())

    with open_store_reader(store_url) as reader:
        assert reader.load_being_applied(TENANT)
        assert not reader.load_being_applied(str(uuid.uuid4()))


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_second_load_of_the_tenant_is_refused_while_the_first_is_applied(
    engine: Engine, district: Path
) -> None:
    _fence(engine, TENANT, _utcnow())

    with pytest.raises(LoadError, match="another load of this tenant is being applied"):
        load_sds_csv(engine, district, tenant_id=TENANT)

    assert sum(count_rows(engine, TENANT).values()) == 0
    assert _fences(engine) == [TENANT]


def test_a_load_never_leaves_a_fence(engine: Engine, district: Path) -> None:
    report = load_sds_csv(engine, district, tenant_id=TENANT)

    assert _fences(engine) == []
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(CANONICAL_LOADS_APPLYING)) == 0
    assert sum(count_rows(engine, TENANT).values()) == sum(report.rows.values())
