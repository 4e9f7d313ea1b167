"""``/beta/industryData/dataShareOutgoingFlows``: the flow entity set (contract §4 rows 1–6)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from ... import sharing
from ...identity import Permission
from ...service import Service
from ...store import Flow
from ..odata import project
from ..deps import CurrentPrincipal, JsonBody, ServiceDep, require_json_accept
from ..representations import flow_json, identity_json
from ._collections import FLOWS, collection_response, parse_collection, parse_entity
from ._responses import context_url, entity_response, service_root

__all__ = ["router"]

router = APIRouter(
    prefix="/beta/industryData/dataShareOutgoingFlows",
    tags=["dataShareOutgoingFlows"],
    dependencies=[Depends(require_json_accept)],
)

FLOW_SET_CONTEXT = "industryData/dataShareOutgoingFlows"
FLOW_CONTEXT = FLOW_SET_CONTEXT + "/$entity"


def _etag_header(etag: str) -> dict[str, str]:
    return {"ETag": f'"{etag}"'}


def _json(flow: Flow, service: Service, expand: Iterable[str] = ()) -> dict[str, Any]:
    return flow_json(
        flow,
        deletion_vectors_default=service.settings.delta_deletion_vectors,
        expand=frozenset(expand),
    )


@router.get("", summary="List flows")
def list_flows(request: Request, principal: CurrentPrincipal, service: ServiceDep) -> JSONResponse:
    principal.require_any(Permission.FLOW_READ, Permission.FLOW_READ_WRITE)
    options = parse_collection(request, FLOWS)
    flows = sharing.list_flows(
        service.store, principal=principal, with_runs="runs" in options.expand
    )
    items = [_json(flow, service, options.expand) for flow in flows]
    return collection_response(request, items, options, context=FLOW_SET_CONTEXT)


@router.post("", status_code=201, summary="Create a flow")
def create_flow(
    request: Request, body: JsonBody, principal: CurrentPrincipal, service: ServiceDep
) -> JSONResponse:
    principal.require_any(Permission.FLOW_READ_WRITE)
    flow = sharing.create_flow(
        service.store,
        principal=principal,
        request=sharing.parse_flow_create(body),
        settings=service.settings,
    )
    location = f"{service_root(request)}/industryData/dataShareOutgoingFlows/{flow.id}"
    return entity_response(
        request,
        _json(flow, service),
        context=FLOW_CONTEXT,
        status=201,
        headers={"Location": location, **_etag_header(flow.etag)},
    )


@router.get("/getPotentialDataShareInvitees", summary="Potential invitees")
@router.get("/getPotentialDataShareInvitees()", include_in_schema=False)
def potential_invitees(
    request: Request, principal: CurrentPrincipal, service: ServiceDep
) -> JSONResponse:
    principal.require_any(Permission.FLOW_READ, Permission.FLOW_READ_WRITE)
    users = sharing.potential_invitees(service.store, principal=principal)
    return JSONResponse(
        {
            "@odata.context": context_url(request, "Collection(microsoft.graph.identity)"),
            "value": [identity_json(user) for user in users],
        }
    )


@router.get("/{flow_id}", summary="Get a flow")
def get_flow(
    flow_id: str, request: Request, principal: CurrentPrincipal, service: ServiceDep
) -> JSONResponse:
    principal.require_any(Permission.FLOW_READ, Permission.FLOW_READ_WRITE)
    options = parse_entity(request, FLOWS)
    flow = sharing.get_flow(
        service.store, principal=principal, flow_id=flow_id, with_runs="runs" in options.expand
    )
    body = project(_json(flow, service, options.expand), options)
    return entity_response(request, body, context=FLOW_CONTEXT, headers=_etag_header(flow.etag))


@router.patch("/{flow_id}", summary="Update a flow")
def update_flow(
    flow_id: str,
    request: Request,
    body: JsonBody,
    principal: CurrentPrincipal,
    service: ServiceDep,
) -> Response:
    principal.require_any(Permission.FLOW_READ_WRITE)
    flow = sharing.update_flow(
        service.store,
        principal=principal,
        flow_id=flow_id,
        request=sharing.parse_flow_update(body),
        if_match=request.headers.get("if-match"),
        settings=service.settings,
    )
    headers = _etag_header(flow.etag)
    if "return=minimal" in request.headers.get("prefer", "").replace(" ", "").lower():
        return Response(
            status_code=204, headers={**headers, "Preference-Applied": "return=minimal"}
        )
    return entity_response(request, _json(flow, service), context=FLOW_CONTEXT, headers=headers)


@router.delete("/{flow_id}", status_code=204, summary="Delete a flow")
def delete_flow(
    flow_id: str, request: Request, principal: CurrentPrincipal, service: ServiceDep
) -> Response:
    principal.require_any(Permission.FLOW_READ_WRITE)
    sharing.delete_flow(
        service.store,
        principal=principal,
        flow_id=flow_id,
        if_match=request.headers.get("if-match"),
    )
    return Response(status_code=204)
