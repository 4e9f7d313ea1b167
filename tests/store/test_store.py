"""The store: migrations bring both databases to the same schema, idempotently; credentials
are sealed at rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from industrydata.canonical import CANONICAL_TABLES, sql_table
from industrydata.store import CredentialSealer, create_store_engine, metadata, upgrade_to_head


def test_upgrade_creates_every_table_and_is_idempotent(store_url: str) -> None:
    engine = create_store_engine(store_url)
    upgrade_to_head(engine)

    inspector = inspect(engine)
    assert set(metadata.tables) <= set(inspector.get_table_names())
    for table in CANONICAL_TABLES:
        columns = [column["name"] for column in inspector.get_columns(sql_table(table).name)]
        assert columns == ["TenantId", *table.column_names, "RowNumber", "RowVersion"]
    engine.dispose()


def test_one_running_run_per_flow_is_enforced_by_the_database(store_url: str) -> None:
    indexes = inspect(create_store_engine(store_url)).get_indexes("run")
    assert any(
        index["name"] == "uq_run_one_running_per_flow" and index["unique"] for index in indexes
    )


def test_sealed_credential_round_trips_and_hides_the_secret(tmp_path: Path) -> None:
    sealer = CredentialSealer(tmp_path / "keys" / "credential.key")
    secret = {"sasToken": "sv=2024&sig=" + "s3cr3t" * 4}

    sealed = sealer.seal(secret)

    assert b"s3cr3t" not in sealed
    assert CredentialSealer(tmp_path / "keys" / "credential.key").open(sealed) == secret
    assert (tmp_path / "keys" / "credential.key").stat().st_mode & 0o077 == 0


def test_sealed_credential_needs_the_same_key(tmp_path: Path) -> None:
    sealed = CredentialSealer(tmp_path / "a.key").seal({"accountKey": "k"})
    with pytest.raises(ValueError, match="cannot be decrypted") as raised:
        CredentialSealer(tmp_path / "b.key").open(sealed)
    assert "k" not in str(raised.value).split()
