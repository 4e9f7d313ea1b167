"""``$filter``: tokens, then the ``odata-query`` parser, then a compiler from its AST to a predicate.

The predicate runs over the Graph JSON dicts the service produced. Every name and literal is
checked against the entity set's declaration while compiling, so a malformed or ill-typed
expression fails before any item is read (400 ``invalidFilter``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any
from uuid import UUID

from odata_query import ast
from odata_query.exceptions import FunctionCallException, ODataException
from odata_query.grammar import ODataLexer, ODataParser
from odata_query.visitor import NodeVisitor
from sly.lex import Token

from industrydata.errors import InvalidFilter

from ._odata_types import (
    PRIMITIVES,
    EntitySetOptions,
    EnumType,
    PropertyType,
    as_datetime,
    element_type,
    is_comparable,
    lookup,
    typed,
)

__all__ = ["MAX_FILTER_DEPTH", "Predicate", "compile_filter"]

Predicate = Callable[[Mapping[str, Any]], bool]
"""Whether one item, as Graph JSON, matches the filter."""

MAX_FILTER_DEPTH = 32
"""Deepest syntax tree accepted: about 30 conditions joined by ``and``/``or``, since each
joins the previous ones. The compiler and the predicate recurse once per level."""


@dataclass(frozen=True)
class _TypedString(ast.String):
    """A string literal prefixed with a type name: the OData form of an enum member."""

    type_name: str = ""


def compile_filter(text: str, entity_set: EntitySetOptions) -> Predicate:
    """Compile ``$filter`` text against ``entity_set`` into a predicate over Graph JSON dicts.

    Raises:
        InvalidFilter: the text is empty or malformed, or names, types or functions do not fit.
    """
    if not text.strip():
        raise InvalidFilter("$filter is empty.", target="$filter")
    try:
        tree = ODataParser().parse(iter(_tokens(text)))
    except FunctionCallException as exc:
        raise InvalidFilter(f"Invalid $filter: {exc}", target="$filter") from exc
    except ODataException as exc:
        token = getattr(exc, "token", None)
        where = f" near position {token.index}" if token is not None else " at its end"
        raise InvalidFilter(f"Invalid $filter: syntax error{where}.", target="$filter") from exc
    if _depth(tree) > MAX_FILTER_DEPTH:
        raise InvalidFilter(
            f"Invalid $filter: nested deeper than {MAX_FILTER_DEPTH} levels.", target="$filter"
        )
    return _FilterCompiler(entity_set, {}).predicate(tree)


def _depth(tree: ast._Node) -> int:
    """Levels of the syntax tree, counted without recursion (the parser builds it with a
    stack, so any depth the query string allows reaches this point)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        for field in fields(node):
            value = getattr(node, field.name)
            for child in value if isinstance(value, list | tuple) else (value,):
                if isinstance(child, ast._Node):
                    pending.append((child, depth + 1))
    return deepest


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

    def predicate(self, tree: ast._Node) -> Predicate:
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
        path, kind = self._entity_set.resolve(name, "$filter")
        segments = tuple(path.split("/"))
        return _Operand(kind, lambda item, scope: typed(kind, lookup(item, segments)))

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
        element = element_type(owner.kind)
        if element is None or element not in PRIMITIVES:
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
                test(item, {**scope, variable: typed(element, value)}) for value in collection
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
    if not (is_comparable(operand.kind) or operand.kind == "null"):
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
    """The literal's value in the domain ``typed`` gives the property, or InvalidFilter."""
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
        value = as_datetime(literal.val)
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
