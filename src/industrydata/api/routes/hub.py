"""``/beta/industryData``: the hub singleton with canonical-store statistics (row 14)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ...canonical import count_rows
from ...identity import Permission
from ..deps import CurrentPrincipal, ServiceDep, require_json_accept
from ._responses import entity_response

__all__ = ["router"]

router = APIRouter(prefix="/beta", tags=["hub"], dependencies=[Depends(require_json_accept)])

HUB_TYPE = "#microsoft.graph.industryData.industryDataRoot"


@router.get("/industryData", summary="The industryData hub")
def get_hub(request: Request, principal: CurrentPrincipal, service: ServiceDep) -> JSONResponse:
    principal.require_any(Permission.FLOW_READ, Permission.FLOW_READ_WRITE, Permission.RUN_READ)
    statistics = count_rows(service.store.engine, principal.tenant_id)
    return entity_response(
        request,
        {"@odata.type": HUB_TYPE, "statistics": statistics},
        context="industryData",
    )
