"""Reading an upload in a child process fails as loudly as reading it in-process: a child
that dies or breaks is an error in the writing process, and the load's transaction (which
this process alone holds) rolls back."""

from __future__ import annotations

import os
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
