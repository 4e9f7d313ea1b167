"""``/beta/$metadata``: the CSDL document (row 15) and the service document."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ...errors import NotAcceptable
from ..metadata import metadata_xml
from ._responses import service_root

__all__ = ["router"]

router = APIRouter(prefix="/beta", tags=["metadata"])


@cache
def _document() -> bytes:
    return metadata_xml().encode()


@router.get("/$metadata", summary="CSDL metadata", response_class=Response)
def get_metadata(request: Request) -> Response:
    accept = request.headers.get("accept", "*/*").lower()
    if not any(kind in accept for kind in ("*/*", "application/*", "xml")):
        raise NotAcceptable("$metadata is served as application/xml.")
    return Response(_document(), media_type="application/xml")


@router.get("", summary="Service document", include_in_schema=False)
def service_document(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "@odata.context": f"{service_root(request)}/$metadata",
            "value": [{"name": "industryData", "kind": "Singleton", "url": "industryData"}],
        }
    )
