"""Domain errors. The API maps each to the Graph error envelope in one place (api/errors.py).

IndustryDataError                      500 generalException
├── BadRequest                         400 badRequest (cause in ``inner_code``)
│   ├── InvalidProperty                    invalidProperty
│   ├── InvalidEnumValue                   invalidEnumValue
│   ├── InvalidFilter                      invalidFilter
│   ├── TooManyInvitees                    tooManyInvitees
│   ├── InviteeNotGlobalAdministrator      inviteeNotGlobalAdministrator
│   ├── InviteeIsOwner                     inviteeIsOwner
│   └── InvalidDestination                 invalidDestination
├── Unauthenticated                    401 unauthenticated
├── AccessDenied                       403 accessDenied
├── NotFound                           404 itemNotFound
├── Conflict                           409 (code names the conflict)
│   ├── ShareNameConflict                  nameAlreadyExists
│   ├── RunInProgress                      runInProgress
│   ├── RunNotInProgress                   runNotInProgress
│   ├── RunPublishing                      runPublishing
│   ├── FlowNotReady                       flowNotReady
│   ├── InvitationNotPending               invitationNotPending
│   └── DestinationInUse                   destinationInUse
├── NotAcceptable                      406 notAcceptable
├── StaleETag                          412 preconditionFailed
├── PayloadTooLarge                    413 payloadTooLarge
├── UnsupportedMediaType               415 unsupportedMediaType
├── DestinationUnreachable             422 destinationUnreachable
├── TooManyRequests                    429 tooManyRequests (+ Retry-After)
├── StoreBusy                          503 serviceUnavailable (+ Retry-After): write lock contention
├── LoadError                          load rejected (CLI exits non-zero)
└── ExportError                        a run failed while writing (becomes blockingError)
    └── LoadBeingApplied                   loadInProgress: the tenant's load is half-applied
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AccessDenied",
    "BadRequest",
    "Conflict",
    "DestinationInUse",
    "DestinationUnreachable",
    "ErrorDetail",
    "ExportError",
    "FlowNotReady",
    "IndustryDataError",
    "InvalidDestination",
    "InvalidEnumValue",
    "InvalidFilter",
    "InvalidProperty",
    "InvitationNotPending",
    "InviteeIsOwner",
    "InviteeNotGlobalAdministrator",
    "LoadBeingApplied",
    "LoadError",
    "LoadProblem",
    "NotAcceptable",
    "NotFound",
    "PayloadTooLarge",
    "RunInProgress",
    "RunNotInProgress",
    "RunPublishing",
    "ShareNameConflict",
    "StaleETag",
    "StoreBusy",
    "TooManyInvitees",
    "TooManyRequests",
    "Unauthenticated",
    "UnsupportedMediaType",
]


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of ``error.details``."""

    code: str
    message: str
    target: str | None = None


class IndustryDataError(Exception):
    """Base of every error the service raises on purpose; unexpected ones are bugs (500)."""

    status: int = 500
    code: str = "generalException"
    inner_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        target: str | None = None,
        details: list[ErrorDetail] | None = None,
        inner_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.target = target
        self.details = details or []
        if inner_code is not None:
            self.inner_code = inner_code


class BadRequest(IndustryDataError):
    """The request is malformed or breaks a validation rule; nothing was changed."""

    status = 400
    code = "badRequest"
    inner_code = "badRequest"


class InvalidProperty(BadRequest):
    """A body property is unknown, missing, of the wrong type or out of range."""

    inner_code = "invalidProperty"


class InvalidEnumValue(BadRequest):
    """An enum-typed property holds a value that is not a member."""

    inner_code = "invalidEnumValue"


class InvalidFilter(BadRequest):
    """An OData query option cannot be parsed or names an unknown property."""

    inner_code = "invalidFilter"


class TooManyInvitees(BadRequest):
    """``inviteeUserIds`` holds other than exactly one id."""

    inner_code = "tooManyInvitees"


