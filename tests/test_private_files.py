"""What the service keeps to itself is readable by its user alone: the data dir and the keys
folder 0700, the SQLite database with its -wal and -shm files and every key file 0600, both
when the service creates them and when it finds them more open (an older version's data
dir). Published lake files are not made private."""

from __future__ import annotations

import multiprocessing
import sqlite3
import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from typer.testing import CliRunner

from industrydata.cli import app
from industrydata.config import Settings
from industrydata.private_files import publish_private_file_once
from industrydata.service import Service

USER = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
TENANT = "5d0c3b1a-7e2f-4a6b-9c8d-0e1f2a3b4c5d"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _assert_private(data_dir: Path) -> None:
    assert _mode(data_dir) == 0o700
    database = data_dir / "industrydata.db"
    for file in (
        database,
        database.with_name("industrydata.db-wal"),
        database.with_name("industrydata.db-shm"),
    ):
        assert _mode(file) == 0o600, file
    assert _mode(data_dir / "keys") == 0o700
    for key in ("signing-key.pem", "credential.key"):
        assert _mode(data_dir / "keys" / key) == 0o600, key


def test_a_new_data_dir_is_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"

    service = Service(Settings(data_dir=data_dir))
    try:
        _assert_private(data_dir)
        assert _mode(tmp_path / "new") == 0o700
    finally:
        service.close()


def test_starting_tightens_a_data_dir_left_open(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    Service(Settings(data_dir=data_dir)).close()
    database = data_dir / "industrydata.db"
    for path in (data_dir, data_dir / "keys", data_dir / "lake"):
        path.chmod(0o755)
    for path in (database, *(data_dir / "keys").iterdir()):
        path.chmod(0o644)
    connection = sqlite3.connect(database)  # an old version's connection: -wal, -shm at 0644
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE IF NOT EXISTS left_open (x)")
    for suffix in ("-wal", "-shm"):
        assert _mode(database.with_name(database.name + suffix)) == 0o644

    service = Service(Settings(data_dir=data_dir))
    try:
        _assert_private(data_dir)
        assert _mode(data_dir / "lake") == 0o755  # published files are the consumers'
    finally:
        service.close()
        connection.close()


def test_cli_commands_create_a_private_data_dir(tmp_path: Path) -> None:
    """add-user creates the data dir and its database; token, run on it, creates the keys."""
    runner = CliRunner()
    data_dir = tmp_path / "a"
    for command in (
        ["directory", "add-user", "--tenant", TENANT, "--id", USER, "--display-name", "A"],
        ["token", "--tenant", TENANT, "--user", USER],
    ):
        result = runner.invoke(app, [*command, "--data-dir", str(data_dir)])
        assert result.exit_code == 0, result.output

    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "industrydata.db") == 0o600
    assert _mode(data_dir / "keys") == 0o700
    assert _mode(data_dir / "keys" / "signing-key.pem") == 0o600


def _make_key(args: tuple[str, int]) -> bytes:
    folder, index = args
    return publish_private_file_once(Path(folder) / "credential.key", f"key {index}".encode())


def test_processes_making_a_key_at_once_all_use_the_first_one_published(tmp_path: Path) -> None:
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        keys = list(pool.map(_make_key, [(str(tmp_path), index) for index in range(12)]))
    published = (tmp_path / "credential.key").read_bytes()
    assert set(keys) == {published}
    assert stat.S_IMODE((tmp_path / "credential.key").stat().st_mode) == 0o600
    assert [path.name for path in tmp_path.iterdir()] == ["credential.key"]
