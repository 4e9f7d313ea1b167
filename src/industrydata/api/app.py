"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from ..config import Settings
from ..observability import ReadinessCheck
from ..service import Service
from .errors import install_error_handlers
from .request_head import RequestHeadLimitMiddleware
from .request_ids import RequestIdMiddleware
from .routing import ResourcePathMiddleware
from .routes import flows, health, hub, identity, invitations, metadata, runs

__all__ = ["create_app", "create_app_from_environment"]


def create_app(settings: Settings | None = None, *, service: Service | None = None) -> FastAPI:
    """The API over ``service`` (built from ``settings`` when not given), started with the app."""
    if service is None:
        service = Service(settings or Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="industrydata",
        version=__version__,
        summary="Microsoft Graph industryData dataShareOutgoingFlow, as open software.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.service = service
    app.state.readiness = ReadinessCheck(service.store)
    install_error_handlers(app)
    modules = (hub, flows, runs, invitations, metadata, identity, health)
    routers = [module.router for module in modules]
    for router in routers:
        app.include_router(router)
    routes = [*app.router.routes, *(route for router in routers for route in router.routes)]
    app.add_middleware(ResourcePathMiddleware, routes=routes)
    app.add_middleware(
        RequestHeadLimitMiddleware, max_bytes=service.settings.max_request_head_bytes
    )
    app.add_middleware(RequestIdMiddleware)
    return app


def create_app_from_environment() -> FastAPI:
    """The app of one of several API processes (``serve --workers N``): settings from the
    ``INDUSTRYDATA_*`` environment, which the supervisor passes on."""
    return create_app(Settings())
