"""Request bodies of the flow API, validated into small value objects.

Written by hand rather than with a schema library because each rule maps to a specific
Graph error code (``tooManyInvitees``, ``invalidEnumValue`` ...) and a clear message.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import time
from enum import Enum
from typing import Any

from ..errors import BadRequest, InvalidEnumValue, InvalidProperty, TooManyInvitees
from ..lake import CREDENTIAL_KINDS
from ..states import DestinationFormat, ReadinessStatus, ScheduleFrequency, SharingState

__all__ = [
    "AcceptRequest",
    "FlowCreate",
    "FlowUpdate",
    "RunCreate",
    "parse_accept",
    "parse_flow_create",
    "parse_flow_update",
    "parse_run_create",
]

FLOW_TYPES = frozenset(
    {
        "#microsoft.graph.industryData.dataShareOutgoingFlow",
        "#microsoft.graph.dataShareOutgoingFlow",
        "#microsoft.industryData.dataShareOutgoingFlow",
    }
)
RUN_TYPE = "#microsoft.graph.industryData.outgoingFlowRun"
SHARE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,89}")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
TIME_OF_DAY = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(:00)?")
_IGNORED_FLOW_PROPERTIES = frozenset({"id", "runs", "invitation"})
_MISSING = object()


@dataclass(frozen=True)
class FlowCreate:
    display_name: str
    share_name: str
    invitee_user_id: str


@dataclass(frozen=True)
class FlowUpdate:
    """Only the properties present in the PATCH body are set."""

    display_name: str | None = None
    share_name: str | None = None
    invitee_user_id: str | None = None
    etag: str | None = None


@dataclass(frozen=True)
class AcceptRequest:
    destination_url: str
    format: DestinationFormat
    credential: dict[str, str] | None
    schedule_frequency: ScheduleFrequency
    time_of_day: time | None
    delta_deletion_vectors: bool | None
    """``deltaOptions.deletionVectors``; None: not chosen, runs take the server's default."""
    delta_change_data_feed: bool | None = None
    """``deltaOptions.changeDataFeed``; None: not chosen, the change data feed is written."""


@dataclass(frozen=True)
class RunCreate:
    display_name: str | None


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"The request body must be a JSON object ({what}).")
    return body


def _check_type(body: dict[str, Any], allowed: frozenset[str]) -> None:
    odata_type = body.get("@odata.type", _MISSING)
    if odata_type is not _MISSING and (
        not isinstance(odata_type, str) or odata_type not in allowed
    ):
        raise InvalidProperty(
            f"'@odata.type' {odata_type!r} is not allowed here.", target="@odata.type"
        )


def _properties(body: dict[str, Any]) -> dict[str, Any]:
    """Body properties without instance annotations (keys holding '@')."""
    return {key: value for key, value in body.items() if "@" not in key}


_SHOWN_NAME = re.compile(r"[A-Za-z@#_][\w@.#-]{0,63}")


def _shown(name: str) -> str:
    """A property name the client sent, as an error may repeat it: short names of the usual
    characters as they are; anything else (long, odd, possibly a secret pasted as a key) not."""
    return name if _SHOWN_NAME.fullmatch(name) else "(unnamed)"


def _reject_unknown(properties: dict[str, Any], known: set[str] | frozenset[str]) -> None:
    unknown = sorted(set(properties) - set(known))
    if unknown:
        name = _shown(unknown[0])
        raise InvalidProperty(f"Property '{name}' does not exist on this type.", target=name)


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidProperty(f"'{name}' must be a string.", target=name)
    return value


def _display_name(value: Any, name: str = "displayName") -> str:
    text = _string(value, name).strip()
    if not 1 <= len(text) <= 256:
        raise InvalidProperty(f"'{name}' must have 1 to 256 characters.", target=name)
    if CONTROL_CHARACTERS.search(text):
        raise InvalidProperty(f"'{name}' must not hold control characters.", target=name)
    return text


def _share_name(value: Any) -> str:
    text = _string(value, "shareName")
    if not SHARE_NAME.fullmatch(text):
        raise InvalidProperty(
            "'shareName' must have 2 to 90 letters, digits, '_' or '-', starting with a "
            "letter or digit.",
            target="shareName",
        )
    return text


