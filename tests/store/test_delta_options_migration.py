"""Migration 0005_delta_options: invitations get a nullable ``delta_deletion_vectors``; those
accepted before it keep NULL and so follow the server's default; the downgrade removes it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text
from sqlalchemy.orm import Session

from industrydata.store import Invitation, create_store_engine, upgrade_to_head
from industrydata.store.migrate import alembic_config

TENANT = "9a8b7c6d-0000-4000-8000-000000000005"
FLOW = "0f0e0d0c-0000-4000-8000-000000000005"
INVITATION = "1f1e1d1c-0000-4000-8000-000000000005"
COLUMN = "delta_deletion_vectors"


@pytest.fixture
def migrations(store_url: str) -> Iterator[tuple[Engine, Config]]:
    """The store's engine and its Alembic configuration; the store is back at head after
    the test (the PostgreSQL database is shared by the session's tests)."""
    engine = create_store_engine(store_url, pooled=False)
    try:
        yield engine, alembic_config(engine)
    finally:
        upgrade_to_head(engine)
        engine.dispose()


def _columns(engine: Engine) -> list[str]:
    return [column["name"] for column in inspect(engine).get_columns("invitation")]


def _insert_accepted_delta_flow(engine: Engine) -> None:
    """A flow accepted into a ``delta`` destination by the code of revision 0004."""
    now = datetime(2026, 12, 1, 6, 0)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO flow (id, tenant_id, display_name, share_name, invitee_user_id, "
                "readiness_status, sharing_state, etag, created_at, modified_at) VALUES "
                "(:id, :tenant, 'Lake', 'lake', :tenant, 'ready', 'running', 'e', :now, :now)"
            ),
            {"id": FLOW, "tenant": TENANT, "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO invitation (id, flow_id, tenant_id, invitee_user_id, status, "
                "created_at, expires_at, responded_at, destination_url, destination_format) "
                "VALUES (:id, :flow, :tenant, :tenant, 'accepted', :now, :now, :now, "
                "'file:///lake', 'delta')"
            ),
            {"id": INVITATION, "flow": FLOW, "tenant": TENANT, "now": now},
        )


def test_downgrade_removes_the_column_and_upgrade_adds_it(
    migrations: tuple[Engine, Config],
) -> None:
    engine, config = migrations

    command.downgrade(config, "0004_load_fence")
    assert COLUMN not in _columns(engine)

    upgrade_to_head(engine)
    assert _columns(engine).count(COLUMN) == 1


def test_invitations_accepted_before_follow_the_server_default_and_new_choices_are_kept(
    migrations: tuple[Engine, Config],
) -> None:
    engine, config = migrations
    command.downgrade(config, "0004_load_fence")
    _insert_accepted_delta_flow(engine)

    upgrade_to_head(engine)

    with Session(engine) as session:
        invitation = session.get(Invitation, INVITATION)
        assert invitation is not None and invitation.delta_deletion_vectors is None
        assert (invitation.deletion_vectors(True), invitation.deletion_vectors(False)) == (
            True,
            False,
        )
        invitation.delta_deletion_vectors = True
        session.commit()
    with Session(engine) as session:
        invitation = session.get(Invitation, INVITATION)
        assert invitation is not None and invitation.deletion_vectors(False) is True


def test_upgrade_adds_nothing_that_is_there(migrations: tuple[Engine, Config]) -> None:
    engine, config = migrations
    command.stamp(config, "0004_load_fence")

    upgrade_to_head(engine)

    assert _columns(engine).count(COLUMN) == 1
