"""The queryable entity sets (what $filter/$orderby/$select/$expand may name) and the
collection response built from them."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from ..metadata import entity_set_options
from ..odata import EntitySetOptions, QueryOptions, apply_query, parse_query
from ..public_url import public_url_of_path
from ._responses import context_url

__all__ = ["FLOWS", "RUNS", "collection_response", "parse_collection", "parse_entity"]

FLOWS = entity_set_options("dataShareOutgoingFlow", default_order="displayName asc")
RUNS = entity_set_options("outgoingFlowRun", default_order="startDateTime asc")


def parse_collection(request: Request, entity_set: EntitySetOptions) -> QueryOptions:
    return parse_query(request.query_params.multi_items(), entity_set)


def parse_entity(request: Request, entity_set: EntitySetOptions) -> QueryOptions:
    """$select/$expand of a single-entity GET."""
    return parse_query(request.query_params.multi_items(), entity_set, collection=False)


def collection_response(
    request: Request,
    items: list[dict[str, Any]],
    options: QueryOptions,
    *,
    context: str,
) -> JSONResponse:
    """Filter, sort and page ``items`` per the options; the Graph collection body."""
    page = apply_query(
        items,
        options,
        page_size=request.app.state.service.settings.page_size,
        base_url=public_url_of_path(request),
    )
    return JSONResponse(page.body(context_url(request, context)))
