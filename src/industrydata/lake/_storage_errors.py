"""The one place where storage libraries' exceptions become destination errors.

Every destination operation (and every ``deltalake`` call) runs inside ``storage_errors``;
the first matching row of ``ERROR_MAP`` (most specific first) picks the domain error.
Messages name the operation and the object path inside the destination, plus the library's
reason without its arguments, so no URL, key or token can leak into a run's
``blockingError`` or a log line.
``unreachable_on_failure`` widens the translation while a destination is being proved.

Azure SDK exceptions are matched first, through ``AZURE_ERROR_MAP``: by class name (only
``lake/azure.py`` imports the SDK) and, where the class alone is too coarse, by the HTTP
status or the storage error code. Their reason is the storage service's message, first line
only, with every URL query string cut off (a SAS token travels in the query).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow as pa
from deltalake.exceptions import DeltaError

from ..errors import DestinationUnreachable, ExportError, IndustryDataError

ERROR_MAP: tuple[tuple[type[BaseException], type[IndustryDataError]], ...] = (
    (PermissionError, DestinationUnreachable),
    (ConnectionError, DestinationUnreachable),
    (TimeoutError, DestinationUnreachable),
    (OSError, ExportError),
    (pa.ArrowException, ExportError),
    (DeltaError, ExportError),
)


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


AZURE_ERROR_MAP: tuple[tuple[AzureErrorMatch, type[IndustryDataError]], ...] = (
    (
        AzureErrorMatch("ResourceNotFoundError", error_code="ContainerNotFound"),
        DestinationUnreachable,
    ),
    (AzureErrorMatch("ClientAuthenticationError"), DestinationUnreachable),
    (AzureErrorMatch("HttpResponseError", status_code=403), DestinationUnreachable),
    (AzureErrorMatch("ServiceRequestError"), DestinationUnreachable),
    (AzureErrorMatch("ServiceResponseError"), DestinationUnreachable),
    (AzureErrorMatch("AzureError"), ExportError),
)
_QUERY_STRING = re.compile(r"\?[^\s'\"]*")


@contextmanager
def storage_errors(operation: str, path: str) -> Iterator[None]:
    """Translate foreign exceptions raised by ``operation`` on ``path`` (``from`` the original)."""
    try:
        yield
    except IndustryDataError:
        raise
    except Exception as exc:
        domain = _domain_error(exc)
        if domain is None:
            raise
        raise domain(
            f"Could not {operation} '{path or '/'}' at the destination: {_reason(exc)}.",
            target=path or None,
        ) from exc


def _domain_error(exc: BaseException) -> type[IndustryDataError] | None:
    for azure_error, domain in AZURE_ERROR_MAP:
        if azure_error.matches(exc):
            return domain
    for foreign, domain in ERROR_MAP:
        if isinstance(exc, foreign):
            return domain
    return None


@contextmanager
def unreachable_on_failure() -> Iterator[None]:
    """While a destination is being proved (opened, probed), any storage failure means the
    client's destination is unusable: ``ExportError`` becomes ``DestinationUnreachable``."""
    try:
        yield
    except ExportError as exc:
        raise DestinationUnreachable(exc.message, target=exc.target) from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if any(azure_error.matches(exc) for azure_error, _ in AZURE_ERROR_MAP):
        return _azure_reason(exc)
    return type(exc).__name__


def _azure_reason(exc: BaseException) -> str:
    """The storage service's message (``reason`` is its first line on HTTP errors), without
    query strings, then the storage error code when there is one."""
    text = getattr(exc, "reason", None) or getattr(exc, "message", None) or ""
    first_line = _QUERY_STRING.sub("", str(text).strip().split("\n", 1)[0]).rstrip(". ")
    code = getattr(exc, "error_code", None)
    code = getattr(code, "value", code)
    reason = first_line or type(exc).__name__
    return f"{reason} ({code})" if code else reason
