"""How far a load has read: reported per file so a command can draw a bar and a rate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FileProgress", "ProgressCallback"]


@dataclass(frozen=True)
class FileProgress:
    """Where the reading of one file of an upload stands.

    ``bytes_read`` and ``bytes_total`` size the bar (records per file are unknown until read);
    ``records`` counts the data records read so far; ``done`` marks the last report of a file.
    """

    file: str
    records: int
    bytes_read: int
    bytes_total: int
    done: bool = False


ProgressCallback = Callable[[FileProgress], None]
"""Called a few times per file while it is read, and once when it is done."""
