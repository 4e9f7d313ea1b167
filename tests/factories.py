"""Small factories shared by the tests: tenants with directory users, and tokens."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from industrydata.directory import add_user
from industrydata.identity import mint_token
from industrydata.runs import apply_flow_state, start_run
from industrydata.service import Service
from industrydata.states import FlowState, RunTrigger, Transition
from industrydata.store import Flow, Store


def new_guid() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class TenantUsers:
    """A tenant with two Global Administrators and one ordinary user."""

    tenant_id: str
    admin: str
    second_admin: str
    user: str


def make_tenant(service: Service) -> TenantUsers:
    tenant = TenantUsers(new_guid(), new_guid(), new_guid(), new_guid())
    with service.store.writing() as session:
        add_user(
            session,
            tenant_id=tenant.tenant_id,
            object_id=tenant.admin,
            display_name="Zoe Admin",
            user_principal_name="zoe@example.test",
            is_global_admin=True,
        )
        add_user(
            session,
            tenant_id=tenant.tenant_id,
            object_id=tenant.second_admin,
            display_name="Adam Admin",
            user_principal_name="adam@example.test",
            is_global_admin=True,
        )
        add_user(
            session,
            tenant_id=tenant.tenant_id,
            object_id=tenant.user,
            display_name="Una User",
            user_principal_name="una@example.test",
        )
        session.commit()
    return tenant


def stored_flow(
    store: Store,
    state: FlowState = Transition.ACCEPTED,
    *,
    now: datetime,
    tenant_id: str | None = None,
) -> Flow:
    """A flow written straight to the store in ``state`` (no invitation): enough for the
    run lifecycle, which reads only the flow's state."""
    flow = Flow(
        id=new_guid(),
        tenant_id=tenant_id or new_guid(),
        display_name="F",
        share_name=uuid.uuid4().hex,
        invitee_user_id=new_guid(),
        created_at=now,
    )
    apply_flow_state(flow, state, now)
    with store.writing() as session:
        session.add(flow)
        session.commit()
    return flow


def stored_run(store: Store, flow_id: str, *, now: datetime) -> str:
    """A run of the flow committed as running, as the API or the scheduler leaves it before
    dispatching it."""
    with store.writing() as session:
        run = start_run(
            session,
            flow=session.get(Flow, flow_id),
            format="sdsCsv",
            trigger=RunTrigger.ON_DEMAND,
            now=now,
        )
        session.commit()
        return run.id


def token(
    service: Service,
    tenant_id: str,
    object_id: str,
    *,
    scopes: list[str] | None = None,
    roles: list[str] | None = None,
    lifetime_seconds: int = 600,
) -> str:
    assert service.development_keys is not None
    return mint_token(
        service.development_keys,
        issuer=service.settings.token_issuer,
        audience=service.settings.token_audience,
        tenant_id=tenant_id,
        object_id=object_id,
        scopes=scopes,
        roles=roles,
        lifetime_seconds=lifetime_seconds,
    )


def auth(service: Service, tenant_id: str, object_id: str, **kwargs: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(service, tenant_id, object_id, **kwargs)}"}


def wait_for(predicate, *, timeout: float = 60.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
