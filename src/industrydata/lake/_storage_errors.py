"""The one place where storage libraries' exceptions become destination errors.

Every destination operation (and every ``deltalake`` call) runs inside ``storage_errors``;
the first matching row of ``AZURE_ERROR_MAP`` then ``ERROR_MAP`` (most specific first) picks
the domain error and the reason. Messages name the operation, the object path inside the
destination and a reason of ours: the row's fixed text, a local file system's error name
(``strerror``), or the exception's class name. Nothing a remote server answered (its
message, error code, the URL it was called with, a connection failure's detail) reaches a
message, so no URL, key or token can leak into a run's ``blockingError``, a response or a log
line, and a refused connection reads the same as a failed handshake.
``unreachable_on_failure`` widens the translation while a destination is being proved.

Azure SDK exceptions are matched by class name (only ``lake/azure.py`` imports the SDK) and,
where the class alone is too coarse, by the HTTP status or the storage error code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow as pa
from deltalake.exceptions import DeltaError

from ..errors import DestinationUnreachable, ExportError, IndustryDataError

_UNREACHABLE = "the storage service could not be reached"

ERROR_MAP: tuple[tuple[type[BaseException], type[IndustryDataError], str | None], ...] = (
    (PermissionError, DestinationUnreachable, None),
    (ConnectionError, DestinationUnreachable, _UNREACHABLE),
    (TimeoutError, DestinationUnreachable, "the storage service did not answer in time"),
    (OSError, ExportError, None),
    (pa.ArrowException, ExportError, None),
    (DeltaError, ExportError, None),
)
"""(exception type, domain error, reason); a None reason is the file system's ``strerror``
(local, never remote) or the exception's class name."""


@dataclass(frozen=True)
class AzureErrorMatch:
    """An ``azure.core.exceptions`` class, named rather than imported, and optionally the
    HTTP status or storage error code an exception of it must carry to match."""

    name: str
    status_code: int | None = None
    error_code: str | None = None

    def matches(self, exc: BaseException) -> bool:
        """Whether ``exc`` is an instance of the class and carries the status and code."""
        return (
            any(
                cls.__module__ == "azure.core.exceptions" and cls.__name__ == self.name
                for cls in type(exc).__mro__
            )
            and self.status_code in (None, getattr(exc, "status_code", None))
            and self.error_code in (None, getattr(exc, "error_code", None))
        )


AZURE_ERROR_MAP: tuple[tuple[AzureErrorMatch, type[IndustryDataError], str], ...] = (
    (
        AzureErrorMatch("ResourceNotFoundError", error_code="ContainerNotFound"),
        DestinationUnreachable,
        "the container does not exist",
    ),
    (
        AzureErrorMatch("ResourceNotFoundError", error_code="BlobNotFound"),
        ExportError,
        "the object does not exist",
    ),
    (
        AzureErrorMatch("ClientAuthenticationError"),
        DestinationUnreachable,
        "the storage service refused the credential",
    ),
    (
        AzureErrorMatch("HttpResponseError", status_code=403),
        DestinationUnreachable,
        "the credential does not allow this operation",
    ),
    (AzureErrorMatch("ServiceRequestError"), DestinationUnreachable, _UNREACHABLE),
    (
        AzureErrorMatch("ServiceResponseError"),
        DestinationUnreachable,
        "the storage service did not answer",
    ),
    (AzureErrorMatch("AzureError"), ExportError, "the storage service reported an error"),
)


@contextmanager
def storage_errors(operation: str, path: str) -> Iterator[None]:
    """Translate foreign exceptions raised by ``operation`` on ``path`` (``from`` the original)."""
    try:
        yield
    except IndustryDataError:
        raise
    except Exception as exc:
        translation = _translation(exc)
        if translation is None:
            raise
        domain, reason = translation
        raise domain(
            f"Could not {operation} '{path or '/'}' at the destination: {reason}.",
            target=path or None,
        ) from exc


def _translation(exc: BaseException) -> tuple[type[IndustryDataError], str] | None:
    """The domain error and reason for ``exc``, or None when it is not a storage error."""
    for azure_error, domain, reason in AZURE_ERROR_MAP:
        if azure_error.matches(exc):
            return domain, reason
    for foreign, domain, fixed in ERROR_MAP:
        if isinstance(exc, foreign):
            return domain, fixed or _local_reason(exc)
    return None


def _local_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


@contextmanager
def unreachable_on_failure() -> Iterator[None]:
    """While a destination is being proved (opened, probed), any storage failure means the
    client's destination is unusable: ``ExportError`` becomes ``DestinationUnreachable``."""
    try:
        yield
    except ExportError as exc:
        raise DestinationUnreachable(exc.message, target=exc.target) from exc
