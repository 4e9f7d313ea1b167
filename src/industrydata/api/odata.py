"""OData query options on collections: validate them up front, then filter, sort and page.

The collections the API serves are small per tenant (the flows of a tenant, the runs of a flow),
so the options are evaluated in Python over the Graph JSON dicts the service produced, after it
fetched the tenant's items. ``$filter`` is compiled into a predicate over dicts by
``_odata_filter``. Every property name is checked against the entity set's declaration
(``EntitySetOptions``, in ``_odata_types``), so an unknown property or a malformed expression
fails in ``parse_query``, before any work (400 ``invalidFilter``).

Order of evaluation: filter, sort, page. Paging is by key, not by offset: the opaque
``$skiptoken`` of an ``@odata.nextLink`` carries the original options and the sort key of the
last item served, so following it continues the same query even when items were added or
removed in between. The sort always ends with ``id``, which makes the order total.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import operator
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cmp_to_key
from typing import Any

from industrydata.errors import BadRequest, InvalidFilter

from .bounded_json import parse_json
from ._odata_filter import Predicate, compile_filter
from ._odata_types import (
    EntitySetOptions,
    EnumType,
    PropertyType,
    SortKey,
    lookup,
    parse_orderby,
    typed,
)

__all__ = [
    "MAX_TOP",
    "CollectionPage",
    "EntitySetOptions",
    "EnumType",
    "PropertyType",
    "QueryOptions",
    "apply_query",
    "parse_query",
    "project",
]

MAX_TOP = 999
"""Largest ``$top`` a client may ask for."""

_OPTIONS = frozenset({"select", "filter", "orderby", "top", "skip", "count", "expand", "skiptoken"})
_ENTITY_OPTIONS = frozenset({"select", "expand"})
_NON_NEGATIVE = re.compile(r"\d{1,18}")
_TOKEN_PERSON = b"odata-skiptoken"
_DIGEST_SIZE = 8


@dataclass(frozen=True)
class _Resume:
    last_key: tuple[Any, ...]
    served: int


@dataclass(frozen=True)
class QueryOptions:
    """The validated query options of one request; ``expand`` tells the route what to fetch."""

    select: tuple[str, ...] | None
    expand: tuple[str, ...]
    top: int | None
    skip: int
    count: bool
    _entity_set: EntitySetOptions = field(repr=False)
    _predicate: Predicate | None = field(repr=False)
    _order: tuple[SortKey, ...] = field(repr=False)
    _raw: Mapping[str, str] = field(repr=False)
    _resume: _Resume | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CollectionPage:
    """One page of a collection: the projected items, ``@odata.count`` and ``@odata.nextLink``."""

    items: list[dict[str, Any]]
    count: int | None
    next_link: str | None

    def body(self, context: str) -> dict[str, Any]:
        """The Graph collection response body, annotations included only when they apply."""
        result: dict[str, Any] = {"@odata.context": context}
        if self.count is not None:
            result["@odata.count"] = self.count
        if self.next_link is not None:
            result["@odata.nextLink"] = self.next_link
        result["value"] = self.items
        return result


def parse_query(
    params: Mapping[str, str] | Iterable[tuple[str, str]],
    entity_set: EntitySetOptions,
    *,
    collection: bool = True,
) -> QueryOptions:
    """Validate the query options of a request, raising before any item is fetched.

    Args:
        params: the query string as name/value pairs; pass all of them (Starlette's
            ``request.query_params.multi_items()``) so that a repeated option is caught.
            Names are case-insensitive and their ``$`` is optional; names without ``$`` that are
            not OData options are the route's own and are ignored.
        entity_set: the declaration of the collection queried.
        collection: False for a single entity, which accepts only ``$select`` and ``$expand``.

    Raises:
        InvalidFilter: an expression is malformed or names an unknown property.
        BadRequest: an unknown ``$`` option, a repeated option, a bad ``$top``, ``$skip``,
            ``$count`` or ``$skiptoken``, or an option a single entity does not take.
    """
    raw = _normalise(params)
    if not collection:
        refused = sorted(raw.keys() - _ENTITY_OPTIONS)
        if refused:
            raise BadRequest(f"Query option ${refused[0]} applies to collections only.")
        return _build(raw, entity_set)
    if "skiptoken" in raw:
        if len(raw) > 1:
            raise BadRequest(
                "$skiptoken continues a query by itself: follow @odata.nextLink unchanged.",
                target="$skiptoken",
            )
        options, resume = _decode_skiptoken(raw["skiptoken"])
        query = _build(options, entity_set)
        if len(resume.last_key) != len(query._order):
            raise BadRequest("The $skiptoken is not valid.", target="$skiptoken")
        return replace(query, _resume=resume)
    return _build(raw, entity_set)


def apply_query(
    items: list[dict[str, Any]], options: QueryOptions, *, page_size: int, base_url: str
) -> CollectionPage:
    """Filter, sort and page ``items``, then project the page with ``$select``/``$expand``.

    Args:
        items: every item of the collection, as Graph JSON dicts.
        options: from ``parse_query``.
        page_size: the server page size; ``$top`` above it is served over several pages.
        base_url: the collection's URL without query string; ``@odata.nextLink`` extends it.
    """
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    predicate = options._predicate
    matched = items if predicate is None else [item for item in items if predicate(item)]
    sort_key = _sort_key_function(options._order)
    keyed = sorted(
        ((sort_key(_raw_key(item, options._order)), item) for item in matched),
        key=operator.itemgetter(0),
    )
    if options._resume is None:
        start, served = min(options.skip, len(keyed)), 0
    else:
        after = sort_key(options._resume.last_key)
        start = bisect_right(keyed, after, key=operator.itemgetter(0))
        served = options._resume.served
    limit = page_size if options.top is None else max(0, min(page_size, options.top - served))
    page = [item for _, item in keyed[start : start + limit]]
    served += len(page)
    more = bool(page) and start + len(page) < len(keyed)
    if options.top is not None and served >= options.top:
        more = False
    next_link = None
    if more:
        token = _encode_skiptoken(options._raw, _raw_key(page[-1], options._order), served)
        next_link = f"{base_url}{'&' if '?' in base_url else '?'}$skiptoken={token}"
    return CollectionPage(
        items=[project(item, options) for item in page],
        count=len(matched) if options.count else None,
        next_link=next_link,
    )


def project(item: Mapping[str, Any], options: QueryOptions) -> dict[str, Any]:
    """Apply ``$select`` and ``$expand`` to one entity.

    Keeps ``id`` and every ``@``-annotation; keeps a navigation property (and its annotations)
    only when expanded, so routes may include navigation data unconditionally.
    """
    navigation = options._entity_set.expandable
    expanded = set(options.expand)
    selected = None if options.select is None else {*options.select, "id"}

    def kept(key: str) -> bool:
        if key.startswith("@"):
            return True
        base = key.split("@", 1)[0]
        if base in navigation:
            return base in expanded
        return selected is None or base in selected

    return {key: value for key, value in item.items() if kept(key)}


def _normalise(params: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    pairs = params.items() if isinstance(params, Mapping) else params
    options: dict[str, str] = {}
    for name, value in pairs:
        key = (name[1:] if name.startswith("$") else name).lower()
        if key not in _OPTIONS:
            if name.startswith("$"):
                raise BadRequest(f"Query option '{name[:64]}' is not supported.")
            continue
        if key in options:
            raise BadRequest(f"Query option ${key} is given more than once.", target=f"${key}")
        options[key] = value
    return options


def _build(raw: Mapping[str, str], entity_set: EntitySetOptions) -> QueryOptions:
    user_order = parse_orderby(raw["orderby"], entity_set) if "orderby" in raw else ()
    default_order = (
        parse_orderby(entity_set.default_order, entity_set) if entity_set.default_order else ()
    )
    return QueryOptions(
        select=_parse_select(raw["select"], entity_set) if "select" in raw else None,
        expand=_parse_expand(raw["expand"], entity_set) if "expand" in raw else (),
        top=_parse_top(raw["top"]) if "top" in raw else None,
        skip=_parse_count_of("skip", raw["skip"]) if "skip" in raw else 0,
        count=_parse_bool_count(raw["count"]) if "count" in raw else False,
        _entity_set=entity_set,
        _predicate=compile_filter(raw["filter"], entity_set) if "filter" in raw else None,
        _order=_total_order(user_order + default_order, entity_set),
        _raw=dict(raw),
    )


def _parse_top(text: str) -> int:
    top = _parse_count_of("top", text)
    if top > MAX_TOP:
        raise BadRequest(f"$top must be at most {MAX_TOP}.", target="$top")
    return top


def _parse_count_of(option: str, text: str) -> int:
    if not _NON_NEGATIVE.fullmatch(text.strip()):
        raise BadRequest(f"${option} must be a non-negative integer.", target=f"${option}")
    return int(text)


def _parse_bool_count(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise BadRequest("$count must be true or false.", target="$count")
    return value == "true"


def _parse_select(text: str, entity_set: EntitySetOptions) -> tuple[str, ...] | None:
    names = [part.strip() for part in text.split(",")]
    if "*" in names:
        return None
    selected: list[str] = []
    for name in names:
        if not name or "/" in name:
            raise InvalidFilter(f"'{name}' cannot be selected.", target="$select")
        path, _ = entity_set.resolve(name, "$select")
        if path not in selected:
            selected.append(path)
    return tuple(selected)


def _parse_expand(text: str, entity_set: EntitySetOptions) -> tuple[str, ...]:
    names = [part.strip() for part in text.split(",")]
    if "*" in names:
        return tuple(sorted(entity_set.expandable))
    expanded: list[str] = []
    for name in names:
        if "(" in name:
            raise InvalidFilter("Options inside $expand are not supported.", target="$expand")
        navigation = entity_set.resolve_navigation(name)
        if navigation not in expanded:
            expanded.append(navigation)
    return tuple(expanded)


def _total_order(keys: tuple[SortKey, ...], entity_set: EntitySetOptions) -> tuple[SortKey, ...]:
    """Drop repeated paths and end with ``id`` so that every two items compare unequal."""
    seen: set[tuple[str, ...]] = set()
    order: list[SortKey] = []
    for key in (*keys, SortKey(("id",), entity_set.properties.get("id", "string"), False)):
        if key.path not in seen:
            seen.add(key.path)
            order.append(key)
    return tuple(order)


def _raw_key(item: Mapping[str, Any], order: tuple[SortKey, ...]) -> tuple[Any, ...]:
    return tuple(lookup(item, key.path) for key in order)


def _sort_key_function(order: tuple[SortKey, ...]) -> Callable[[tuple[Any, ...]], Any]:
    """Key for raw sort values: typed per property; nulls first ascending, last descending."""
    make_key = cmp_to_key(_compare_rows)
    kinds = [key.kind for key in order]
    directions = [key.descending for key in order]

    def sort_key(raw: tuple[Any, ...]) -> Any:
        values = [typed(kind, value) for kind, value in zip(kinds, raw, strict=True)]
        return make_key(list(zip(values, directions, strict=True)))

    return sort_key


def _compare_rows(left: list[tuple[Any, bool]], right: list[tuple[Any, bool]]) -> int:
    for (a, descending), (b, _) in zip(left, right, strict=True):
        if a == b:
            continue
        if a is None:
            result = -1
        elif b is None:
            result = 1
        else:
            try:
                result = -1 if a < b else 1
            except TypeError:
                result = -1 if (type(a).__name__, repr(a)) < (type(b).__name__, repr(b)) else 1
        return -result if descending else result
    return 0


def _encode_skiptoken(raw: Mapping[str, str], last_key: tuple[Any, ...], served: int) -> str:
    payload = json.dumps(
        {"q": dict(raw), "k": list(last_key), "n": served}, separators=(",", ":"), default=str
    ).encode()
    token = _digest(payload) + payload
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def _decode_skiptoken(token: str) -> tuple[dict[str, str], _Resume]:
    """Check and unpack a skiptoken.

    The digest detects damaged or edited tokens; it is not a secret. Whatever a token holds is
    validated again like a client's own options, so a forged one can ask nothing a plain query
    could not.
    """
    invalid = BadRequest("The $skiptoken is not valid.", target="$skiptoken")
    try:
        data = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid from exc
    digest, payload = data[:_DIGEST_SIZE], data[_DIGEST_SIZE:]
    if len(digest) < _DIGEST_SIZE or not hmac.compare_digest(digest, _digest(payload)):
        raise invalid
    try:
        content = parse_json(payload)
    except ValueError as exc:
        raise invalid from exc
    if not isinstance(content, dict):
        raise invalid
    options, last_key, served = content.get("q"), content.get("k"), content.get("n")
    if (
        not isinstance(options, dict)
        or not all(name in _OPTIONS - {"skiptoken"} for name in options)
        or not all(isinstance(value, str) for value in options.values())
        or not isinstance(last_key, list)
        or not isinstance(served, int)
        or isinstance(served, bool)
        or served < 0
    ):
        raise invalid
    return options, _Resume(tuple(last_key), served)


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_DIGEST_SIZE, person=_TOKEN_PERSON).digest()
