"""The tenant directory: users per tenant, and who holds the Global Administrator role."""

from __future__ import annotations

import uuid

import pytest

from industrydata.directory import (
    add_user,
    get_user,
    global_administrators,
    has_users,
    is_global_administrator,
)
from industrydata.store import Store, open_store

TENANT = str(uuid.uuid4())
OTHER_TENANT = str(uuid.uuid4())


@pytest.fixture
def store(store_url: str) -> Store:
    store = open_store(store_url)
    yield store
    store.dispose()


def test_add_user_then_role_is_known_per_tenant(store: Store) -> None:
    admin, user = str(uuid.uuid4()), str(uuid.uuid4())
    with store.writing() as session:
        add_user(
            session, tenant_id=TENANT, object_id=admin, display_name="Bo", is_global_admin=True
        )
        add_user(session, tenant_id=TENANT, object_id=user, display_name="Al")
        session.commit()

    with store.reading() as session:
        assert is_global_administrator(session, tenant_id=TENANT, object_id=admin)
        assert not is_global_administrator(session, tenant_id=TENANT, object_id=user)
        assert not is_global_administrator(session, tenant_id=OTHER_TENANT, object_id=admin)
        assert not is_global_administrator(session, tenant_id=TENANT, object_id=str(uuid.uuid4()))


def test_add_user_replaces_and_normalises_case(store: Store) -> None:
    object_id = str(uuid.uuid4())
    with store.writing() as session:
        add_user(
            session,
            tenant_id=TENANT.upper(),
            object_id=object_id.upper(),
            display_name="Old",
            is_global_admin=True,
        )
        session.commit()
    with store.writing() as session:
        add_user(
            session,
            tenant_id=TENANT,
            object_id=object_id,
            display_name="New",
            user_principal_name="n@x.test",
        )
        session.commit()

    with store.reading() as session:
        user = get_user(session, tenant_id=TENANT, object_id=object_id)
        assert (user.display_name, user.user_principal_name, user.is_global_admin) == (
            "New",
            "n@x.test",
            False,
        )


def test_global_administrators_are_sorted_by_display_name(store: Store) -> None:
    with store.writing() as session:
        for name in ("Zed", "Amy", "Kim"):
            add_user(
                session,
                tenant_id=TENANT,
                object_id=str(uuid.uuid4()),
                display_name=name,
                is_global_admin=True,
            )
        add_user(session, tenant_id=TENANT, object_id=str(uuid.uuid4()), display_name="Bob")
        add_user(
            session,
            tenant_id=OTHER_TENANT,
            object_id=str(uuid.uuid4()),
            display_name="Eve",
            is_global_admin=True,
        )
        session.commit()

    with store.reading() as session:
        assert [user.display_name for user in global_administrators(session, tenant_id=TENANT)] == [
            "Amy",
            "Kim",
            "Zed",
        ]


def test_has_users_only_for_a_tenant_with_directory_users(store: Store) -> None:
    tenant = str(uuid.uuid4())
    with store.reading() as session:
        assert not has_users(session, tenant_id=tenant)
    with store.writing() as session:
        add_user(session, tenant_id=tenant.upper(), object_id=str(uuid.uuid4()), display_name="A")
        session.commit()

    with store.reading() as session:
        assert has_users(session, tenant_id=tenant)
        assert not has_users(session, tenant_id=str(uuid.uuid4()))