class InviteeNotGlobalAdministrator(BadRequest):
    """The invitee is not a Global Administrator of the caller's tenant."""

    inner_code = "inviteeNotGlobalAdministrator"


class InviteeIsOwner(BadRequest):
    """The caller who names the invitee named themselves: a flow takes two people."""

    inner_code = "inviteeIsOwner"


class InvalidDestination(BadRequest):
    """The destination URL, format, credential or schedule of an accept is not acceptable."""

    inner_code = "invalidDestination"


class Unauthenticated(IndustryDataError):
    """No bearer token, or one that is invalid or expired; the client sees 401."""

    status = 401
    code = "unauthenticated"


class AccessDenied(IndustryDataError):
    """The token lacks the permission, or the caller is not the invitee; 403."""

    status = 403
    code = "accessDenied"


class NotFound(IndustryDataError):
    """No such item in the caller's tenant (another tenant's items answer the same); 404."""

    status = 404
    code = "itemNotFound"


class Conflict(IndustryDataError):
    """The request clashes with the current state; 409 with a specific code."""

    status = 409
    code = "conflict"


class ShareNameConflict(Conflict):
    """Another flow of the tenant already has this shareName."""

    code = "nameAlreadyExists"


class RunInProgress(Conflict):
    """The flow already has a run in progress; ``target`` is its id."""

    code = "runInProgress"


class RunNotInProgress(Conflict):
    """A cancel of a run that has already ended (completed, failed or cancelled)."""

    code = "runNotInProgress"


class RunPublishing(Conflict):
    """A cancel of a run that has written every table and is publishing its snapshot: past
    that point a cancel could no longer keep the snapshot from being published."""

    code = "runPublishing"


class FlowNotReady(Conflict):
    """A run was asked of a flow whose invitation is not accepted."""

    code = "flowNotReady"


class InvitationNotPending(Conflict):
    """Accept or reject of an invitation that is no longer pending."""

    code = "invitationNotPending"


class DestinationInUse(Conflict):
    """Another flow of the same tenant claimed this destination (or one inside or around it)."""

    code = "destinationInUse"


class NotAcceptable(IndustryDataError):
    """The client's Accept header admits no representation the resource has; 406."""

    status = 406
    code = "notAcceptable"


class PayloadTooLarge(IndustryDataError):
    """The request body is over the 1 MiB limit; 413."""

    status = 413
    code = "payloadTooLarge"


class UnsupportedMediaType(IndustryDataError):
    """A request body that is not JSON; 415."""

    status = 415
    code = "unsupportedMediaType"


class StaleETag(IndustryDataError):
    """``If-Match`` (or a body eTag) does not match the current eTag; 412."""

    status = 412
    code = "preconditionFailed"


class DestinationUnreachable(IndustryDataError):
    """The destination probe (write and delete a small object) failed; 422."""

    status = 422
    code = "destinationUnreachable"


class TooManyRequests(IndustryDataError):
    """On-demand run throttle exceeded; 429 with ``Retry-After`` seconds."""

    status = 429
    code = "tooManyRequests"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class StoreBusy(IndustryDataError):
    """The store's write lock (or a row lock) stayed taken for the whole wait; nothing was
    changed. 503 with ``Retry-After`` seconds: contention is never an internal error."""

    status = 503
    code = "serviceUnavailable"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


@dataclass
class LoadProblem:
    """An error or warning found while loading a CSV file."""

    severity: str
    file: str
    line: int | None
    column: str | None
    value: str | None
    reason: str


class LoadError(IndustryDataError):
    """A load was rejected as a whole (structural errors); the store is unchanged."""

    status = 400
    code = "badRequest"
    inner_code = "invalidLoad"

    def __init__(self, message: str, *, problems: list[LoadProblem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class ExportError(IndustryDataError):
    """A run could not write its snapshot; becomes the run's ``blockingError``."""

    code = "exportFailed"


class LoadBeingApplied(ExportError):
    """The tenant's canonical rows are being replaced by a load (its fence is up): an export
    now would mix old and new rows, so it waits for the load to end."""

    code = "loadInProgress"
