"""The service's EDM model: the CSDL ``$metadata`` document and the query vocabulary it implies.

One declaration of every type of the API contract (enums, entity and complex types, navigation,
bound operations, the container) renders both the CSDL 4.0 document served at
``/beta/$metadata`` and the ``EntitySetOptions`` that tell ``$filter``, ``$orderby``,
``$select`` and ``$expand`` which properties exist, so the two cannot disagree.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Literal

from ..states import InvitationStatus, ReadinessStatus, RunStatus, SharingState
from .odata import EntitySetOptions, EnumType, PropertyType

__all__ = [
    "DATA_SHARE_INVITATION_STATUS",
    "DATA_SHARE_SHARING_STATE",
    "READINESS_STATUS",
    "RUN_STATUS",
    "entity_set_options",
    "metadata_xml",
]

GRAPH = "microsoft.graph"
INDUSTRY_DATA = "microsoft.graph.industryData"
_EDMX_NS = "http://docs.oasis-open.org/odata/ns/edmx"
_EDM_NS = "http://docs.oasis-open.org/odata/ns/edm"


def _enum(name: str, members: type[Enum]) -> EnumType:
    return EnumType(f"{INDUSTRY_DATA}.{name}", tuple(member.value for member in members))


READINESS_STATUS = _enum("readinessStatus", ReadinessStatus)
DATA_SHARE_SHARING_STATE = _enum("dataShareSharingState", SharingState)
RUN_STATUS = _enum("runStatus", RunStatus)
DATA_SHARE_INVITATION_STATUS = _enum("dataShareInvitationStatus", InvitationStatus)
_ENUMS = (READINESS_STATUS, DATA_SHARE_SHARING_STATE, RUN_STATUS, DATA_SHARE_INVITATION_STATUS)


@dataclass(frozen=True)
class _Property:
    """A structural property; ``guid`` marks an ``Edm.String`` holding GUIDs (Graph types ids
    as strings), which filters compare as GUIDs."""

    name: str
    type: str
    nullable: bool = True
    guid: bool = False


@dataclass(frozen=True)
class _Navigation:
    name: str
    type: str
    nullable: bool = True


@dataclass(frozen=True)
class _StructuredType:
    kind: Literal["EntityType", "ComplexType"]
    name: str
    properties: tuple[_Property, ...] = ()
    navigation: tuple[_Navigation, ...] = ()
    base_type: str | None = None
    abstract: bool = False
    open_type: bool = False
    key: str | None = None


@dataclass(frozen=True)
class _Parameter:
    name: str
    type: str
    nullable: bool = True


@dataclass(frozen=True)
class _Operation:
    kind: Literal["Function", "Action"]
    name: str
    binding: str
    return_type: str
    parameters: tuple[_Parameter, ...] = ()


def _g(name: str) -> str:
    return f"{GRAPH}.{name}"


def _i(name: str) -> str:
    return f"{INDUSTRY_DATA}.{name}"


def _collection(type_name: str) -> str:
    return f"Collection({type_name})"


_ERROR_FIELDS = (
    _Property("code", "Edm.String"),
    _Property("message", "Edm.String"),
    _Property("target", "Edm.String"),
)
_TOTALS = (
    _Property("rowsWritten", "Edm.Int64"),
    _Property("filesWritten", "Edm.Int64"),
    _Property("bytesWritten", "Edm.Int64"),
)

_TYPES: tuple[_StructuredType, ...] = (
    _StructuredType(
        "EntityType",
        _g("entity"),
        (_Property("id", "Edm.String", nullable=False, guid=True),),
        abstract=True,
        key="id",
    ),
    _StructuredType(
        "ComplexType",
        _g("identity"),
        (_Property("displayName", "Edm.String"), _Property("id", "Edm.String", guid=True)),
    ),
    _StructuredType(
        "ComplexType",
        _g("publicError"),
        (
            *_ERROR_FIELDS,
            _Property("details", _collection(_g("publicErrorDetail"))),
            _Property("innerError", _g("publicInnerError")),
        ),
    ),
    _StructuredType("ComplexType", _g("publicErrorDetail"), _ERROR_FIELDS),
    _StructuredType(
        "ComplexType",
        _g("publicInnerError"),
        (*_ERROR_FIELDS, _Property("details", _collection(_g("publicErrorDetail")))),
    ),
    _StructuredType(
        "EntityType",
        _i("industryDataRoot"),
        (_Property("statistics", _i("industryDataStatistics")),),
        (_Navigation("dataShareOutgoingFlows", _collection(_i("dataShareOutgoingFlow"))),),
        base_type=_g("entity"),
    ),
    _StructuredType("ComplexType", _i("industryDataStatistics"), open_type=True),
    _StructuredType(
        "EntityType",
        _i("mutableEntity"),
        (_Property("eTag", "Edm.String"),),
        base_type=_g("entity"),
        abstract=True,
    ),
    _StructuredType(
        "EntityType",
        _i("process"),
        (
            _Property("displayName", "Edm.String"),
            _Property("readinessStatus", READINESS_STATUS.name),
        ),
        (_Navigation("runs", _collection(_i("outgoingFlowRun"))),),
        base_type=_i("mutableEntity"),
        abstract=True,
    ),
    _StructuredType("EntityType", _i("outgoingFlow"), base_type=_i("process"), abstract=True),
    _StructuredType(
        "EntityType",
        _i("dataShareOutgoingFlow"),
        (
            _Property("inviteeUserIds", _collection("Edm.String"), nullable=False, guid=True),
            _Property("shareName", "Edm.String"),
            _Property("sharingState", DATA_SHARE_SHARING_STATE.name),
        ),
        (_Navigation("invitation", _i("dataShareInvitation")),),
        base_type=_i("outgoingFlow"),
    ),
    _StructuredType(
        "EntityType",
        _i("outgoingFlowRun"),
        (
            _Property("displayName", "Edm.String"),
            _Property("startDateTime", "Edm.DateTimeOffset"),
            _Property("endDateTime", "Edm.DateTimeOffset"),
            _Property("status", RUN_STATUS.name),
            _Property("blockingError", _g("publicError")),
            _Property("statistics", _i("runStatistics")),
        ),
        base_type=_g("entity"),
    ),
    _StructuredType(
        "ComplexType",
        _i("runStatistics"),
        (
            _Property("snapshotId", "Edm.String"),
            _Property("format", "Edm.String"),
            _Property("progressPercent", "Edm.Int32"),
            _Property("tables", _collection(_i("tableStatistics"))),
            *_TOTALS,
            _Property("errors", "Edm.Int32"),
            _Property("warnings", "Edm.Int32"),
            _Property("durationSeconds", "Edm.Double"),
        ),
    ),
    _StructuredType(
        "ComplexType",
        _i("tableStatistics"),
        (
            _Property("name", "Edm.String"),
            _Property("rowsRead", "Edm.Int64"),
            *_TOTALS,
            _Property("status", "Edm.String"),
        ),
    ),
    _StructuredType(
        "EntityType",
        _i("dataShareInvitation"),
        (
            _Property("status", DATA_SHARE_INVITATION_STATUS.name),
            _Property("inviteeUserId", "Edm.String", guid=True),
            _Property("createdDateTime", "Edm.DateTimeOffset"),
            _Property("expirationDateTime", "Edm.DateTimeOffset"),
            _Property("respondedDateTime", "Edm.DateTimeOffset"),
            _Property("destination", _i("dataShareDestination")),
            _Property("schedule", _i("dataShareSchedule")),
        ),
        base_type=_g("entity"),
    ),
    _StructuredType(
        "ComplexType",
        _i("dataShareDestination"),
        (
            _Property("url", "Edm.String"),
            _Property("format", "Edm.String"),
            _Property("deltaOptions", _i("dataShareDeltaOptions")),
        ),
    ),
    _StructuredType(
        "ComplexType",
        _i("dataShareDeltaOptions"),
        (
            _Property("deletionVectors", "Edm.Boolean"),
            _Property("changeDataFeed", "Edm.Boolean"),
        ),
    ),
    _StructuredType(
        "ComplexType",
        _i("dataShareDestinationInput"),
        (_Property("credential", _i("dataShareCredential")),),
        base_type=_i("dataShareDestination"),
    ),
    _StructuredType(
        "ComplexType",
        _i("dataShareCredential"),
        (
            _Property("accountKey", "Edm.String"),
            _Property("sasToken", "Edm.String"),
            _Property("connectionString", "Edm.String"),
        ),
    ),
    _StructuredType(
        "ComplexType",
        _i("dataShareSchedule"),
        (_Property("frequency", "Edm.String"), _Property("timeOfDay", "Edm.TimeOfDay")),
    ),
)

_INVITATION = _i("dataShareInvitation")
_RUN = _i("outgoingFlowRun")
_OPERATIONS: tuple[_Operation, ...] = (
    _Operation(
        "Function",
        _i("getPotentialDataShareInvitees"),
        _collection(_i("dataShareOutgoingFlow")),
        _collection(_g("identity")),
    ),
    _Operation(
        "Action",
        _i("accept"),
        _INVITATION,
        _INVITATION,
        (
            _Parameter("destination", _i("dataShareDestinationInput"), nullable=False),
            _Parameter("schedule", _i("dataShareSchedule")),
        ),
    ),
    _Operation("Action", _i("reject"), _INVITATION, _INVITATION),
    _Operation("Action", _i("resend"), _INVITATION, _INVITATION),
    _Operation("Action", _i("cancel"), _RUN, _RUN),
)

_CONTAINER = "GraphService"
_SINGLETON = ("industryData", _i("industryDataRoot"))

_TYPES_BY_NAME = {structured.name: structured for structured in _TYPES}
_ENUMS_BY_NAME = {enum.name: enum for enum in _ENUMS}
_QUERY_TYPES = {
    "Edm.String": "string",
    "Edm.Guid": "guid",
    "Edm.DateTimeOffset": "datetime",
    "Edm.TimeOfDay": "string",
    "Edm.Int32": "int",
    "Edm.Int64": "int",
    "Edm.Double": "double",
    "Edm.Boolean": "boolean",
}


@cache
def metadata_xml() -> str:
    """The CSDL 4.0 document describing every type of the API (``GET /beta/$metadata``)."""
    root = ET.Element("edmx:Edmx", {"xmlns:edmx": _EDMX_NS, "Version": "4.0"})
    services = ET.SubElement(root, "edmx:DataServices")
    for namespace in (GRAPH, INDUSTRY_DATA):
        schema = ET.SubElement(services, "Schema", {"xmlns": _EDM_NS, "Namespace": namespace})
        for enum in _ENUMS:
            if _namespace(enum.name) == namespace:
                _add_enum(schema, enum)
        for structured in _TYPES:
            if _namespace(structured.name) == namespace:
                _add_structured(schema, structured)
        for operation in _OPERATIONS:
            if _namespace(operation.name) == namespace:
                _add_operation(schema, operation)
        if namespace == GRAPH:
            container = ET.SubElement(schema, "EntityContainer", {"Name": _CONTAINER})
            name, type_name = _SINGLETON
            ET.SubElement(container, "Singleton", {"Name": name, "Type": type_name})
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def entity_set_options(type_name: str, *, default_order: str = "") -> EntitySetOptions:
    """The query vocabulary of a collection of ``type_name`` (unqualified names are industryData).

    Every structural property, inherited ones included, is declared with its query type, and
    the non-collection complex ones also with their nested paths (``statistics/rowsWritten``);
    the navigation properties are the expandable ones.
    """
    structured = _TYPES_BY_NAME[type_name if "." in type_name else _i(type_name)]
    chain = _type_chain(structured)
    properties: dict[str, PropertyType] = {}
    for declaring in chain:
        for prop in declaring.properties:
            _declare(properties, prop.name, prop)
    expandable = frozenset(nav.name for declaring in chain for nav in declaring.navigation)
    return EntitySetOptions(properties, expandable, default_order)


def _declare(properties: dict[str, PropertyType], path: str, prop: _Property) -> None:
    if prop.type.startswith("Collection("):
        element = _query_type(prop.type[len("Collection(") : -1], prop.guid)
        properties[path] = f"collection({element})"
        return
    properties[path] = _query_type(prop.type, prop.guid)
    nested = _TYPES_BY_NAME.get(prop.type)
    if nested is not None:
        for member in nested.properties:
            _declare(properties, f"{path}/{member.name}", member)


def _query_type(type_name: str, guid: bool) -> PropertyType:
    if type_name in _ENUMS_BY_NAME:
        return _ENUMS_BY_NAME[type_name]
    if type_name in _TYPES_BY_NAME:
        return "complex"
    return "guid" if guid else _QUERY_TYPES[type_name]


def _type_chain(structured: _StructuredType) -> list[_StructuredType]:
    """The type and its ancestors, root first."""
    chain = [structured]
    while chain[0].base_type is not None:
        chain.insert(0, _TYPES_BY_NAME[chain[0].base_type])
    return chain


def _namespace(qualified: str) -> str:
    return qualified.rsplit(".", 1)[0]


def _local(qualified: str) -> str:
    return qualified.rsplit(".", 1)[1]


def _add_enum(schema: ET.Element, enum: EnumType) -> None:
    element = ET.SubElement(schema, "EnumType", {"Name": _local(enum.name)})
    for value, member in enumerate(enum.members):
        ET.SubElement(element, "Member", {"Name": member, "Value": str(value)})


def _add_structured(schema: ET.Element, structured: _StructuredType) -> None:
    attributes = {"Name": _local(structured.name)}
    if structured.base_type:
        attributes["BaseType"] = structured.base_type
    if structured.abstract:
        attributes["Abstract"] = "true"
    if structured.open_type:
        attributes["OpenType"] = "true"
    element = ET.SubElement(schema, structured.kind, attributes)
    if structured.key:
        key = ET.SubElement(element, "Key")
        ET.SubElement(key, "PropertyRef", {"Name": structured.key})
    for prop in structured.properties:
        ET.SubElement(element, "Property", _typed_attributes(prop.name, prop.type, prop.nullable))
    for nav in structured.navigation:
        attributes = _typed_attributes(nav.name, nav.type, nav.nullable)
        ET.SubElement(element, "NavigationProperty", {**attributes, "ContainsTarget": "true"})


def _add_operation(schema: ET.Element, operation: _Operation) -> None:
    element = ET.SubElement(
        schema, operation.kind, {"Name": _local(operation.name), "IsBound": "true"}
    )
    parameters = (_Parameter("bindingParameter", operation.binding), *operation.parameters)
    for parameter in parameters:
        ET.SubElement(
            element,
            "Parameter",
            _typed_attributes(parameter.name, parameter.type, parameter.nullable),
        )
    ET.SubElement(element, "ReturnType", {"Type": operation.return_type})


def _typed_attributes(name: str, type_name: str, nullable: bool) -> dict[str, str]:
    attributes = {"Name": name, "Type": type_name}
    if not nullable:
        attributes["Nullable"] = "false"
    return attributes
