"""``/healthz``, ``/readyz`` and ``/metrics`` of an API process (docs/operations.md).

Outside ``/beta`` and without a token: they tell whether the process and its store answer,
and counts over every tenant, never a tenant's id or data.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ...observability import ReadinessCheck, liveness, render_metrics
from ..deps import ServiceDep
from ..errors import error_response

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> JSONResponse:
    return JSONResponse(liveness("api"), headers={"Cache-Control": "no-store"})


@router.get("/readyz", summary="Readiness: the store answers and is migrated")
def readyz(request: Request) -> JSONResponse:
    check: ReadinessCheck = request.app.state.readiness
    readiness = check.check()
    if not readiness:
        return error_response(
            request,
            status=503,
            code="serviceUnavailable",
            message=readiness.reason or "The service is not ready.",
            headers={"Cache-Control": "no-store"},
        )
    return JSONResponse({"status": "ready"}, headers={"Cache-Control": "no-store"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(service: ServiceDep) -> Response:
    body, content_type = render_metrics(service.store, service.queue_depth)
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})

