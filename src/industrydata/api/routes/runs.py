"""``…/dataShareOutgoingFlows/{id}/runs``: list, get and start runs (contract §4 rows 7–9), and
cancel a running one (an extension, docs/api.md)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ... import sharing
from ...identity import Permission
from ..odata import project
from ..deps import (
    CurrentPrincipal,
    OptionalJsonBody,
    ServiceDep,
    require_json_accept,
    require_no_body,
)
from ..representations import run_json
from ._collections import RUNS, collection_response, parse_collection, parse_entity
from ._responses import entity_response, service_root

__all__ = ["router"]

router = APIRouter(
    prefix="/beta/industryData/dataShareOutgoingFlows/{flow_id}/runs",
    tags=["runs"],
    dependencies=[Depends(require_json_accept)],
)

_READ = (Permission.FLOW_READ, Permission.FLOW_READ_WRITE, Permission.RUN_READ)


def _context(flow_id: str, entity: bool) -> str:
    fragment = f"industryData/dataShareOutgoingFlows('{flow_id}')/runs"
    return fragment + "/$entity" if entity else fragment


@router.get("", summary="List runs")
def list_runs(
    flow_id: str, request: Request, principal: CurrentPrincipal, service: ServiceDep
) -> JSONResponse:
    principal.require_any(*_READ)
    options = parse_collection(request, RUNS)
    runs = sharing.list_runs(service.store, principal=principal, flow_id=flow_id)
    items = [run_json(run) for run in runs]
    return collection_response(request, items, options, context=_context(flow_id, False))


@router.post("", status_code=201, summary="Start a run now")
def add_run(
    flow_id: str,
    request: Request,
    body: OptionalJsonBody,
    principal: CurrentPrincipal,
    service: ServiceDep,
) -> JSONResponse:
    principal.require_any(Permission.FLOW_READ_WRITE, Permission.RUN_START)
    run = sharing.request_run(
        service.store,
        principal=principal,
        flow_id=flow_id,
        request=sharing.parse_run_create(body),
        settings=service.settings,
    )
    service.dispatch(run.id)
    location = (
        f"{service_root(request)}/industryData/dataShareOutgoingFlows/{flow_id}/runs/{run.id}"
    )
    return entity_response(
        request,
        run_json(run),
        context=_context(flow_id, True),
        status=201,
        headers={"Location": location},
    )


@router.get("/{run_id}", summary="Get a run")
def get_run(
    flow_id: str, run_id: str, request: Request, principal: CurrentPrincipal, service: ServiceDep
) -> JSONResponse:
    principal.require_any(*_READ)
    options = parse_entity(request, RUNS)
    run = sharing.get_run(service.store, principal=principal, flow_id=flow_id, run_id=run_id)
    return entity_response(
        request, project(run_json(run), options), context=_context(flow_id, True)
    )


@router.post("/{run_id}/cancel", summary="Cancel a running run (extension)")
def cancel_run(
    flow_id: str,
    run_id: str,
    request: Request,
    body: OptionalJsonBody,
    principal: CurrentPrincipal,
    service: ServiceDep,
) -> JSONResponse:
    principal.require_any(Permission.FLOW_READ_WRITE, Permission.RUN_START)
    require_no_body(body)
    run = sharing.cancel_run(service.store, principal=principal, flow_id=flow_id, run_id=run_id)
    service.cancel_run(run.id)
    return entity_response(request, run_json(run), context=_context(flow_id, True))