def _guid(value: Any, name: str) -> str:
    text = _string(value, name)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise InvalidProperty(
            f"'{name}' must hold GUIDs; {text!r} is not one.", target=name
        ) from None


def _invitee(value: Any) -> str:
    if not isinstance(value, list):
        raise InvalidProperty(
            "'inviteeUserIds' must be a collection of GUIDs.", target="inviteeUserIds"
        )
    if len(value) > 1:
        raise TooManyInvitees(
            "'inviteeUserIds' must hold exactly one user id.", target="inviteeUserIds"
        )
    if not value:
        raise InvalidProperty(
            "'inviteeUserIds' must hold exactly one user id.", target="inviteeUserIds"
        )
    return _guid(value[0], "inviteeUserIds")


def _enum(value: Any, name: str, enum: type[Enum]) -> Enum:
    text = _string(value, name)
    for member in enum:
        if member.value == text:
            return member
    members = ", ".join(member.value for member in enum)
    raise InvalidEnumValue(f"'{text}' is not a member of {name} ({members}).", target=name)


def _server_managed(properties: dict[str, Any]) -> str | None:
    """Check the well-typedness of server-managed properties; return the body eTag."""
    if "readinessStatus" in properties:
        _enum(properties["readinessStatus"], "readinessStatus", ReadinessStatus)
    if "sharingState" in properties:
        _enum(properties["sharingState"], "sharingState", SharingState)
    if "eTag" in properties and properties["eTag"] is not None:
        return _string(properties["eTag"], "eTag")
    return None


_FLOW_PROPERTIES = frozenset(
    {"displayName", "shareName", "inviteeUserIds", "eTag", "readinessStatus", "sharingState"}
    | _IGNORED_FLOW_PROPERTIES
)


def parse_flow_create(body: Any) -> FlowCreate:
    """A POST body for a new flow."""
    body = _object(body, "a dataShareOutgoingFlow")
    _check_type(body, FLOW_TYPES)
    properties = _properties(body)
    _reject_unknown(properties, _FLOW_PROPERTIES)
    _server_managed(properties)
    for required in ("displayName", "shareName", "inviteeUserIds"):
        if properties.get(required) is None:
            raise InvalidProperty(f"'{required}' is required.", target=required)
    return FlowCreate(
        display_name=_display_name(properties["displayName"]),
        share_name=_share_name(properties["shareName"]),
        invitee_user_id=_invitee(properties["inviteeUserIds"]),
    )


def parse_flow_update(body: Any) -> FlowUpdate:
    """A PATCH body: any subset of the client-set properties (null is not allowed)."""
    body = _object(body, "a dataShareOutgoingFlow")
    _check_type(body, FLOW_TYPES)
    properties = _properties(body)
    _reject_unknown(properties, _FLOW_PROPERTIES)
    etag = _server_managed(properties)
    for name in ("displayName", "shareName", "inviteeUserIds"):
        if name in properties and properties[name] is None:
            raise InvalidProperty(f"'{name}' cannot be null.", target=name)
    return FlowUpdate(
        display_name=_display_name(properties["displayName"])
        if "displayName" in properties
        else None,
        share_name=_share_name(properties["shareName"]) if "shareName" in properties else None,
        invitee_user_id=_invitee(properties["inviteeUserIds"])
        if "inviteeUserIds" in properties
        else None,
        etag=etag,
    )


def _credential(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) != 1:
        raise InvalidProperty(
            "'destination.credential' must be null or an object with exactly one of "
            "accountKey, sasToken, connectionString.",
            target="destination.credential",
        )
    ((kind, secret),) = value.items()
    if kind not in CREDENTIAL_KINDS:
        raise InvalidProperty(
            f"'destination.credential.{_shown(kind)}' is not a credential kind "
            "(accountKey, sasToken, connectionString).",
            target="destination.credential",
        )
    if not isinstance(secret, str) or not secret:
        raise InvalidProperty(
            f"'destination.credential.{kind}' must be a non-empty string.",
            target="destination.credential",
        )
    return {kind: secret}


