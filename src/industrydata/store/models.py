"""ORM tables of the service itself: tenant directory, flows, invitations and runs.

The canonical roster tables are defined in ``industrydata.canonical`` on the same metadata.
Times are naive UTC.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ._metadata import Base

__all__ = ["DestinationClaim", "DirectoryUser", "Flow", "Invitation", "LoadJob", "Run"]

GUID = String(36)


class DirectoryUser(Base):
    """A user of a tenant's directory, with whether it holds the Global Administrator role."""

    __tablename__ = "directory_user"

    tenant_id: Mapped[str] = mapped_column(GUID, primary_key=True)
    object_id: Mapped[str] = mapped_column(GUID, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(256))
    user_principal_name: Mapped[str | None] = mapped_column(String(256))
    is_global_admin: Mapped[bool] = mapped_column(Boolean, default=False)


class Flow(Base):
    """A dataShareOutgoingFlow."""

    __tablename__ = "flow"
    __table_args__ = (UniqueConstraint("tenant_id", "share_name"),)

    id: Mapped[str] = mapped_column(GUID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(GUID, index=True)
    display_name: Mapped[str] = mapped_column(String(256))
    share_name: Mapped[str] = mapped_column(String(90))
    invitee_user_id: Mapped[str] = mapped_column(GUID)
    readiness_status: Mapped[str] = mapped_column(String(32))
    sharing_state: Mapped[str] = mapped_column(String(32))
    etag: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    modified_at: Mapped[datetime] = mapped_column(DateTime)

    invitations: Mapped[list[Invitation]] = relationship(
        back_populates="flow", cascade="all, delete-orphan", order_by="Invitation.created_at"
    )
    runs: Mapped[list[Run]] = relationship(
        back_populates="flow", cascade="all, delete-orphan", order_by="Run.start_at"
    )


class Invitation(Base):
    """An invitation of a flow; only the newest one of a flow is current."""

    __tablename__ = "invitation"

    id: Mapped[str] = mapped_column(GUID, primary_key=True)
    flow_id: Mapped[str] = mapped_column(ForeignKey("flow.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(GUID)
    invitee_user_id: Mapped[str] = mapped_column(GUID)
    status: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    responded_at: Mapped[datetime | None] = mapped_column(DateTime)
    destination_url: Mapped[str | None] = mapped_column(Text)
    destination_format: Mapped[str | None] = mapped_column(String(16))
    credential_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    schedule_frequency: Mapped[str | None] = mapped_column(String(16))
    schedule_time_of_day: Mapped[time | None] = mapped_column(Time)
    delta_deletion_vectors: Mapped[bool | None] = mapped_column(Boolean)
    """The accept's ``deltaOptions.deletionVectors``; None: not chosen."""
    delta_change_data_feed: Mapped[bool | None] = mapped_column(Boolean)
    """The accept's ``deltaOptions.changeDataFeed``; None: not chosen (on)."""

    flow: Mapped[Flow] = relationship(back_populates="invitations")

    def deletion_vectors(self, server_default: bool) -> bool:
        """Whether ``delta`` runs delete with deletion vectors: the flow's choice at accept,
        else the server's default (``INDUSTRYDATA_DELTA_DELETION_VECTORS``) of the moment."""
        if self.delta_deletion_vectors is None:
            return server_default
        return self.delta_deletion_vectors

    def change_data_feed(self) -> bool:
        """Whether ``delta`` runs write the Change Data Feed: on unless the flow chose it off
        (a change's old values cost a read of the files that held them)."""
        return self.delta_change_data_feed is not False


class Run(Base):
    """An outgoingFlowRun: one publication of a snapshot to the flow's destination."""

    __tablename__ = "run"
    __table_args__ = (
        Index("ix_run_status", "status"),
        Index(
            "uq_run_one_running_per_flow",
            "flow_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: Mapped[str] = mapped_column(GUID, primary_key=True)
    flow_id: Mapped[str] = mapped_column(ForeignKey("flow.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(GUID)
    display_name: Mapped[str | None] = mapped_column(String(256))
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    start_at: Mapped[datetime] = mapped_column(DateTime)
    end_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    blocking_error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    statistics: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    flow: Mapped[Flow] = relationship(back_populates="runs")


class DestinationClaim(Base):
    """The destination a flow accepted, which no other flow may use (``store.claims``).

    ``namespace`` is a file system or one blob container at one endpoint, ``path`` the
    ``/``-separated folder inside it ('' for its root); see ``lake.DestinationIdentity``.
    Deleting the flow releases the claim. No unique index: paths may be longer than an
    index entry, and ``claim_destination`` serialises claims and checks nesting anyway.
    """

    __tablename__ = "destination_claim"

    flow_id: Mapped[str] = mapped_column(
        ForeignKey("flow.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[str] = mapped_column(GUID)
    namespace: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    claimed_at: Mapped[datetime] = mapped_column(DateTime)


class LoadJob(Base):
    """A roster load queued for a worker (production mode's ``import ... --enqueue``): what
    to load, where the worker's reading stands, and how it ended."""

    __tablename__ = "load_job"

    id: Mapped[str] = mapped_column(GUID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(GUID, index=True)
    format: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text)
    report_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    end_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
