"""OData query options on collections: validate them up front, then filter, sort and page.

The collections the API serves are small per tenant (the flows of a tenant, the runs of a flow),
so the options are evaluated in Python over the Graph JSON dicts the service produced, after it
fetched the tenant's items. ``$filter`` is parsed by the ``odata-query`` grammar and compiled by a
small AST visitor into a predicate over dicts. Every property name is checked against the entity
set's declaration (``EntitySetOptions``), so an unknown property or a malformed expression fails
in ``parse_query``, before any work (400 ``invalidFilter``).

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
from datetime import datetime, timezone
from functools import cached_property, cmp_to_key
from typing import Any
from uuid import UUID

from odata_query import ast
from odata_query.exceptions import FunctionCallException, ODataException
from odata_query.grammar import ODataLexer, ODataParser
from odata_query.visitor import NodeVisitor
from sly.lex import Token

from industrydata.errors import BadRequest, InvalidFilter

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

_PRIMITIVES = frozenset({"string", "guid", "datetime", "int", "double", "boolean"})
_STRUCTURED = frozenset({"complex", "collection(complex)"})
_COLLECTION = re.compile(r"collection\((\w+)\)")
_OPTIONS = frozenset({"select", "filter", "orderby", "top", "skip", "count", "expand", "skiptoken"})
_ENTITY_OPTIONS = frozenset({"select", "expand"})
_ORDER_ITEM = re.compile(r"\s*([A-Za-z_]\w*(?:/[A-Za-z_]\w*)*)(?:\s+(asc|desc))?\s*", re.I)
_NON_NEGATIVE = re.compile(r"\d{1,18}")
_TOKEN_PERSON = b"odata-skiptoken"
_DIGEST_SIZE = 8


@dataclass(frozen=True)
class EnumType:
    """An enum's qualified name and members; the declaration order is the members' value."""

    name: str
    members: tuple[str, ...]


PropertyType = str | EnumType
"""``string``, ``guid``, ``datetime``, ``int``, ``double``, ``boolean``, ``complex``,
``collection(<primitive>)``, ``collection(complex)``, or an ``EnumType``."""


@dataclass(frozen=True)
class EntitySetOptions:
    """What a collection lets clients filter, sort, select and expand; the rest is unknown.

    ``properties`` maps property paths (``displayName``, ``statistics/rowsWritten``) to their
    types; top-level ones are selectable, primitive and enum ones filterable and sortable.
    ``expandable`` names the navigation properties; ``default_order`` is in ``$orderby`` syntax.
    """

    properties: Mapping[str, PropertyType]
    expandable: frozenset[str] = frozenset()
    default_order: str = ""

    def __post_init__(self) -> None:
        for path, kind in self.properties.items():
            if not _is_known_type(kind):
                raise ValueError(f"property {path!r} has an unknown type {kind!r}")
        object.__setattr__(self, "expandable", frozenset(self.expandable))
        if self.default_order:
            _parse_orderby(self.default_order, self)

    @cached_property
    def _paths(self) -> dict[str, str]:
        return {path.lower(): path for path in self.properties}

    @cached_property
    def _navigation(self) -> dict[str, str]:
        return {name.lower(): name for name in self.expandable}

    def _resolve(self, path: str, option: str) -> tuple[str, PropertyType]:
        canonical = self._paths.get(path.lower())
        if canonical is None:
            raise InvalidFilter(f"Could not find a property named '{path}'.", target=option)
        return canonical, self.properties[canonical]


@dataclass(frozen=True)
class _SortKey:
    path: tuple[str, ...]
    kind: PropertyType
    descending: bool


@dataclass(frozen=True)
class _Resume:
    last_key: tuple[Any, ...]
    served: int


_Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class QueryOptions:
    """The validated query options of one request; ``expand`` tells the route what to fetch."""

    select: tuple[str, ...] | None
    expand: tuple[str, ...]
    top: int | None
    skip: int
    count: bool
    _entity_set: EntitySetOptions = field(repr=False)
    _predicate: _Predicate | None = field(repr=False)
    _order: tuple[_SortKey, ...] = field(repr=False)
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
    user_order = _parse_orderby(raw["orderby"], entity_set) if "orderby" in raw else ()
    default_order = (
        _parse_orderby(entity_set.default_order, entity_set) if entity_set.default_order else ()
    )
    return QueryOptions(
        select=_parse_select(raw["select"], entity_set) if "select" in raw else None,
        expand=_parse_expand(raw["expand"], entity_set) if "expand" in raw else (),
        top=_parse_top(raw["top"]) if "top" in raw else None,
        skip=_parse_count_of("skip", raw["skip"]) if "skip" in raw else 0,
        count=_parse_bool_count(raw["count"]) if "count" in raw else False,
        _entity_set=entity_set,
        _predicate=_parse_filter(raw["filter"], entity_set) if "filter" in raw else None,
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
        path, _ = entity_set._resolve(name, "$select")
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
        navigation = entity_set._navigation.get(name.lower())
        if navigation is None:
            raise InvalidFilter(
                f"Could not find a navigation property named '{name}'.", target="$expand"
            )
        if navigation not in expanded:
            expanded.append(navigation)
    return tuple(expanded)


def _parse_orderby(text: str, entity_set: EntitySetOptions) -> tuple[_SortKey, ...]:
    keys: list[_SortKey] = []
    for part in text.split(","):
        match = _ORDER_ITEM.fullmatch(part)
        if match is None:
            raise InvalidFilter(
                f"'{part.strip()}' is not a valid $orderby item.", target="$orderby"
            )
        path, kind = entity_set._resolve(match.group(1), "$orderby")
        if not _is_comparable(kind):
            raise InvalidFilter(f"Cannot sort by '{path}'.", target="$orderby")
        direction = (match.group(2) or "asc").lower()
        keys.append(_SortKey(tuple(path.split("/")), kind, direction == "desc"))
    return tuple(keys)


def _total_order(keys: tuple[_SortKey, ...], entity_set: EntitySetOptions) -> tuple[_SortKey, ...]:
    """Drop repeated paths and end with ``id`` so that every two items compare unequal."""
    seen: set[tuple[str, ...]] = set()
    order: list[_SortKey] = []
    for key in (*keys, _SortKey(("id",), entity_set.properties.get("id", "string"), False)):
        if key.path not in seen:
            seen.add(key.path)
            order.append(key)
    return tuple(order)


def _raw_key(item: Mapping[str, Any], order: tuple[_SortKey, ...]) -> tuple[Any, ...]:
    return tuple(_lookup(item, key.path) for key in order)


def _sort_key_function(order: tuple[_SortKey, ...]) -> Callable[[tuple[Any, ...]], Any]:
    """Key for raw sort values: typed per property; nulls first ascending, last descending."""
    make_key = cmp_to_key(_compare_rows)
    kinds = [key.kind for key in order]
    directions = [key.descending for key in order]

    def sort_key(raw: tuple[Any, ...]) -> Any:
        typed = [_typed(kind, value) for kind, value in zip(kinds, raw, strict=True)]
        return make_key(list(zip(typed, directions, strict=True)))

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


def _lookup(item: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = item
    for segment in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(segment)
    return value


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
        content = json.loads(payload)
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


def _is_known_type(kind: PropertyType) -> bool:
    if isinstance(kind, EnumType):
        return True
    return kind in _PRIMITIVES or kind in _STRUCTURED or _element_type(kind) in _PRIMITIVES


def _is_comparable(kind: PropertyType) -> bool:
    return isinstance(kind, EnumType) or kind in _PRIMITIVES


def _element_type(kind: PropertyType) -> str | None:
    match = _COLLECTION.fullmatch(kind) if isinstance(kind, str) else None
    return match.group(1) if match else None


def _typed(kind: PropertyType, raw: Any) -> Any:
    """A stored value as it compares: GUIDs in lower case, datetimes parsed, enums by order."""
    if raw is None:
        return None
    if isinstance(kind, EnumType):
        return kind.members.index(raw) if raw in kind.members else None
    if kind == "guid":
        return str(raw).lower()
    if kind == "datetime":
        return _as_datetime(raw)
    return raw


def _as_datetime(raw: Any) -> datetime | None:
    if isinstance(raw, datetime):
        value = raw
    else:
        try:
            value = datetime.fromisoformat(str(raw))
        except ValueError:
            return None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------------------------------------
# $filter: tokens, then the odata-query parser, then a compiler from its AST to a predicate.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TypedString(ast.String):
    """A string literal prefixed with a type name: the OData form of an enum member."""

    type_name: str = ""


def _parse_filter(text: str, entity_set: EntitySetOptions) -> _Predicate:
    if not text.strip():
        raise InvalidFilter("$filter is empty.", target="$filter")
    try:
        tree = ODataParser().parse(iter(_tokens(text)))
        return _FilterCompiler(entity_set, {}).predicate(tree)
    except FunctionCallException as exc:
        raise InvalidFilter(f"Invalid $filter: {exc}", target="$filter") from exc
    except ODataException as exc:
        token = getattr(exc, "token", None)
        where = f" near position {token.index}" if token is not None else " at its end"
        raise InvalidFilter(f"Invalid $filter: syntax error{where}.", target="$filter") from exc
    except RecursionError as exc:
        raise InvalidFilter("Invalid $filter: nested too deeply.", target="$filter") from exc


def _tokens(text: str) -> list[Token]:
    """Lex, then fold two OData forms the grammar lacks: typed enum literals and ``in ('x')``."""
    folded: list[Token] = []
    for token in ODataLexer().tokenize(text):
        previous = folded[-1] if folded else None
        if (
            token.type == "STRING"
            and previous is not None
            and previous.type == "ODATA_IDENTIFIER"
            and previous.value.namespace
        ):
            token.value = _TypedString(token.value.val, previous.value.full_name())
            folded[-1] = token
        else:
            folded.append(token)
    return _single_item_lists(folded)


def _single_item_lists(tokens: list[Token]) -> list[Token]:
    """Write ``in ( literal )`` as ``in ( literal , )``, the grammar's one-item list."""
    significant = [index for index, token in enumerate(tokens) if token.type != "WS"]
    commas: list[int] = []
    for position in range(len(significant) - 3):
        first, opening, item, closing = (tokens[i] for i in significant[position : position + 4])
        if (
            first.type == "IN"
            and opening.type == "("
            and isinstance(item.value, ast._Literal)
            and closing.type == ")"
        ):
            commas.append(significant[position + 3])
    for index in reversed(commas):
        comma = Token()
        comma.type, comma.value = ",", ","
        comma.lineno, comma.index = tokens[index].lineno, tokens[index].index
        tokens.insert(index, comma)
    return tokens


