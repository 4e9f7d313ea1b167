"""Each export runs in a child process of its own.

Why a process: the ADBC SQLite driver carries its own copy of SQLite, and two copies of SQLite
in one process corrupt a WAL database (POSIX locks are per process, so one copy releases the
other's locks; see sqlite.org "How To Corrupt", 2.2.1). The serving process keeps Python's
sqlite3; the child reads with ADBC. The child reports each table over a pipe and the parent
records the progress, so the child never writes to the store. The child goes on past every
table but the last without waiting (a wait per table would leave the CPU idle while the
parent commits); after the last it waits for the parent's word to publish, so it never
publishes a snapshot for a run the parent has given up (flow deleted, service stopping or
gone). A killed child leaves only an unpublished folder (with ``delta``:
the tables it committed, each whole, and data files no commit names).
"""

from __future__ import annotations

import _thread
import ctypes
import functools
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..canonical.reader import DRIVER_MODULES
from ..errors import ExportError, IndustryDataError
from ..lake import DestinationIdentity, TableResult, open_destination, parse_destination

__all__ = ["ExportJob", "ExportStopped", "run_export_process", "start_export_server"]

logger = logging.getLogger(__name__)

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["industrydata.runs.export", *DRIVER_MODULES, "industrydata.cli"])
"""The export server imports, once, what every export needs, and the CLI: each child runs
the parent's main script again (multiprocessing does, to find functions defined there; the
forkserver's own ``__main__`` preload does not work on Python 3.11), and the service's main
script is the ``industrydata`` command, which imports the CLI. With these loaded a small
export's child starts in about 0.1 s of CPU instead of about 0.6 s."""
_POLL_SECONDS = 0.2
_STOP_GRACE_SECONDS = 5.0
HEARTBEAT_SECONDS = 30.0
QUIET_CHILD_SECONDS = 0.25
"""A child quiet this long after a table gets a heartbeat, which writes the progress that
``on_progress`` may have left unwritten (it need not write every table)."""
_PR_SET_PDEATHSIG = 1
_ORPHAN_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class ExportJob:
    """Everything the child needs; it crosses the process boundary by pickling over a pipe."""

    store_url: str
    tenant_id: str
    run_id: str
    destination_url: str
    format: str
    credential: dict[str, str] | None
    snapshot_time: datetime
    allowed_local_roots: tuple[Path, ...]
    allowed_storage_endpoints: tuple[str, ...]
    delta_deletion_vectors: bool = True
    delta_change_data_feed: bool = True
    claimed_destination: DestinationIdentity | None = None
    """The destination the flow claimed at accept; the run writes nowhere else."""
    flow_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"ExportJob(tenant_id={self.tenant_id!r}, run_id={self.run_id!r}, "
            f"format={self.format!r})"
        )


@functools.cache
def start_export_server() -> threading.Event:
    """Start the process every export child is forked from, which imports what an export
    needs once (``forkserver`` preload), in the background: otherwise the first run after a
    start pays for it. The event is set once the server forks children. Once per process:
    later calls return the same event (an export starts a server that died by itself)."""
    ready = threading.Event()

    def warm_up() -> None:
        try:
            forkserver.ensure_running()
            child = _CONTEXT.Process(target=_ready_child, name="industrydata-export-warm-up")
            child.start()
            child.join()
        except Exception:
            logger.exception("the export server did not start; each export will try again")
        finally:
            ready.set()

    threading.Thread(target=warm_up, name="industrydata-export-server", daemon=True).start()
    return ready


def _ready_child() -> None:
    """Forked only to learn that the export server has loaded its modules."""


class ExportStopped(Exception):
    """The parent stopped the child (the run was cancelled or the service is stopping)."""


class _ParentGone(Exception):
    """The parent said stop, or is gone: the snapshot must not be published."""


