"""Reading a large upload in a child process while this process writes what it reads.

Validating and mapping records is Python work and writing them is the database's; in one
process they take turns (a thread would not help: the driver gives the interpreter lock
back for a few microseconds per row only). The child runs ``read_upload`` and sends each
chunk of rows (``marshal``-ed: rows hold only strings, numbers and booleans, and marshal
encodes them four times faster than pickle), each progress report and finally its
``LoadReport`` through a bounded queue. The queue is deep enough (some 80 MB) for the child
to run ahead while its files yield many rows cheaply (users) and the writer to catch up
while they yield few at a higher cost (roles, enrollments). It never touches the database: this process
hands the rows to its sink (the load's transaction, or its spool on SQLite), and a failure on
either side stops the load.

The child dies with its parent, however the parent ends (even by SIGKILL, which runs no
clean-up): on Linux the kernel sends it SIGKILL when the parent dies (``PR_SET_PDEATHSIG``),
and everywhere a watchdog thread ends it once its parent process is gone.
"""

from __future__ import annotations

import ctypes
import marshal
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import LoadError
from ._limits import DEFAULT_LIMITS, ReadLimits
from ._rows import RowSink
from .progress import ProgressCallback
from .report import LoadReport

if TYPE_CHECKING:
    from multiprocessing.queues import Queue

    from ._load import Load

__all__ = ["read_in_child"]

_QUEUED_MESSAGES = 64
_POLL_SECONDS = 0.5
_WATCHDOG_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1


def read_in_child(
    load_class: type[Load],
    path: Path,
    *,
    tenant_id: str,
    seen: str,
    sink: RowSink,
    progress: ProgressCallback | None,
    limits: ReadLimits = DEFAULT_LIMITS,
    report_path: Path | None = None,
) -> LoadReport:
    """Read the upload at ``path`` in a child process, handing its rows to ``sink`` here as
    they come.

    Raises:
        LoadError: the upload could not be read (as in-process), or the child died.
    """
    context = multiprocessing.get_context("spawn")
    messages: Queue[tuple[Any, ...]] = context.Queue(maxsize=_QUEUED_MESSAGES)
    child = context.Process(
        target=_read,
        args=(
            load_class,
            path,
            tenant_id,
            seen,
            progress is not None,
            messages,
            limits,
            report_path,
            os.getpid(),
        ),
        name="industrydata-load-reader",
        daemon=True,
    )
    child.start()
    try:
        while True:
            kind, *payload = _next_message(messages, child)
            if kind == "rows":
                table, rows = payload
                sink(table, marshal.loads(rows))
            elif kind == "progress":
                if progress is not None:
                    progress(payload[0])
            elif kind == "done":
                return payload[0]
            elif kind == "failed":
                message, problems = payload
                raise LoadError(message, problems=problems)
            else:
                raise RuntimeError(f"reading the upload failed:\n{payload[0]}")
    finally:
        if child.is_alive():
            child.terminate()
        child.join()
        messages.close()


def _next_message(messages: Queue[tuple[Any, ...]], child: Any) -> tuple[Any, ...]:
    while True:
        try:
            return messages.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if not child.is_alive():
                try:
                    return messages.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    raise LoadError(
                        f"the process reading the upload stopped (exit code {child.exitcode}); "
                        "a script that loads at import time needs the "
                        "'if __name__ == \"__main__\":' idiom, or parallel=False"
                    ) from None


def _read(
    load_class: type[Load],
    path: Path,
    tenant_id: str,
    seen: str,
    report_progress: bool,
    messages: Queue[tuple[Any, ...]],
    limits: ReadLimits,
    report_path: Path | None,
    parent: int,
) -> None:
    """The child: read the upload, sending rows, progress and the report."""
    die_with(parent)
    from ._load import read_upload

    try:
        report = read_upload(
            load_class,
            path,
            tenant_id=tenant_id,
            seen=seen,
            sink=lambda table, rows: messages.put(("rows", table, marshal.dumps(rows))),
            progress=(lambda done: messages.put(("progress", done))) if report_progress else None,
            limits=limits,
            report_path=report_path,
        )
        messages.put(("done", report))
    except LoadError as error:
        messages.put(("failed", error.message, error.problems))
    except BaseException:
        messages.put(("crashed", traceback.format_exc()))
    finally:
        messages.close()
        messages.join_thread()


def die_with(parent: int) -> None:
    """End this process when the process ``parent`` ends: a reader left running would hold
    its memory and the upload's files for nothing."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # died before the signal was asked for
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_WATCHDOG_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