_Getter = Callable[[Mapping[str, Any], Mapping[str, Any]], Any]


@dataclass(frozen=True)
class _Operand:
    """A compiled sub-expression: its type, how to read it, and the literal it came from."""

    kind: PropertyType
    get: _Getter
    literal: ast._Literal | None = None


def _constant(value: Any) -> _Getter:
    return lambda item, scope: value


def _compared(compare: Callable[[Any, Any], bool], ordering: bool) -> Callable[[Any, Any], bool]:
    def safe(a: Any, b: Any) -> bool:
        if ordering and (a is None or b is None):
            return False
        try:
            return compare(a, b)
        except TypeError:
            return False

    return safe


_COMPARATORS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: _compared(operator.eq, False),
    ast.NotEq: _compared(operator.ne, False),
    ast.Lt: _compared(operator.lt, True),
    ast.LtE: _compared(operator.le, True),
    ast.Gt: _compared(operator.gt, True),
    ast.GtE: _compared(operator.ge, True),
}

_UNSUPPORTED: dict[type, str] = {
    ast.BinOp: "arithmetic",
    ast.UnaryOp: "negation",
    ast.List: "a list outside 'in'",
}

_STRING_FUNCTIONS: dict[str, Callable[[str, str], bool]] = {
    "startswith": str.startswith,
    "endswith": str.endswith,
    "contains": operator.contains,
}


