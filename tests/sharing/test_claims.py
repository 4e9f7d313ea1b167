"""Flows accepted before destination claims existed get their claims when the service starts,
oldest acceptance first (the credential is unsealed for an ``az://`` endpoint); a younger flow
whose destination overlaps an older one's gets none, and its runs fail with
``destinationInUse`` instead of writing into the older flow's folder."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete

from industrydata.config import Settings
from industrydata.runs import apply_flow_state, execute_run, start_run
from industrydata.service import Service
from industrydata.states import RunStatus, RunTrigger, Transition
from industrydata.store import DestinationClaim, Flow, Invitation, Run, claimed_destination
from tests.factories import make_tenant

ACCEPTED = datetime(2026, 11, 1, 6, 0)
AZURE_ORIGIN = "http://127.0.0.1:1"
CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    f"AccountKey={uuid.uuid4().hex};BlobEndpoint={AZURE_ORIGIN}/devstoreaccount1"
)


def _accepted_before_claims(
    service: Service, url: str, accepted_at: datetime, credential: dict[str, str] | None = None
) -> str:
    """A flow as a store of the previous revision holds it: accepted, without a claim."""
    tenant = make_tenant(service)
    flow = Flow(
        id=str(uuid.uuid4()),
        tenant_id=tenant.tenant_id,
        display_name="F",
        share_name="s",
        invitee_user_id=tenant.second_admin,
        created_at=accepted_at,
    )
    apply_flow_state(flow, Transition.ACCEPTED, accepted_at)
    flow.invitations.append(
        Invitation(
            id=str(uuid.uuid4()),
            tenant_id=flow.tenant_id,
            invitee_user_id=flow.invitee_user_id,
            status="accepted",
            created_at=accepted_at,
            expires_at=accepted_at,
            responded_at=accepted_at,
            destination_url=url,
            destination_format="sdsCsv",
            credential_sealed=service.sealer.seal(credential) if credential else None,
            schedule_frequency="none",
        )
    )
    with service.store.writing() as session:
        session.add(flow)
        session.commit()
    return flow.id


def _claim_of(service: Service, flow_id: str) -> tuple[str, str] | None:
    with service.store.reading() as session:
        return claimed_destination(session, flow_id)


def test_start_claims_older_flows_first_and_younger_overlapping_runs_fail(
    settings: Settings,
) -> None:
    settings.allowed_storage_endpoints = [AZURE_ORIGIN]
    service = Service(settings)
    lake = settings.lake_dir
    younger = _accepted_before_claims(
        service, (lake / "district").as_uri(), ACCEPTED + timedelta(days=1)
    )
    older = _accepted_before_claims(service, (lake / "district" / "east").as_uri(), ACCEPTED)
    blob = _accepted_before_claims(
        service, "az://roster/lake", ACCEPTED, {"connectionString": CONNECTION_STRING}
    )
    with service.store.writing() as session:
        session.execute(delete(DestinationClaim))
        session.commit()
    service.close()

    restarted = Service(settings)
    try:
        assert _claim_of(restarted, older) == ("file", str(lake / "district" / "east")[1:])
        assert _claim_of(restarted, younger) is None
        assert _claim_of(restarted, blob) == (f"{AZURE_ORIGIN}/devstoreaccount1/roster", "lake")
        with restarted.store.writing() as session:
            run = start_run(
                session,
                flow=session.get(Flow, younger),
                format="sdsCsv",
                trigger=RunTrigger.ON_DEMAND,
                now=ACCEPTED + timedelta(days=2),
            )
            session.commit()
            run_id = run.id

        status = execute_run(
            run_id, store=restarted.store, settings=settings, sealer=restarted.sealer
        )

        assert status is RunStatus.FAILED
        with restarted.store.reading() as session:
            assert session.get(Run, run_id).blocking_error["code"] == "destinationInUse"
        assert not (lake / "district" / "roster").exists()
    finally:
        restarted.close()
