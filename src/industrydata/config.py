"""Settings: one object, built once by the CLI or a test, and passed down.

Every field can be set through an environment variable with the prefix ``INDUSTRYDATA_``
(``INDUSTRYDATA_DATABASE_URL``, ``INDUSTRYDATA_LOCAL_DESTINATION_ROOTS`` ...).
Nothing here is read at import time.
"""

from __future__ import annotations

import os
from datetime import time
from enum import Enum
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

__all__ = ["Mode", "Settings"]

DEFAULT_ISSUER = "industrydata-dev"
DEFAULT_AUDIENCE = "https://graph.microsoft.com"


class Mode(str, Enum):
    """Where runs, imports and the periodic work execute."""

    EMBEDDED = "embedded"
    """One process: runs in its threads, the periodic work in a thread (SQLite or PostgreSQL)."""
    PRODUCTION = "production"
    """Stateless API processes that only enqueue, and `industrydata worker` processes that
    execute runs, imports and the periodic work as procrastinate jobs (PostgreSQL only)."""


class Settings(BaseSettings):
    """Runtime configuration of the service, validated when built."""

    # populate_by_name: fields with an alias (a renamed variable) still take their name.
    model_config = SettingsConfigDict(
        env_prefix="INDUSTRYDATA_", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(
        default=Path("./data"),
        description="Folder for the SQLite database, signing keys, secrets and the local lake.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default is SQLite at <data_dir>/industrydata.db. "
        "postgresql:// URLs are rewritten to the psycopg 3 driver.",
    )
    local_destination_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Extra folders (os.pathsep-separated) where file:// destinations may point, "
        "besides <data_dir>/lake.",
    )
    allowed_storage_endpoints: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        # INDUSTRYDATA_ALLOWED_HTTP_ENDPOINTS is the variable's former name, still read.
        validation_alias=AliasChoices(
            "INDUSTRYDATA_ALLOWED_STORAGE_ENDPOINTS", "INDUSTRYDATA_ALLOWED_HTTP_ENDPOINTS"
        ),
        description="Comma-separated origins (scheme://host:port) of storage endpoints a "
        "destination may use besides the public Azure storage hosts over https, at any "
        "address (such as the Azurite emulator).",
    )
    token_issuer: str = Field(
        default=DEFAULT_ISSUER,
        description="Expected `iss` of bearer tokens. The built-in development identity "
        "provider signs with this issuer.",
    )
    token_audience: str = Field(
        default=DEFAULT_AUDIENCE, description="Expected `aud` of bearer tokens."
    )
    jwks_url: str | None = Field(
        default=None,
        description="JWKS of an external OpenID issuer; unset means the built-in development "
        "identity provider (keys in <data_dir>/keys).",
    )
    token_lifetime_seconds: int = Field(
        default=3600, ge=60, description="Lifetime of tokens minted by the development provider."
    )
    invitation_lifetime_days: int = Field(
        default=14, ge=1, description="Days an invitation stays pending before it expires."
    )
    default_schedule_time: time = Field(
        default=time(6, 0), description="UTC time of day for daily runs when none is given."
    )
    run_throttle_count: int = Field(
        default=5, ge=1, description="On-demand runs allowed per flow within the throttle window."
    )
    run_throttle_hours: float = Field(
        default=12, gt=0, description="Length of the on-demand run throttle window, in hours."
    )
    run_history_days: int = Field(
        default=30, ge=1, description="Days a finished run is kept before it is purged."
    )
    scheduler_interval_seconds: float = Field(
        default=30,
        gt=0,
        description="How often scheduled runs are looked for (and, embedded, invitation "
        "expiry, run retention and stale runs); in production a whole divisor of 60.",
    )
    store_lock_wait_seconds: float = Field(
        default=3,
        gt=0,
        le=60,
        description="How long a write of the serving process waits for the store's write lock "
        "(SQLite) or a row lock (PostgreSQL) before the API answers 503 with Retry-After.",
    )
    run_finish_retry_seconds: float = Field(
        default=30,
        ge=0,
        description="How long a run's executor keeps retrying the write of its outcome while "
        "the store is busy; after that the periodic tick retries it.",
    )
    page_size: int = Field(
        default=100, ge=1, le=999, description="Server page size of collection responses."
    )
    public_url: str | None = Field(
        default=None,
        description="Absolute base URL clients reach the service at (scheme, host, optional "
        "port and path), used in Location, @odata.context and @odata.nextLink; unset means "
        "the address the server listens on. The request's Host header is never used, unless "
        "listed in allowed_hosts.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Host header values (host or host:port) for which absolute "
        "URLs use the request's own scheme and host instead of public_url.",
    )
    max_request_head_bytes: int = Field(
        default=32 * 1024,
        ge=4096,
        le=1024 * 1024,
        description="Largest request line plus headers `industrydata serve` reads; a longer "
        "head is refused with 400 and the connection closed.",
    )
    delta_deletion_vectors: bool = Field(
        default=False,
        description=(
            "The server's default for delta flows whose accept gave no "
            "deltaOptions.deletionVectors: true deletes changed and removed rows with deletion "
            "vectors (a run's cost follows the change, but only readers with the "
            "deletionVectors feature can read the tables); false (the default, readable by "
            "every Delta reader) rewrites the files holding them."
        ),
    )

    mode: Mode = Field(
        default=Mode.EMBEDDED,
        description="embedded (the default: one process does everything) or production "
        "(API processes only enqueue; `industrydata worker` processes execute runs, imports "
        "and the periodic work; needs a postgresql:// database_url).",
    )
    worker_heartbeat_seconds: float = Field(
        default=10,
        gt=0,
        le=60,
        description="Production: how often a worker writes its heartbeat to the task queue.",
    )
    worker_stalled_seconds: float = Field(
        default=30,
        gt=0,
        le=3600,
        description="Production: a worker whose heartbeat is this old is dead; its runs are "
        "marked interrupted and retried once, within this plus worker_recovery_seconds.",
    )
    worker_recovery_seconds: int = Field(
        default=10,
        ge=1,
        le=60,
        description="Production: how often a worker looks for runs of dead workers "
        "(a divisor of 60).",
    )
    worker_drain_seconds: float = Field(
        default=30,
        ge=0,
        le=3600,
        description="Production: on SIGTERM a worker lets its jobs finish for this long, then "
        "interrupts them (an interrupted run is retried once by another worker).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="How `serve` and `worker` write their logs to stderr: text (a line per "
        "record) or json (one JSON object per line, with the request, run, job and tenant "
        "ids bound when it was written; see docs/operations.md).",
    )

    @field_validator("local_destination_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(part) for part in value.split(os.pathsep) if part.strip()]
        return value

    @field_validator("allowed_storage_endpoints", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for entry in value:
                _check_origin(str(entry))
        return value

    @field_validator("public_url")
    @classmethod
    def _absolute_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.port == 0
            or parts.username is not None
            or parts.query
            or parts.fragment
        ):
            raise ValueError(
                "public_url must be an absolute http(s) URL without credentials, query or "
                "fragment, such as https://data.example.org/industrydata"
            )
        return value.strip().rstrip("/")

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            return [str(host).strip().lower() for host in value if str(host).strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _use_psycopg3(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @model_validator(mode="after")
    def _production_needs_postgresql(self) -> Settings:
        if self.mode is Mode.PRODUCTION:
            if not (self.database_url or "").startswith("postgresql"):
                raise ValueError(
                    "mode=production needs database_url=postgresql://...: the task queue "
                    "(procrastinate) lives in PostgreSQL"
                )
            for name in ("scheduler_interval_seconds", "worker_recovery_seconds"):
                seconds = getattr(self, name)
                if seconds != int(seconds) or 60 % int(seconds):
                    raise ValueError(
                        f"in production mode {name} must be a whole divisor of 60 (1, 2, 3, "
                        "4, 5, 6, 10, 12, 15, 20, 30 or 60): it becomes a cron schedule"
                    )
        return self

    @model_validator(mode="after")
    def _absolute_paths(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        self.local_destination_roots = [
            root.expanduser().resolve() for root in self.local_destination_roots
        ]
        return self

    @property
    def lake_dir(self) -> Path:
        """The always-allowed root for local destinations."""
        return self.data_dir / "lake"

    @property
    def effective_database_url(self) -> str:
        """The configured database, or the embedded SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'industrydata.db'}"

    @property
    def allowed_local_roots(self) -> list[Path]:
        """Every folder a file:// destination may resolve into."""
        return [self.lake_dir.resolve(), *self.local_destination_roots]


def _check_origin(entry: str) -> None:
    """Refuse an allow-list entry that is not ``http(s)://host[:port]``: a typo must not
    quietly list nothing (or more than meant)."""
    try:
        parts = urlsplit(entry)
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.path.strip("/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            "allowed_storage_endpoints entries must be origins such as "
            "http://127.0.0.1:10000 (scheme, host and port only)"
        )
