"""Settings: read from INDUSTRYDATA_* variables, validated when built, each one documented."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from industrydata.config import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INDUSTRYDATA_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("INDUSTRYDATA_DATABASE_URL", "postgresql://u@127.0.0.1/db")
    monkeypatch.setenv(
        "INDUSTRYDATA_LOCAL_DESTINATION_ROOTS",
        os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]),
    )
    monkeypatch.setenv(
        "INDUSTRYDATA_ALLOWED_STORAGE_ENDPOINTS", "http://127.0.0.1:10000/, http://[::1]:10000"
    )

    settings = Settings()

    assert settings.data_dir == (tmp_path / "d").resolve()
    assert settings.database_url == "postgresql+psycopg://u@127.0.0.1/db"
    assert settings.local_destination_roots == [
        (tmp_path / "a").resolve(),
        (tmp_path / "b").resolve(),
    ]
    assert settings.allowed_storage_endpoints == ["http://127.0.0.1:10000", "http://[::1]:10000"]
    assert settings.allowed_local_roots[0] == (tmp_path / "d" / "lake").resolve()


def test_allowed_storage_endpoints_former_variable_name_still_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INDUSTRYDATA_ALLOWED_HTTP_ENDPOINTS", "http://127.0.0.1:10000")
    assert Settings().allowed_storage_endpoints == ["http://127.0.0.1:10000"]

    monkeypatch.setenv("INDUSTRYDATA_ALLOWED_STORAGE_ENDPOINTS", "https://storage.test")
    assert Settings().allowed_storage_endpoints == ["https://storage.test"]

    monkeypatch.setenv("ALLOWED_STORAGE_ENDPOINTS", "http://unprefixed.test")
    monkeypatch.delenv("INDUSTRYDATA_ALLOWED_STORAGE_ENDPOINTS")
    monkeypatch.delenv("INDUSTRYDATA_ALLOWED_HTTP_ENDPOINTS")
    assert Settings().allowed_storage_endpoints == []
    assert Settings(allowed_storage_endpoints=["http://x.test"]).allowed_storage_endpoints == [
        "http://x.test"
    ]


@pytest.mark.parametrize(
    "entry",
    [
        "127.0.0.1:10000",
        "ftp://127.0.0.1:10000",
        "http://",
        "http://127.0.0.1:notaport",
        "http://user:secret@127.0.0.1:10000",
        "http://127.0.0.1:10000/devstoreaccount1",
        "http://127.0.0.1:10000?x=1",
    ],
)
def test_a_malformed_storage_endpoint_entry_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, entry: str
) -> None:
    monkeypatch.setenv("INDUSTRYDATA_ALLOWED_STORAGE_ENDPOINTS", f"http://[::1]:10000,{entry}")
    with pytest.raises(ValidationError, match="origins such as"):
        Settings()


def test_default_database_is_sqlite_in_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.effective_database_url == f"sqlite:///{tmp_path.resolve() / 'industrydata.db'}"


def test_delta_tables_are_readable_by_every_reader_by_default(tmp_path: Path) -> None:
    """Deletion vectors are a flow's choice; the server's default is compatibility."""
    assert Settings(data_dir=tmp_path).delta_deletion_vectors is False


def test_invalid_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDUSTRYDATA_PAGE_SIZE", "0")
    with pytest.raises(ValueError, match="page_size"):
        Settings()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented_in_the_readme(name: str) -> None:
    assert f"`INDUSTRYDATA_{name.upper()}`" in README.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "url",
    [
        "data.example.org",
        "ftp://data.example.org",
        "https://",
        "https://user:secret@data.example.org",
        "https://data.example.org/?x=1",
        "https://data.example.org/#top",
        "https://data.example.org:0",
    ],
)
def test_public_url_must_be_an_absolute_http_url(url: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, public_url=url)


def test_settings_read_public_url_and_allowed_hosts_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INDUSTRYDATA_PUBLIC_URL", "https://data.example.org/")
    monkeypatch.setenv("INDUSTRYDATA_ALLOWED_HOSTS", "a.example, B.example:8443")
    settings = Settings()
    assert settings.public_url == "https://data.example.org"
    assert settings.allowed_hosts == ["a.example", "b.example:8443"]


def test_production_mode_needs_postgresql(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="postgresql"):
        Settings(data_dir=tmp_path, mode="production")
    settings = Settings(
        data_dir=tmp_path, mode="production", database_url="postgresql://u@127.0.0.1/db"
    )
    assert settings.mode.value == "production"


@pytest.mark.parametrize(
    "name", ["INDUSTRYDATA_SCHEDULER_INTERVAL_SECONDS", "INDUSTRYDATA_WORKER_RECOVERY_SECONDS"]
)
def test_production_intervals_must_divide_a_minute(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("INDUSTRYDATA_MODE", "production")
    monkeypatch.setenv("INDUSTRYDATA_DATABASE_URL", "postgresql://u@127.0.0.1/db")
    monkeypatch.setenv(name, "7")
    with pytest.raises(ValidationError, match="divisor of 60"):
        Settings(data_dir=tmp_path)
    monkeypatch.setenv(name, "15")
    Settings(data_dir=tmp_path)