def _die_with_parent(lifeline: Connection) -> None:
    """End this child the moment the process that started the export is gone, whatever the
    child is doing (even waiting on a database lock).

    The forkserver, not the service, is this child's parent, and it outlives the service
    while any child of it runs: so the kernel's parent-death signal (set too, for the
    forkserver's own death) is not enough. The service holds the writing end of
    ``lifeline`` and never writes: the reading end turns readable when the service's
    process ends, however it ends. The export is then interrupted (and cleans up); one
    that does not end within ``_ORPHAN_GRACE_SECONDS`` is killed, and the next run sweeps
    its folder.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch() -> None:
        lifeline.poll(None)
        _thread.interrupt_main()  # the export unwinds and removes its unpublished folder
        time.sleep(_ORPHAN_GRACE_SECONDS)
        os.kill(os.getpid(), signal.SIGKILL)  # it was blocked outside Python (a lock wait)

    threading.Thread(target=watch, name="industrydata-lifeline", daemon=True).start()


def _child(job: ExportJob, channel: Connection, lifeline: Connection) -> None:
    from .export import export_snapshot

    _die_with_parent(lifeline)

    def on_progress(result: TableResult, done: int, total: int) -> None:
        """Report a table; after the last, wait for the parent's word to publish. Before
        it, go on unless the parent has already said stop."""
        try:
            channel.send(("progress", result, done, total))
            if not _awaits_answer(done, total) and not channel.poll():
                return
            go_on = channel.recv()
        except (OSError, EOFError) as exc:
            raise _ParentGone("the service is gone") from exc
        if not go_on:
            raise _ParentGone("the service stopped the run")

    try:
        spec = parse_destination(job.destination_url, format=job.format, credential=job.credential)
        destination = open_destination(
            spec,
            allowed_local_roots=list(job.allowed_local_roots),
            allowed_storage_endpoints=list(job.allowed_storage_endpoints),
        )
        if job.claimed_destination is not None:
            _check_claimed(destination.identity(), job.claimed_destination)
        result = export_snapshot(
            job.store_url,
            job.tenant_id,
            destination,
            format=spec.format,
            run_id=job.run_id,
            snapshot_time=job.snapshot_time,
            on_progress=on_progress,
            deletion_vectors=job.delta_deletion_vectors,
            change_data_feed=job.delta_change_data_feed,
            flow_id=job.flow_id,
        )
    except (_ParentGone, KeyboardInterrupt):
        pass
    except IndustryDataError as error:
        _tell(channel, ("error", type(error).__name__, error.code, error.message, error.target))
    except Exception as error:
        _tell(channel, ("crash", type(error).__name__))
    else:
        _tell(channel, ("done", result.snapshot_id))
    finally:
        channel.close()


def _awaits_answer(done: int, total: int) -> bool:
    """Whether the child waits for the parent's word after this table: only after the last,
    before it publishes. Before that the parent writes only to say stop."""
    return done >= total


def _check_claimed(opened: DestinationIdentity, claimed: DestinationIdentity) -> None:
    """The destination the URL leads to now must be the one claimed at accept: a local
    folder replaced by a link to another folder (another flow's) leads elsewhere."""
    if opened != claimed:
        raise ExportError(
            "The destination is no longer the folder accepted with the invitation (a folder "
            "on its path was replaced by a symbolic link?); nothing was written.",
            target="url",
        )


def _tell(channel: Connection, message: tuple[Any, ...]) -> None:
    with suppress(OSError):
        channel.send(message)


def run_export_process(
    job: ExportJob,
    *,
    on_progress: Callable[[TableResult, int, int], bool],
    on_heartbeat: Callable[[], bool],
    should_stop: threading.Event | None = None,
) -> str:
    """Export in a child process; returns the snapshot id.

    Args:
        job: what to export where.
        on_progress: called in this process after each table; returning False stops the child.
        on_heartbeat: called every ``HEARTBEAT_SECONDS`` while a table is being written, so
            other processes see the run is alive, and ``QUIET_CHILD_SECONDS`` after a table
            when no other follows; returning False stops the child.
        should_stop: set when the service stops or the run is cancelled; the child is
            stopped at once (within ``_POLL_SECONDS``).

    Raises:
        ExportStopped: the child was stopped (on_progress said so, or should_stop was set).
        IndustryDataError: the child's export failed with this error (same code and message).
        ExportError: the child died without a word (killed, out of memory).
    """
    receiver, sender = _CONTEXT.Pipe(duplex=True)
    lifeline_reader, lifeline = _CONTEXT.Pipe(duplex=False)
    process = _CONTEXT.Process(
        target=_child, args=(job, sender, lifeline_reader), name="industrydata-export"
    )
    process.start()
    sender.close()
    lifeline_reader.close()
    last_beat = time.monotonic()
    beat_after = HEARTBEAT_SECONDS
    try:
        while True:
            if should_stop is not None and should_stop.is_set():
                raise ExportStopped("the service is stopping")
            if time.monotonic() - last_beat >= beat_after:
                last_beat = time.monotonic()
                beat_after = HEARTBEAT_SECONDS
                if not on_heartbeat():
                    raise ExportStopped("the run is no longer running")
            try:
                if not receiver.poll(min(_POLL_SECONDS, beat_after)) and process.is_alive():
                    continue
                message = receiver.recv()
            except (EOFError, OSError):
                process.join(_STOP_GRACE_SECONDS)
                raise ExportError(
                    f"The export process ended unexpectedly (exit code {process.exitcode})."
                ) from None
            kind = message[0]
            if kind == "progress":
                last_beat = time.monotonic()
                beat_after = QUIET_CHILD_SECONDS
                go_on = on_progress(message[1], message[2], message[3])
                stopping = should_stop is not None and should_stop.is_set()
                if stopping or not go_on or _awaits_answer(message[2], message[3]):
                    _tell(receiver, go_on and not stopping)
                if stopping:
                    raise ExportStopped("the service is stopping")
                if not go_on:
                    raise ExportStopped("the run is no longer running")
            elif kind == "done":
                return message[1]
            elif kind == "error":
                raise _rebuild(*message[1:])
            else:
                raise ExportError(f"The export failed because of an internal error ({message[1]}).")
    finally:
        receiver.close()
        _stop(process)
        lifeline.close()


def _rebuild(class_name: str, code: str, message: str, target: str | None) -> IndustryDataError:
    """The child's domain error, as the same class when it is one of ours."""
    from .. import errors

    error_class: Any = getattr(errors, class_name, None)
    if isinstance(error_class, type) and issubclass(error_class, IndustryDataError):
        try:
            error = error_class(message, target=target)
        except TypeError:
            error = ExportError(message, target=target)
    else:
        error = ExportError(message, target=target)
    error.code = code
    return error


def _stop(process: Any) -> None:
    if process.is_alive():
        process.terminate()
        process.join(_STOP_GRACE_SECONDS)
    if process.is_alive():
        process.kill()
    process.join()
