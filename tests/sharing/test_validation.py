"""Request bodies become value objects or a 400 with the specific cause (contract §3, §4)."""

from __future__ import annotations

from datetime import time

import pytest

from industrydata.errors import BadRequest, InvalidEnumValue, InvalidProperty, TooManyInvitees
from industrydata.sharing import (
    parse_accept,
    parse_flow_create,
    parse_flow_update,
    parse_run_create,
)
from industrydata.states import DestinationFormat, ScheduleFrequency

INVITEE = "6e0f3a7c-1d2b-4c5e-8f9a-0b1c2d3e4f5a"


def test_parse_flow_create_trims_and_normalises() -> None:
    request = parse_flow_create(
        {"displayName": "  Lake  ", "shareName": "Lake_1-a", "inviteeUserIds": [INVITEE.upper()]}
    )
    assert (request.display_name, request.share_name, request.invitee_user_id) == (
        "Lake",
        "Lake_1-a",
        INVITEE,
    )


@pytest.mark.parametrize("share_name", ["ab", "a" * 90, "9lives", "x_y-z"])
def test_parse_flow_create_accepts_share_names(share_name: str) -> None:
    body = {"displayName": "x", "shareName": share_name, "inviteeUserIds": [INVITEE]}
    assert parse_flow_create(body).share_name == share_name


@pytest.mark.parametrize(
    "share_name", ["a", "a" * 91, "_lead", "-lead", "sp ace", "dot.ted", "ümlaut"]
)
def test_parse_flow_create_refuses_share_names(share_name: str) -> None:
    with pytest.raises(InvalidProperty):
        parse_flow_create(
            {"displayName": "x", "shareName": share_name, "inviteeUserIds": [INVITEE]}
        )


def test_parse_flow_create_two_invitees_is_too_many() -> None:
    with pytest.raises(TooManyInvitees):
        parse_flow_create(
            {"displayName": "x", "shareName": "ok", "inviteeUserIds": [INVITEE, INVITEE]}
        )


def test_parse_flow_update_only_sets_present_properties() -> None:
    update = parse_flow_update({"shareName": "renamed", "eTag": "abc", "@odata.context": "ignored"})
    assert (update.display_name, update.share_name, update.invitee_user_id, update.etag) == (
        None,
        "renamed",
        None,
        "abc",
    )


@pytest.mark.parametrize("name", ["displayName", "shareName", "inviteeUserIds"])
def test_parse_flow_update_refuses_null(name: str) -> None:
    with pytest.raises(InvalidProperty):
        parse_flow_update({name: None})


def test_parse_flow_update_invalid_enum() -> None:
    with pytest.raises(InvalidEnumValue):
        parse_flow_update({"sharingState": "Running"})


def test_parse_accept_defaults() -> None:
    request = parse_accept({"destination": {"url": "file:///lake"}})
    assert request.format is DestinationFormat.SDS_CSV
    assert request.credential is None
    assert request.schedule_frequency is ScheduleFrequency.DAILY
    assert request.time_of_day is None


def test_parse_accept_full() -> None:
    request = parse_accept(
        {
            "destination": {
                "url": "az://c/p",
                "format": "parquet",
                "credential": {"sasToken": "sv=1"},
            },
            "schedule": {"frequency": "hourly", "timeOfDay": "23:59"},
        }
    )
    assert request.format is DestinationFormat.PARQUET
    assert request.credential == {"sasToken": "sv=1"}
    assert (request.schedule_frequency, request.time_of_day) == (
        ScheduleFrequency.HOURLY,
        time(23, 59),
    )


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"destination": "file:///x"},
        {"destination": {"url": "file:///x", "path": "y"}},
        {"destination": {"url": "file:///x"}, "extra": 1},
        {"destination": {"url": "file:///x", "credential": {"accountKey": "a", "sasToken": "b"}}},
        {"destination": {"url": "file:///x", "credential": {"accountKey": ""}}},
        {"destination": {"url": "file:///x"}, "schedule": {"timeOfDay": "6:00"}},
    ],
)
def test_parse_accept_refuses(body: object) -> None:
    with pytest.raises(BadRequest):
        parse_accept(body)


def test_parse_accept_without_delta_options_leaves_the_choice_to_the_server() -> None:
    assert parse_accept({"destination": {"url": "file:///x"}}).delta_deletion_vectors is None
    for options in (None, {}, {"deletionVectors": None}):
        body = {"destination": {"url": "file:///x", "format": "delta", "deltaOptions": options}}
        assert parse_accept(body).delta_deletion_vectors is None


@pytest.mark.parametrize("deletion_vectors", [True, False])
def test_parse_accept_takes_the_deletion_vector_choice_of_a_delta_destination(
    deletion_vectors: bool,
) -> None:
    body = {
        "destination": {
            "url": "file:///x",
            "format": "delta",
            "deltaOptions": {"deletionVectors": deletion_vectors},
        }
    }
    assert parse_accept(body).delta_deletion_vectors is deletion_vectors


@pytest.mark.parametrize(
    ("destination", "target"),
    [
        ({"format": "delta", "deltaOptions": {"deletionVector": True}}, "deletionVector"),
        ({"format": "delta", "deltaOptions": {"columnMapping": "name"}}, "columnMapping"),
        ({"format": "delta", "deltaOptions": {"deletionVectors": "true"}}, "deletionVectors"),
        ({"format": "delta", "deltaOptions": {"deletionVectors": 1}}, "deletionVectors"),
        ({"format": "delta", "deltaOptions": {"deletionVectors": [True]}}, "deletionVectors"),
        ({"format": "delta", "deltaOptions": True}, ""),
        ({"format": "delta", "deltaOptions": "deletionVectors"}, ""),
        ({"format": "parquet", "deltaOptions": {"deletionVectors": False}}, ""),
        ({"format": "sdsCsv", "deltaOptions": {}}, ""),
        ({"deltaOptions": {"deletionVectors": True}}, ""),
    ],
)
def test_parse_accept_refuses_delta_options(destination: dict[str, object], target: str) -> None:
    with pytest.raises(InvalidProperty) as refused:
        parse_accept({"destination": {"url": "file:///x", **destination}})
    assert refused.value.target == "destination.deltaOptions" + (f".{target}" if target else "")


def test_parse_run_create_keeps_only_display_name() -> None:
    assert parse_run_create(None).display_name is None
    assert (
        parse_run_create({"displayName": " Nightly ", "status": "completed"}).display_name
        == "Nightly"
    )
    with pytest.raises(InvalidProperty):
        parse_run_create({"@odata.type": "#microsoft.graph.industryData.dataShareOutgoingFlow"})


def test_an_unknown_property_name_is_repeated_only_when_short_and_plain() -> None:
    with pytest.raises(InvalidProperty) as plain:
        parse_flow_update({"colour": "blue"})
    assert plain.value.target == "colour"
    assert "'colour'" in plain.value.message

    secret = "DefaultEndpointsProtocol=https;AccountKey=" + "k" * 80
    with pytest.raises(InvalidProperty) as odd:
        parse_flow_update({secret: "x"})
    assert secret not in odd.value.message
    assert odd.value.target == "(unnamed)"

    with pytest.raises(InvalidProperty) as credential:
        parse_accept({"destination": {"url": "file:///x", "credential": {secret: "v"}}})
    assert secret not in credential.value.message
