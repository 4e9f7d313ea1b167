"""The one place where storage libraries' exceptions become destination errors.

Every destination operation runs inside ``storage_errors``; the first matching row of
``ERROR_MAP`` (most specific first) picks the domain error. Messages name the operation and
the object path inside the destination, plus the library's reason without its arguments, so
no URL, key or token can leak into a run's ``blockingError`` or a log line.
``unreachable_on_failure`` widens the translation while a destination is being proved.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

from ..errors import DestinationUnreachable, ExportError, IndustryDataError

ERROR_MAP: tuple[tuple[type[BaseException], type[IndustryDataError]], ...] = (
    (PermissionError, DestinationUnreachable),
    (ConnectionError, DestinationUnreachable),
    (TimeoutError, DestinationUnreachable),
    (OSError, ExportError),
    (pa.ArrowException, ExportError),
)


@contextmanager
def storage_errors(operation: str, path: str) -> Iterator[None]:
    """Translate foreign exceptions raised by ``operation`` on ``path`` (``from`` the original)."""
    try:
        yield
    except IndustryDataError:
        raise
    except Exception as exc:
        for foreign, domain in ERROR_MAP:
            if isinstance(exc, foreign):
                raise domain(
                    f"Could not {operation} '{path or '/'}' at the destination: {_reason(exc)}.",
                    target=path or None,
                ) from exc
        raise


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
    return type(exc).__name__