_DELTA_OPTIONS = ("deletionVectors", "changeDataFeed")


def _delta_options(value: Any, format: Enum) -> dict[str, bool | None]:
    """``destination.deltaOptions``: null, or an object of known, well-typed options and only
    for the ``delta`` format (another format would silently ignore them). Returns each
    option's value (None when not given)."""
    target = "destination.deltaOptions"
    if value is None:
        return dict.fromkeys(_DELTA_OPTIONS)
    if not isinstance(value, dict):
        raise InvalidProperty(f"'{target}' must be null or an object.", target=target)
    if format is not DestinationFormat.DELTA:
        raise InvalidProperty(
            f"'{target}' applies only to the delta format, not {format.value}.", target=target
        )
    unknown = sorted(set(value) - set(_DELTA_OPTIONS))
    if unknown:
        name = f"{target}.{_shown(unknown[0])}"
        known = ", ".join(_DELTA_OPTIONS)
        raise InvalidProperty(f"'{name}' is not a Delta option ({known}).", target=name)
    for option in _DELTA_OPTIONS:
        chosen = value.get(option)
        if chosen is not None and not isinstance(chosen, bool):
            name = f"{target}.{option}"
            raise InvalidProperty(f"'{name}' must be true, false or null.", target=name)
    return {option: value.get(option) for option in _DELTA_OPTIONS}


def _time_of_day(value: Any) -> time:
    text = _string(value, "schedule.timeOfDay")
    match = TIME_OF_DAY.fullmatch(text)
    if not match:
        raise InvalidProperty(
            "'schedule.timeOfDay' must be HH:MM (UTC, 00:00 to 23:59).", target="schedule.timeOfDay"
        )
    return time(int(match.group(1)), int(match.group(2)))


def parse_accept(body: Any) -> AcceptRequest:
    """The accept body of contract §4: destination (url, format, credential, deltaOptions)
    and schedule."""
    body = _object(body, "an accept request")
    properties = _properties(body)
    _reject_unknown(properties, {"destination", "schedule"})
    destination = properties.get("destination")
    if not isinstance(destination, dict):
        raise InvalidProperty(
            "'destination' is required and must be an object.", target="destination"
        )
    _reject_unknown(destination, {"url", "format", "credential", "deltaOptions"})
    if destination.get("url") is None:
        raise InvalidProperty("'destination.url' is required.", target="destination.url")
    url = _string(destination["url"], "destination.url")
    format_value = destination.get("format")
    format = (
        DestinationFormat.SDS_CSV
        if format_value is None
        else _enum(format_value, "destination.format", DestinationFormat)
    )
    credential = _credential(destination.get("credential"))
    delta_options = _delta_options(destination.get("deltaOptions"), format)
    schedule = properties.get("schedule")
    frequency, time_of_day = ScheduleFrequency.DAILY, None
    if schedule is not None:
        if not isinstance(schedule, dict):
            raise InvalidProperty("'schedule' must be an object.", target="schedule")
        _reject_unknown(schedule, {"frequency", "timeOfDay"})
        if schedule.get("frequency") is not None:
            frequency = _enum(schedule["frequency"], "schedule.frequency", ScheduleFrequency)
        if schedule.get("timeOfDay") is not None:
            time_of_day = _time_of_day(schedule["timeOfDay"])
    return AcceptRequest(
        destination_url=url,
        format=format,  # type: ignore[arg-type]
        credential=credential,
        schedule_frequency=frequency,  # type: ignore[arg-type]
        time_of_day=time_of_day,
        delta_deletion_vectors=delta_options["deletionVectors"],
        delta_change_data_feed=delta_options["changeDataFeed"],
    )


def parse_run_create(body: Any) -> RunCreate:
    """A POST body for a new run: only ``displayName`` is the client's; the rest is ignored."""
    if body is None:
        return RunCreate(display_name=None)
    body = _object(body, "an outgoingFlowRun")
    _check_type(body, frozenset({RUN_TYPE}))
    display_name = body.get("displayName")
    if display_name is None:
        return RunCreate(display_name=None)
    return RunCreate(display_name=_display_name(display_name))