class _FilterCompiler(NodeVisitor):
    """Compiles a ``$filter`` AST into a predicate, checking names and types as it goes."""

    def __init__(self, entity_set: EntitySetOptions, scope: Mapping[str, str]) -> None:
        self._entity_set = entity_set
        self._scope = scope

    def predicate(self, tree: ast._Node) -> _Predicate:
        get = self._boolean(tree).get
        return lambda item: bool(get(item, {}))

    def visit(self, node: ast._Node) -> _Operand:
        if isinstance(node, ast._Literal) and not isinstance(node, ast.List):
            kind = _literal_kind(node)
            value = node.val if isinstance(node, _TypedString) else _coerce(node, kind)
            return _Operand(kind, _constant(value), node)
        return super().visit(node)

    def generic_visit(self, node: ast._Node) -> _Operand:
        what = _UNSUPPORTED.get(type(node), type(node).__name__)
        raise InvalidFilter(f"Invalid $filter: {what} is not supported.", target="$filter")

    def visit_Identifier(self, node: ast.Identifier) -> _Operand:
        if not node.namespace and node.name in self._scope:
            name = node.name
            return _Operand(self._scope[name], lambda item, scope: scope[name])
        if node.namespace:
            raise InvalidFilter(
                f"Could not find a property named '{node.full_name()}'.", target="$filter"
            )
        return self._property(node.name)

    def visit_Attribute(self, node: ast.Attribute) -> _Operand:
        segments = [node.attr]
        owner: ast._Node = node.owner
        while isinstance(owner, ast.Attribute):
            segments.insert(0, owner.attr)
            owner = owner.owner
        if not isinstance(owner, ast.Identifier) or owner.namespace or owner.name in self._scope:
            raise InvalidFilter("Invalid $filter: unsupported property path.", target="$filter")
        return self._property("/".join([owner.name, *segments]))

    def _property(self, name: str) -> _Operand:
        path, kind = self._entity_set._resolve(name, "$filter")
        segments = tuple(path.split("/"))
        return _Operand(kind, lambda item, scope: _typed(kind, _lookup(item, segments)))

    def visit_Compare(self, node: ast.Compare) -> _Operand:
        left = self.visit(node.left)
        if isinstance(node.comparator, ast.In):
            return self._membership(left, node.right)
        left, right = _unify(left, self.visit(node.right))
        compare = _COMPARATORS[type(node.comparator)]
        get_left, get_right = left.get, right.get
        return _Operand(
            "boolean", lambda item, scope: compare(get_left(item, scope), get_right(item, scope))
        )

    def _membership(self, left: _Operand, right: ast._Node) -> _Operand:
        if not isinstance(right, ast.List) or not all(
            isinstance(value, ast._Literal) for value in right.val
        ):
            raise InvalidFilter("Invalid $filter: 'in' takes a list of literals.", target="$filter")
        kind = _comparable_kind(left)
        values = tuple(_coerce(value, kind) for value in right.val)
        get = left.get
        return _Operand("boolean", lambda item, scope: get(item, scope) in values)

    def visit_BoolOp(self, node: ast.BoolOp) -> _Operand:
        left, right = self._boolean(node.left).get, self._boolean(node.right).get
        if isinstance(node.op, ast.And):
            return _Operand("boolean", lambda item, scope: left(item, scope) and right(item, scope))
        return _Operand("boolean", lambda item, scope: left(item, scope) or right(item, scope))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> _Operand:
        if not isinstance(node.op, ast.Not):
            return self.generic_visit(node)
        operand = self._boolean(node.operand).get
        return _Operand("boolean", lambda item, scope: not operand(item, scope))

    def visit_Call(self, node: ast.Call) -> _Operand:
        function = _STRING_FUNCTIONS.get(node.func.full_name().lower())
        if function is None:
            raise InvalidFilter(
                f"Invalid $filter: function '{node.func.full_name()}' is not supported.",
                target="$filter",
            )
        subject, pattern = (self._text(argument) for argument in node.args)

        def call(item: Mapping[str, Any], scope: Mapping[str, Any]) -> bool:
            value, needle = subject(item, scope), pattern(item, scope)
            if not isinstance(value, str) or not isinstance(needle, str):
                return False
            return function(value, needle)

        return _Operand("boolean", call)

    def visit_CollectionLambda(self, node: ast.CollectionLambda) -> _Operand:
        owner = self.visit(node.owner)
        element = _element_type(owner.kind)
        if element is None or element not in _PRIMITIVES:
            raise InvalidFilter(
                "Invalid $filter: any/all apply to collections of primitive values.",
                target="$filter",
            )
        values = owner.get
        if node.lambda_ is None:
            return _Operand("boolean", lambda item, scope: bool(values(item, scope)))
        variable = node.lambda_.identifier.name
        body = _FilterCompiler(self._entity_set, {**self._scope, variable: element})
        test = body._boolean(node.lambda_.expression).get
        quantifier = any if isinstance(node.operator, ast.Any) else all

        def quantified(item: Mapping[str, Any], scope: Mapping[str, Any]) -> bool:
            collection = values(item, scope)
            if not isinstance(collection, list):
                return False
            return quantifier(
                test(item, {**scope, variable: _typed(element, value)}) for value in collection
            )

        return _Operand("boolean", quantified)

    def _boolean(self, node: ast._Node) -> _Operand:
        operand = self.visit(node)
        if operand.kind != "boolean":
            raise InvalidFilter("Invalid $filter: a condition is expected.", target="$filter")
        return operand

    def _text(self, node: ast._Node) -> _Getter:
        operand = self.visit(node)
        if operand.literal is not None:
            return _constant(_coerce(operand.literal, "string"))
        if operand.kind not in ("string", "guid"):
            raise InvalidFilter(
                "Invalid $filter: string functions take string arguments.", target="$filter"
            )
        return operand.get


