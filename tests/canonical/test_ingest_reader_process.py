"""Reading an upload in a child process fails as loudly as reading it in-process: a child
that dies or breaks is an error in the writing process, and the load's transaction (which
this process alone holds) rolls back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from industrydata.canonical.ingest._load import Load, run_load
from industrydata.canonical.statistics import count_rows
from industrydata.errors import LoadError, LoadProblem

TENANT = "4c2b7e10-0000-4000-8000-000000000001"


class _DyingLoad(Load):
    """Adds rows, then ends the reading process the hard way."""

    source_system = "Test"

    @classmethod
    def check(cls, upload: object) -> list[LoadProblem]:
        return []

    def load_files(self) -> None:
        self.tables["RefDefinition"].flush()
        os._exit(3)


class _BrokenLoad(_DyingLoad):
    """Raises an unexpected error while reading."""

    def load_files(self) -> None:
        raise ZeroDivisionError("a bug")


def test_read_in_child_process_that_dies_is_a_load_error(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"stopped \(exit code 3\)"):
        run_load(
            _DyingLoad,
            engine,
            tmp_path,
            tenant_id=TENANT,
            now=None,
            progress=None,
            parallel=True,
            what="test",
        )

    assert sum(count_rows(engine, TENANT).values()) == 0


def test_read_in_child_process_that_breaks_raises_its_traceback(
    engine: Engine, tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="ZeroDivisionError: a bug"):
        run_load(
            _BrokenLoad,
            engine,
            tmp_path,
            tenant_id=TENANT,
            now=None,
            progress=None,
            parallel=True,
            what="test",
        )

    assert sum(count_rows(engine, TENANT).values()) == 0


_SLEEPING_IMPORT = """
import sys, time
from pathlib import Path
from industrydata.canonical.ingest._load import Load, run_load
from industrydata.store import create_store_engine, upgrade_to_head


class SleepingLoad(Load):
    source_system = "Test"

    @classmethod
    def check(cls, upload):
        return []

    def load_files(self):
        time.sleep(600)


if __name__ == "__main__":
    engine = create_store_engine(sys.argv[1])
    upgrade_to_head(engine)
    run_load(SleepingLoad, engine, Path(sys.argv[2]), tenant_id=sys.argv[3], now=None,
             progress=None, parallel=True, what="test")
"""


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _reader_of(pid: int) -> int | None:
    for child in _children(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing.spawn" in command or b"spawn_main" in command:
            return child
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_reader_child_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "sleeping_import.py"
    script.write_text(_SLEEPING_IMPORT)
    (tmp_path / "drop").mkdir()
    parent = subprocess.Popen(
        [
            sys.executable,
            str(script),
            f"sqlite:///{tmp_path / 'store.db'}",
            str(tmp_path / "drop"),
            TENANT,
        ]
    )
    try:
        deadline = time.monotonic() + 60
        reader = None
        while reader is None and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.2)
            reader = _reader_of(parent.pid)
        assert reader is not None, "the import never started its reader process"
        time.sleep(1)  # past the child's start-up: it now watches its parent

        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()

        deadline = time.monotonic() + 10
        while Path(f"/proc/{reader}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{reader}").exists() or _is_zombie(reader)
    finally:
        if parent.poll() is None:
            parent.kill()


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
