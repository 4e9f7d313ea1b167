"""The development identity provider's discovery document and JWKS."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ...errors import NotFound
from ..deps import ServiceDep
from ..public_url import public_base_url

__all__ = ["router"]

router = APIRouter(prefix="/.well-known", tags=["identity"])


@router.get("/jwks.json", summary="Signing keys of the development identity provider")
def jwks(service: ServiceDep) -> JSONResponse:
    if service.development_keys is None:
        raise NotFound("This service validates tokens of an external issuer.")
    return JSONResponse(service.development_keys.jwks())


@router.get("/openid-configuration", summary="OpenID discovery of the development provider")
def openid_configuration(request: Request, service: ServiceDep) -> JSONResponse:
    if service.development_keys is None:
        raise NotFound("This service validates tokens of an external issuer.")
    return JSONResponse(
        {
            "issuer": service.settings.token_issuer,
            "jwks_uri": public_base_url(request) + "/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["RS256"],
        }
    )
