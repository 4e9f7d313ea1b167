"""The ``$metadata`` document describes every type of the API contract (§2, §3, §5, §4 operations).

The expectations below are copied from the contract, not from the module, so a drifting model
fails here. The query vocabulary derived from the same model is checked too.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from industrydata.api.metadata import entity_set_options, metadata_xml
from industrydata.api.odata import EnumType, parse_query

EDMX = "{http://docs.oasis-open.org/odata/ns/edmx}"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
GRAPH = "microsoft.graph"
NS = "microsoft.graph.industryData"

CONTRACT_ENUMS = {
    "readinessStatus": ["notReady", "ready", "failed", "deleted", "expired", "unknownFutureValue"],
    "dataShareSharingState": ["pending", "running", "problem", "unknownFutureValue"],
    "runStatus": [
        "running",
        "failed",
        "completed",
        "completedWithErrors",
        "completedWithWarnings",
        "unknownFutureValue",
    ],
    "dataShareInvitationStatus": [
        "pending",
        "accepted",
        "rejected",
        "expired",
        "revoked",
        "unknownFutureValue",
    ],
}


@pytest.fixture(scope="module")
def root() -> ET.Element:
    return ET.fromstring(metadata_xml())


@pytest.fixture(scope="module")
def types(root: ET.Element) -> dict[str, ET.Element]:
    """Every schema element that declares a type, by qualified name."""
    found: dict[str, ET.Element] = {}
    for schema in root.iter(f"{EDM}Schema"):
        for element in schema:
            if element.tag in (f"{EDM}EnumType", f"{EDM}EntityType", f"{EDM}ComplexType"):
                found[f"{schema.get('Namespace')}.{element.get('Name')}"] = element
    return found


def _chain(types: dict[str, ET.Element], name: str) -> list[str]:
    chain = [name]
    while (base := types[chain[-1]].get("BaseType")) is not None:
        chain.append(base)
    return chain


def _members(types: dict[str, ET.Element], name: str, tag: str) -> dict[str, ET.Element]:
    """Properties (or navigation properties) of a type, inherited ones included."""
    return {
        element.get("Name"): element
        for type_name in _chain(types, name)
        for element in types[type_name].findall(f"{EDM}{tag}")
    }


def test_metadata_xml_is_edmx_4(root: ET.Element) -> None:
    assert root.tag == f"{EDMX}Edmx" and root.get("Version") == "4.0"
    namespaces = {schema.get("Namespace") for schema in root.iter(f"{EDM}Schema")}
    assert namespaces == {GRAPH, NS}


@pytest.mark.parametrize(("enum", "members"), CONTRACT_ENUMS.items())
def test_metadata_xml_enum_members_in_contract_order(
    types: dict[str, ET.Element], enum: str, members: list[str]
) -> None:
    element = types[f"{NS}.{enum}"]
    assert element.tag == f"{EDM}EnumType"
    declared = [(member.get("Name"), member.get("Value")) for member in element]
    assert declared == [(member, str(value)) for value, member in enumerate(members)]


def test_metadata_xml_flow_type_chain(types: dict[str, ET.Element]) -> None:
    assert _chain(types, f"{NS}.dataShareOutgoingFlow") == [
        f"{NS}.dataShareOutgoingFlow",
        f"{NS}.outgoingFlow",
        f"{NS}.process",
        f"{NS}.mutableEntity",
        f"{GRAPH}.entity",
    ]
    key = types[f"{GRAPH}.entity"].find(f"{EDM}Key/{EDM}PropertyRef")
    assert key is not None and key.get("Name") == "id"


def test_metadata_xml_flow_has_every_contract_property(types: dict[str, ET.Element]) -> None:
    flow = f"{NS}.dataShareOutgoingFlow"
    properties = {
        name: element.get("Type") for name, element in _members(types, flow, "Property").items()
    }
    assert properties == {
        "id": "Edm.String",
        "eTag": "Edm.String",
        "displayName": "Edm.String",
        "shareName": "Edm.String",
        "inviteeUserIds": "Collection(Edm.String)",
        "readinessStatus": f"{NS}.readinessStatus",
        "sharingState": f"{NS}.dataShareSharingState",
    }
    navigation = _members(types, flow, "NavigationProperty")
    assert {name: nav.get("Type") for name, nav in navigation.items()} == {
        "runs": f"Collection({NS}.outgoingFlowRun)",
        "invitation": f"{NS}.dataShareInvitation",
    }
    assert all(nav.get("ContainsTarget") == "true" for nav in navigation.values())


@pytest.mark.parametrize(
    ("type_name", "expected"),
    [
        (
            f"{NS}.outgoingFlowRun",
            {
                "id",
                "displayName",
                "startDateTime",
                "endDateTime",
                "status",
                "blockingError",
                "statistics",
            },
        ),
        (
            f"{NS}.runStatistics",
            {
                "snapshotId",
                "format",
                "progressPercent",
                "tables",
                "rowsWritten",
                "filesWritten",
                "bytesWritten",
                "errors",
                "warnings",
                "durationSeconds",
            },
        ),
        (
            f"{NS}.tableStatistics",
            {"name", "rowsRead", "rowsWritten", "filesWritten", "bytesWritten", "status"},
        ),
        (
            f"{NS}.dataShareInvitation",
            {
                "id",
                "status",
                "inviteeUserId",
                "createdDateTime",
                "expirationDateTime",
                "respondedDateTime",
                "destination",
                "schedule",
            },
        ),
        (f"{NS}.dataShareDestination", {"url", "format", "deltaOptions"}),
        (f"{NS}.dataShareDeltaOptions", {"deletionVectors", "changeDataFeed"}),
        (f"{NS}.dataShareSchedule", {"frequency", "timeOfDay"}),
        (f"{GRAPH}.publicError", {"code", "message", "target", "details", "innerError"}),
        (f"{GRAPH}.publicErrorDetail", {"code", "message", "target"}),
        (f"{GRAPH}.identity", {"id", "displayName"}),
    ],
)
def test_metadata_xml_type_has_contract_properties(
    types: dict[str, ET.Element], type_name: str, expected: set[str]
) -> None:
    assert set(_members(types, type_name, "Property")) == expected


def test_metadata_xml_run_property_types(types: dict[str, ET.Element]) -> None:
    run = _members(types, f"{NS}.outgoingFlowRun", "Property")
    assert run["status"].get("Type") == f"{NS}.runStatus"
    assert run["startDateTime"].get("Type") == "Edm.DateTimeOffset"
    assert run["blockingError"].get("Type") == f"{GRAPH}.publicError"
    statistics = _members(types, f"{NS}.runStatistics", "Property")
    assert statistics["tables"].get("Type") == f"Collection({NS}.tableStatistics)"


def test_metadata_xml_container_exposes_hub(root: ET.Element, types: dict[str, ET.Element]) -> None:
    containers = list(root.iter(f"{EDM}EntityContainer"))
    assert len(containers) == 1
    singleton = containers[0].find(f"{EDM}Singleton")
    assert singleton is not None
    assert (singleton.get("Name"), singleton.get("Type")) == (
        "industryData",
        f"{NS}.industryDataRoot",
    )
    hub = _members(types, f"{NS}.industryDataRoot", "NavigationProperty")
    flows = hub["dataShareOutgoingFlows"]
    assert flows.get("Type") == f"Collection({NS}.dataShareOutgoingFlow)"
    assert flows.get("ContainsTarget") == "true"
    assert "statistics" in _members(types, f"{NS}.industryDataRoot", "Property")


def _operations(root: ET.Element, tag: str) -> dict[str, ET.Element]:
    return {element.get("Name"): element for element in root.iter(f"{EDM}{tag}")}


def _signature(operation: ET.Element) -> tuple[list[tuple[str, str]], str | None]:
    parameters = [(p.get("Name"), p.get("Type")) for p in operation.findall(f"{EDM}Parameter")]
    returns = operation.find(f"{EDM}ReturnType")
    return parameters, None if returns is None else returns.get("Type")


def test_metadata_xml_potential_invitees_function(root: ET.Element) -> None:
    function = _operations(root, "Function")["getPotentialDataShareInvitees"]
    assert function.get("IsBound") == "true"
    assert _signature(function) == (
        [("bindingParameter", f"Collection({NS}.dataShareOutgoingFlow)")],
        f"Collection({GRAPH}.identity)",
    )


@pytest.mark.parametrize("action", ["accept", "reject", "resend"])
def test_metadata_xml_invitation_actions(root: ET.Element, action: str) -> None:
    element = _operations(root, "Action")[action]
    parameters, returns = _signature(element)
    assert element.get("IsBound") == "true"
    assert parameters[0] == ("bindingParameter", f"{NS}.dataShareInvitation")
    assert returns == f"{NS}.dataShareInvitation"


def test_metadata_xml_run_cancel_action(root: ET.Element) -> None:
    """The extension ``POST …/runs/{id}/cancel``: bound to a run, no parameters, returns it."""
    element = _operations(root, "Action")["cancel"]
    assert element.get("IsBound") == "true"
    assert _signature(element) == (
        [("bindingParameter", f"{NS}.outgoingFlowRun")],
        f"{NS}.outgoingFlowRun",
    )
    schema = next(
        schema for schema in root.iter(f"{EDM}Schema") if schema.get("Namespace") == NS
    )
    assert element in list(schema)


def test_metadata_xml_accept_takes_destination_and_schedule(
    root: ET.Element, types: dict[str, ET.Element]
) -> None:
    parameters, _ = _signature(_operations(root, "Action")["accept"])
    declared = dict(parameters)
    assert declared["schedule"] == f"{NS}.dataShareSchedule"
    destination = _members(types, declared["destination"], "Property")
    assert {"url", "format", "credential", "deltaOptions"} <= set(destination)


def test_metadata_xml_every_referenced_type_is_declared(
    root: ET.Element, types: dict[str, ET.Element]
) -> None:
    referenced = {
        re.sub(r"^Collection\((.*)\)$", r"\1", value)
        for element in root.iter()
        for attribute in ("Type", "BaseType")
        if (value := element.get(attribute)) is not None
    }
    undeclared = {name for name in referenced if not name.startswith("Edm.")} - set(types)
    assert undeclared == set()


def test_entity_set_options_flow_vocabulary() -> None:
    flows = entity_set_options("dataShareOutgoingFlow")
    assert flows.properties["inviteeUserIds"] == "collection(guid)"
    assert flows.properties["id"] == "guid"
    readiness = flows.properties["readinessStatus"]
    assert isinstance(readiness, EnumType)
    assert list(readiness.members) == CONTRACT_ENUMS["readinessStatus"]
    assert flows.expandable == {"runs", "invitation"}


def test_entity_set_options_run_vocabulary_has_nested_paths() -> None:
    runs = entity_set_options("outgoingFlowRun", default_order="startDateTime asc")
    assert runs.properties["statistics"] == "complex"
    assert runs.properties["statistics/rowsWritten"] == "int"
    assert runs.properties["statistics/tables"] == "collection(complex)"
    assert runs.properties["blockingError/code"] == "string"
    assert runs.expandable == frozenset()
    parse_query({"$filter": "statistics/rowsWritten gt 0", "$orderby": "status desc"}, runs)


def test_entity_set_options_unknown_type_raises() -> None:
    with pytest.raises(KeyError):
        entity_set_options("noSuchType")
