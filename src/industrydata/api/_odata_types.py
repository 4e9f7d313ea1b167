"""What an entity set declares: its property paths, their OData types, and how values compare.

Both the query options (``odata``) and the ``$filter`` compiler (``_odata_filter``) check names
against these declarations and read values through them, so the two agree on what a property is:
GUIDs compare in lower case, datetimes as aware instants, enums by declaration order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

from industrydata.errors import InvalidFilter

__all__ = [
    "PRIMITIVES",
    "EntitySetOptions",
    "EnumType",
    "PropertyType",
    "SortKey",
    "as_datetime",
    "element_type",
    "is_comparable",
    "lookup",
    "parse_orderby",
    "typed",
]

PRIMITIVES = frozenset({"string", "guid", "datetime", "int", "double", "boolean"})
_STRUCTURED = frozenset({"complex", "collection(complex)"})
_COLLECTION = re.compile(r"collection\((\w+)\)")
_ORDER_ITEM = re.compile(r"\s*([A-Za-z_]\w*(?:/[A-Za-z_]\w*)*)(?:\s+(asc|desc))?\s*", re.I)


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
            parse_orderby(self.default_order, self)

    @cached_property
    def _paths(self) -> dict[str, str]:
        return {path.lower(): path for path in self.properties}

    @cached_property
    def _navigation(self) -> dict[str, str]:
        return {name.lower(): name for name in self.expandable}

    def resolve(self, path: str, option: str) -> tuple[str, PropertyType]:
        """The declared spelling and type of a property path; names are case-insensitive.

        Raises:
            InvalidFilter: no such property; ``option`` is the query option that named it.
        """
        canonical = self._paths.get(path.lower())
        if canonical is None:
            raise InvalidFilter(f"Could not find a property named '{path}'.", target=option)
        return canonical, self.properties[canonical]

    def resolve_navigation(self, name: str) -> str:
        """The declared spelling of a navigation property named in ``$expand``.

        Raises:
            InvalidFilter: no such navigation property.
        """
        navigation = self._navigation.get(name.lower())
        if navigation is None:
            raise InvalidFilter(
                f"Could not find a navigation property named '{name}'.", target="$expand"
            )
        return navigation


@dataclass(frozen=True)
class SortKey:
    """One ``$orderby`` item: a property path, its type, and the direction."""

    path: tuple[str, ...]
    kind: PropertyType
    descending: bool


def parse_orderby(text: str, entity_set: EntitySetOptions) -> tuple[SortKey, ...]:
    """Parse ``$orderby`` (or a ``default_order``) into sort keys over sortable properties.

    Raises:
        InvalidFilter: an item is malformed, unknown, or of a type that does not sort.
    """
    keys: list[SortKey] = []
    for part in text.split(","):
        match = _ORDER_ITEM.fullmatch(part)
        if match is None:
            raise InvalidFilter(
                f"'{part.strip()}' is not a valid $orderby item.", target="$orderby"
            )
        path, kind = entity_set.resolve(match.group(1), "$orderby")
        if not is_comparable(kind):
            raise InvalidFilter(f"Cannot sort by '{path}'.", target="$orderby")
        direction = (match.group(2) or "asc").lower()
        keys.append(SortKey(tuple(path.split("/")), kind, direction == "desc"))
    return tuple(keys)


def lookup(item: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at a property path; None where the path runs past the item's objects."""
    value: Any = item
    for segment in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(segment)
    return value


def _is_known_type(kind: PropertyType) -> bool:
    if isinstance(kind, EnumType):
        return True
    return kind in PRIMITIVES or kind in _STRUCTURED or element_type(kind) in PRIMITIVES


def is_comparable(kind: PropertyType) -> bool:
    return isinstance(kind, EnumType) or kind in PRIMITIVES


def element_type(kind: PropertyType) -> str | None:
    match = _COLLECTION.fullmatch(kind) if isinstance(kind, str) else None
    return match.group(1) if match else None


def typed(kind: PropertyType, raw: Any) -> Any:
    """A stored value as it compares: GUIDs in lower case, datetimes parsed, enums by order."""
    if raw is None:
        return None
    if isinstance(kind, EnumType):
        return kind.members.index(raw) if raw in kind.members else None
    if kind == "guid":
        return str(raw).lower()
    if kind == "datetime":
        return as_datetime(raw)
    return raw


def as_datetime(raw: Any) -> datetime | None:
    if isinstance(raw, datetime):
        value = raw
    else:
        try:
            value = datetime.fromisoformat(str(raw))
        except ValueError:
            return None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
