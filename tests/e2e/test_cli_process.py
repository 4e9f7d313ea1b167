"""The real ``industrydata`` executable fails the way an operator's script expects: one line
``error: ...`` on stderr and exit status 1, never a traceback, whatever broke."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

import industrydata
from tests.canonical.ingest_support import ONEROSTER_DROP
from tests.damaged_uploads import ZIP_DAMAGES, damaged_zip
from tests.e2e.conftest import CLI, CLI_TIMEOUT_SECONDS, child_environment


def industrydata_process(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``industrydata ARGS`` as a process, whatever its exit status."""
    return subprocess.run(
        [str(CLI), *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        env=child_environment(),
        timeout=CLI_TIMEOUT_SECONDS,
    )


@pytest.mark.parametrize("damage", sorted(ZIP_DAMAGES))
def test_a_damaged_zip_is_one_line_of_error_from_the_executable(
    tmp_path: Path, damage: str
) -> None:
    upload = damaged_zip(tmp_path / "upload.zip", ONEROSTER_DROP, damage)
    data_dir = tmp_path / "data"
    data_dir.mkdir()

    completed = industrydata_process(
        "import",
        "oneroster-csv",
        upload,
        "--tenant",
        str(uuid.uuid4()),
        "--create-tenant",
        "--data-dir",
        data_dir,
    )

    assert completed.returncode == 1, completed.stdout + completed.stderr
    (line,) = completed.stderr.splitlines()
    assert line.startswith("error: ")
    assert completed.stdout == ""


def test_version_from_the_executable() -> None:
    completed = industrydata_process("--version")

    assert (completed.returncode, completed.stdout, completed.stderr) == (
        0,
        f"industrydata {industrydata.__version__}\n",
        "",
    )
