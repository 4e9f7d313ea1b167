"""Storage exceptions become destination errors in one place: access and connection problems
are ``DestinationUnreachable``, other I/O and Arrow failures ``ExportError``; messages name
the object and a reason of ours, never the arguments the library was called with nor what a
remote answered."""

from __future__ import annotations

import errno

import pyarrow as pa
import pytest

from industrydata.errors import DestinationUnreachable, ExportError
from industrydata.lake._storage_errors import ERROR_MAP, storage_errors, unreachable_on_failure

SECRET = "sig=SECRET-SAS-TOKEN"


@pytest.mark.parametrize(
    ("foreign", "expected"),
    [
        (PermissionError(errno.EACCES, "Permission denied", SECRET), DestinationUnreachable),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), DestinationUnreachable),
        (TimeoutError(errno.ETIMEDOUT, "Timed out"), DestinationUnreachable),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", SECRET), ExportError),
        (OSError(errno.ENOSPC, "No space left on device"), ExportError),
        (pa.ArrowInvalid(f"bad {SECRET}"), ExportError),
    ],
    ids=lambda value: type(value).__name__,
)
def test_storage_errors_maps_foreign_exception(foreign: Exception, expected: type) -> None:
    with pytest.raises(expected) as raised, storage_errors("write", "roster/x.csv"):
        raise foreign

    assert type(raised.value) is expected
    assert raised.value.__cause__ is foreign
    assert raised.value.target == "roster/x.csv"
    assert "roster/x.csv" in raised.value.message
    assert SECRET not in raised.value.message


def test_storage_errors_message_carries_the_reason() -> None:
    with pytest.raises(ExportError) as raised, storage_errors("write", "a.csv"):
        raise OSError(errno.ENOSPC, "No space left on device")

    assert raised.value.message == (
        "Could not write 'a.csv' at the destination: No space left on device."
    )


@pytest.mark.parametrize(
    "foreign",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
        ConnectionError("[SSL: WRONG_VERSION_NUMBER] wrong version number"),
    ],
    ids=lambda value: type(value).__name__,
)
def test_storage_errors_connection_failures_read_the_same(foreign: Exception) -> None:
    """A refused port and a failed handshake must not be told apart (a port-scan oracle)."""
    with pytest.raises(DestinationUnreachable) as raised, storage_errors("write", "a.csv"):
        raise foreign

    assert raised.value.message == (
        "Could not write 'a.csv' at the destination: the storage service could not be reached."
    )


def test_storage_errors_leaves_other_exceptions_alone() -> None:
    with pytest.raises(KeyError), storage_errors("write", "a.csv"):
        raise KeyError("not storage")


def test_storage_errors_leaves_domain_errors_alone() -> None:
    original = DestinationUnreachable("already translated")
    with pytest.raises(DestinationUnreachable) as raised, storage_errors("write", "a.csv"):
        raise original

    assert raised.value is original


def test_error_map_lists_specific_types_before_their_bases() -> None:
    foreign_types = [foreign for foreign, _, _ in ERROR_MAP]
    for index, foreign in enumerate(foreign_types):
        assert not any(issubclass(foreign, earlier) for earlier in foreign_types[:index])


def test_unreachable_on_failure_turns_export_errors_into_unreachable() -> None:
    with (
        pytest.raises(DestinationUnreachable) as raised,
        unreachable_on_failure(),
        storage_errors("create", "x"),
    ):
        raise OSError(errno.EROFS, "Read-only file system")

    assert raised.value.message == "Could not create 'x' at the destination: Read-only file system."
    assert isinstance(raised.value.__cause__, ExportError)
