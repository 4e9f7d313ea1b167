"""``…/dataShareOutgoingFlows/{id}/invitation``: get, accept, reject, resend (rows 10–13)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ... import sharing
from ...identity import Permission
from ...service import Service
from ...store import Invitation
from ..deps import (
    CurrentPrincipal,
    JsonBody,
    OptionalJsonBody,
    ServiceDep,
    require_json_accept,
    require_no_body,
)
from ..representations import invitation_json
from ._responses import entity_response

__all__ = ["router"]

router = APIRouter(
    prefix="/beta/industryData/dataShareOutgoingFlows/{flow_id}/invitation",
    tags=["invitation"],
    dependencies=[Depends(require_json_accept)],
)


def _context(flow_id: str) -> str:
    return f"industryData/dataShareOutgoingFlows('{flow_id}')/invitation/$entity"


def _json(invitation: Invitation, service: Service) -> dict[str, Any]:
    return invitation_json(
        invitation, deletion_vectors_default=service.settings.delta_deletion_vectors
    )


@router.get("", summary="Get the flow's invitation")
def get_invitation(
    flow_id: str, request: Request, principal: CurrentPrincipal, service: ServiceDep
) -> JSONResponse:
    principal.require_any(Permission.FLOW_READ, Permission.FLOW_READ_WRITE)
    invitation = sharing.get_invitation(service.store, principal=principal, flow_id=flow_id)
    return entity_response(request, _json(invitation, service), context=_context(flow_id))


@router.post("/accept", summary="Accept and map a destination (invitee only)")
def accept(
    flow_id: str,
    request: Request,
    body: JsonBody,
    principal: CurrentPrincipal,
    service: ServiceDep,
) -> JSONResponse:
    principal.require_any(Permission.FLOW_READ_WRITE)
    invitation, run = sharing.accept_invitation(
        service.store,
        principal=principal,
        flow_id=flow_id,
        request=sharing.parse_accept(body),
        settings=service.settings,
        sealer=service.sealer,
    )
    service.dispatch(run.id)
    return entity_response(request, _json(invitation, service), context=_context(flow_id))


@router.post("/reject", summary="Reject the invitation (invitee only)")
def reject(
    flow_id: str,
    request: Request,
    body: OptionalJsonBody,
    principal: CurrentPrincipal,
    service: ServiceDep,
) -> JSONResponse:
    principal.require_any(Permission.FLOW_READ_WRITE)
    require_no_body(body)
    invitation = sharing.reject_invitation(service.store, principal=principal, flow_id=flow_id)
    return entity_response(request, _json(invitation, service), context=_context(flow_id))


@router.post("/resend", summary="Revoke the invitation and issue a new one")
def resend(
    flow_id: str,
    request: Request,
    body: OptionalJsonBody,
    principal: CurrentPrincipal,
    service: ServiceDep,
) -> JSONResponse:
    principal.require_any(Permission.FLOW_READ_WRITE)
    require_no_body(body)
    invitation = sharing.resend_invitation(
        service.store, principal=principal, flow_id=flow_id, settings=service.settings
    )
    return entity_response(request, _json(invitation, service), context=_context(flow_id))
