"""Destination claims in the store: overlap by whole path components within a namespace, one
claim per flow (moved by claiming again), released with the flow, and race-free: of two
transactions claiming overlapping destinations at once, exactly one wins."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
from alembic import command
from sqlalchemy import inspect

from industrydata.store import (
    ClaimRefusal,
    DestinationClaim,
    Flow,
    Store,
    claim_destination,
    claimed_destination,
    create_store_engine,
    open_store,
    upgrade_to_head,
)
from industrydata.store.migrate import alembic_config

NOW = datetime(2026, 12, 2, 10, 0)
TENANT = str(uuid.uuid4())
OTHER_TENANT = str(uuid.uuid4())


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = open_store(store_url)
    yield store
    store.dispose()


@pytest.fixture
def namespace() -> str:
    """A namespace of this test's own (the PostgreSQL database is shared by the session)."""
    return f"file-{uuid.uuid4().hex}"


def _flow(store: Store, tenant_id: str = TENANT) -> str:
    flow = Flow(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        display_name="F",
        share_name=uuid.uuid4().hex,
        invitee_user_id=str(uuid.uuid4()),
        readiness_status="ready",
        sharing_state="active",
        etag="e",
        created_at=NOW,
        modified_at=NOW,
    )
    with store.writing() as session:
        session.add(flow)
        session.commit()
    return flow.id


def _claim(
    store: Store, flow_id: str, namespace: str, path: str, tenant_id: str = TENANT
) -> ClaimRefusal | None:
    with store.writing() as session:
        refusal = claim_destination(
            session, flow_id=flow_id, tenant_id=tenant_id, namespace=namespace, path=path, now=NOW
        )
        session.commit()
        return refusal


@pytest.mark.parametrize(
    ("held", "wanted", "refused"),
    [
        ("lake/a", "lake/a", True),
        ("lake/a", "lake/a/b/c", True),
        ("lake/a/b", "lake", True),
        ("", "lake/a", True),
        ("lake/a", "", True),
        ("lake/a", "lake/ab", False),
        ("lake/ab", "lake/a", False),
        ("lake/a/b", "lake/a/c", False),
    ],
)
def test_overlap_is_by_whole_components(
    store: Store, namespace: str, held: str, wanted: str, refused: bool
) -> None:
    assert _claim(store, _flow(store), namespace, held) is None

    refusal = _claim(store, _flow(store), namespace, wanted)

    assert refusal is (ClaimRefusal.SAME_TENANT if refused else None)


def test_other_namespaces_and_tenants(store: Store, namespace: str) -> None:
    assert _claim(store, _flow(store), namespace, "lake") is None

    assert _claim(store, _flow(store), namespace + "-other", "lake") is None
    other_tenant = _flow(store, OTHER_TENANT)
    assert _claim(store, other_tenant, namespace, "lake/x", OTHER_TENANT) is (
        ClaimRefusal.OTHER_TENANT
    )


def test_a_flow_moves_its_own_claim(store: Store, namespace: str) -> None:
    flow_id = _flow(store)
    assert _claim(store, flow_id, namespace, "lake/a") is None

    assert _claim(store, flow_id, namespace, "lake/a/inner") is None
    assert _claim(store, flow_id, namespace, "lake/b") is None

    with store.reading() as session:
        assert claimed_destination(session, flow_id) == (namespace, "lake/b")
    assert _claim(store, _flow(store), namespace, "lake/a") is None


def test_deleting_the_flow_releases_its_claim(store: Store, namespace: str) -> None:
    flow_id = _flow(store)
    _claim(store, flow_id, namespace, "lake/a")

    with store.writing() as session:
        session.delete(session.get(Flow, flow_id))
        session.commit()

    with store.reading() as session:
        assert session.get(DestinationClaim, flow_id) is None
    assert _claim(store, _flow(store), namespace, "lake/a") is None


def test_racing_claims_exactly_one_wins(store: Store, namespace: str) -> None:
    """Both transactions start together and hold on before committing; without the
    serialisation both would see no claim and both would win."""
    flows = [_flow(store), _flow(store, OTHER_TENANT)]
    tenants = [TENANT, OTHER_TENANT]
    paths = ["lake/district", "lake/district/school"]
    start = threading.Barrier(2)
    results: list[ClaimRefusal | None] = [None, None]
    errors: list[BaseException] = []

    def claim(index: int) -> None:
        try:
            with store.writing() as session:
                start.wait()
                results[index] = claim_destination(
                    session,
                    flow_id=flows[index],
                    tenant_id=tenants[index],
                    namespace=namespace,
                    path=paths[index],
                    now=NOW,
                )
                time.sleep(0.3)
                session.commit()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=claim, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(result is None for result in results) == [False, True]
    assert next(result for result in results if result is not None) is ClaimRefusal.OTHER_TENANT
    with store.reading() as session:
        held = [claimed_destination(session, flow_id) for flow_id in flows]
    assert sum(claim is not None for claim in held) == 1


def test_migration_adds_the_table_and_removes_it(store_url: str) -> None:
    engine = create_store_engine(store_url, pooled=False)
    config = alembic_config(engine)
    try:
        command.downgrade(config, "0002_change_tracking")
        assert "destination_claim" not in inspect(engine).get_table_names()

        upgrade_to_head(engine)

        columns = {column["name"] for column in inspect(engine).get_columns("destination_claim")}
        assert columns == {"flow_id", "tenant_id", "namespace", "path", "claimed_at"}
        upgrade_to_head(engine)
    finally:
        upgrade_to_head(engine)
        engine.dispose()