_LITERAL_KINDS: tuple[tuple[type, str], ...] = (
    (ast.Null, "null"),
    (ast.String, "string"),
    (ast.GUID, "guid"),
    (ast.DateTime, "datetime"),
    (ast.Integer, "int"),
    (ast.Float, "double"),
    (ast.Boolean, "boolean"),
)


def _literal_kind(literal: ast._Literal) -> PropertyType:
    for literal_type, kind in _LITERAL_KINDS:
        if isinstance(literal, literal_type):
            return kind
    raise InvalidFilter(
        f"Invalid $filter: {type(literal).__name__.lower()} literals are not supported.",
        target="$filter",
    )


def _family(kind: PropertyType) -> PropertyType:
    return "number" if kind in ("int", "double") else kind


def _comparable_kind(operand: _Operand) -> PropertyType:
    if not (_is_comparable(operand.kind) or operand.kind == "null"):
        raise InvalidFilter(
            f"Invalid $filter: a {operand.kind} value cannot be compared.", target="$filter"
        )
    return operand.kind


def _unify(left: _Operand, right: _Operand) -> tuple[_Operand, _Operand]:
    """Give a literal the type of the property it is compared with; refuse mismatched types."""
    left_kind, right_kind = _comparable_kind(left), _comparable_kind(right)
    if left.literal is not None and right.literal is None:
        left = _Operand(right_kind, _constant(_coerce(left.literal, right_kind)), left.literal)
    elif right.literal is not None and left.literal is None:
        right = _Operand(left_kind, _constant(_coerce(right.literal, left_kind)), right.literal)
    elif "null" not in (left_kind, right_kind) and _family(left_kind) != _family(right_kind):
        raise InvalidFilter(
            f"Invalid $filter: cannot compare {_kind_name(left_kind)} with "
            f"{_kind_name(right_kind)}.",
            target="$filter",
        )
    return left, right


def _kind_name(kind: PropertyType) -> str:
    return kind.name if isinstance(kind, EnumType) else kind


def _coerce(literal: ast._Literal, kind: PropertyType) -> Any:
    """The literal's value in the domain ``_typed`` gives the property, or InvalidFilter."""
    if isinstance(literal, ast.Null):
        return None
    mismatch = InvalidFilter(
        f"Invalid $filter: {_literal_text(literal)} is not a valid {_kind_name(kind)} value.",
        target="$filter",
    )
    if isinstance(kind, EnumType):
        typed_name = getattr(literal, "type_name", kind.name)
        if (
            not isinstance(literal, ast.String)
            or typed_name.lower() != kind.name.lower()
            or literal.val not in kind.members
        ):
            raise mismatch
        return kind.members.index(literal.val)
    if isinstance(literal, _TypedString):
        raise mismatch
    if kind == "string" and isinstance(literal, ast.String | ast.GUID):
        return literal.val
    if kind == "guid" and isinstance(literal, ast.String | ast.GUID):
        try:
            return str(UUID(literal.val))
        except ValueError as exc:
            raise mismatch from exc
    if kind == "datetime" and isinstance(literal, ast.String | ast.DateTime):
        value = _as_datetime(literal.val)
        if value is None:
            raise mismatch
        return value
    if kind in ("int", "double") and isinstance(literal, ast.Integer | ast.Float):
        return literal.py_val
    if kind == "boolean" and isinstance(literal, ast.Boolean):
        return literal.py_val
    raise mismatch


def _literal_text(literal: ast._Literal) -> str:
    return repr(getattr(literal, "val", "null"))
