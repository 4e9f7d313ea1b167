"""The running service assembled from Settings: store, identity, dispatcher and scheduler.

This is the composition root: the API app and the CLI build one ``Service`` and hand its
parts to the packages below; nothing is built at import time.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from .config import Mode, Settings
from .errors import StoreBusy
from .fleet import QueueDispatcher, queue_depth
from .identity import DevelopmentKeys, TokenValidator
from .observability import QueueDepth
from .private_files import private_folder
from .runs import (
    EmbeddedDispatcher,
    PeriodicWorker,
    purge_finished_runs,
    recover_interrupted_runs,
    start_due_runs,
    start_export_server,
    utcnow,
)
from .sharing import claim_accepted_destinations, expire_pending_invitations
from .store import CredentialSealer, Store, create_store_engine, open_store, upgrade_to_head

__all__ = ["Service"]

logger = logging.getLogger(__name__)

HEARTBEAT_STALE_AFTER = timedelta(minutes=5)
"""Several processes share a PostgreSQL store: a run is another's while its heartbeat is fresh."""

ORPHAN_AFTER = timedelta(seconds=60)
"""Embedded: a run this process does not own is dead once this old (the margin covers the
instant between a run's commit and its submission to the dispatcher)."""


class Service:
    """Everything one serving process needs; ``start`` and ``close`` bracket its life."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        private_folder(settings.data_dir)
        settings.lake_dir.mkdir(parents=True, exist_ok=True)
        _migrate(settings.effective_database_url)
        self.store: Store = open_store(
            settings.effective_database_url, lock_wait_seconds=settings.store_lock_wait_seconds
        )
        self.development_keys = None if settings.jwks_url else DevelopmentKeys(settings.data_dir)
        self.token_validator = TokenValidator(
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            development_keys=self.development_keys,
            jwks_url=settings.jwks_url,
        )
        self.sealer = CredentialSealer(settings.data_dir / "keys" / "credential.key")
        claim_accepted_destinations(self.store, settings=settings, sealer=self.sealer)
        self.dispatcher: EmbeddedDispatcher | QueueDispatcher
        if self.production:
            self.dispatcher = QueueDispatcher(self.store)
        else:
            self.dispatcher = EmbeddedDispatcher(
                store=self.store, settings=settings, sealer=self.sealer
            )
        self.scheduler = PeriodicWorker(
            self.tick, interval_seconds=settings.scheduler_interval_seconds
        )
        self.queue_depth: QueueDepth | None = (
            partial(queue_depth, self.store) if self.production else None
        )
        """Jobs waiting by queue, for /metrics; none in embedded mode (no queue)."""
        self._started = False

    @property
    def production(self) -> bool:
        """API processes only enqueue: workers execute runs and the periodic work."""
        return self.settings.mode is Mode.PRODUCTION

    @property
    def embedded(self) -> bool:
        """One process owns the store (SQLite): every run still 'running' at start is dead."""
        return self.store.engine.dialect.name == "sqlite"

    def start(self) -> None:
        """Start the export server, recover runs interrupted by a crash, then start the
        scheduler (embedded mode; in production the workers do all three)."""
        if self.production:
            return
        start_export_server()
        now = utcnow()
        stale_before = None if self.embedded else now - HEARTBEAT_STALE_AFTER
        recovered = recover_interrupted_runs(self.store, now=now, stale_before=stale_before)
        if recovered:
            logger.warning("marked %d interrupted run(s) as failed", recovered)
        self.scheduler.start()
        self._started = True

    def dispatch(self, run_id: str) -> None:
        """Execute a committed running run in the background (production: its job was
        committed with it)."""
        self.dispatcher.submit(run_id)

    def cancel_run(self, run_id: str) -> None:
        """Stop a run's executor at once; call after the run's cancel has committed."""
        self.dispatcher.cancel(run_id)

    def tick(self) -> None:
        """The periodic work: expiry, schedules, retention, stale-run recovery.

        Each step is its own transaction; one that finds the store busy waits for the next
        tick without holding up the others.
        """
        now = utcnow()
        for step in (self._expire, self._start_due, self._purge, self._recover):
            try:
                step(now)
            except StoreBusy:
                logger.warning("store busy: %s waits for the next tick", step.__name__)

    def _expire(self, now: datetime) -> None:
        expire_pending_invitations(self.store, now=now)

    def _start_due(self, now: datetime) -> None:
        for run_id in start_due_runs(self.store, now=now):
            self.dispatch(run_id)

    def _purge(self, now: datetime) -> None:
        purge_finished_runs(
            self.store, older_than=now - timedelta(days=self.settings.run_history_days)
        )

    def _recover(self, now: datetime) -> None:
        """Write outcomes that found the store busy, then fail runs no executor owns."""
        self.dispatcher.record_unrecorded_outcomes()
        stale_after = ORPHAN_AFTER if self.embedded else HEARTBEAT_STALE_AFTER
        recovered = recover_interrupted_runs(
            self.store,
            now=now,
            stale_before=now - stale_after,
            owned=self.dispatcher.owned_runs(),
        )
        if recovered:
            logger.warning("marked %d run(s) without an executor as failed", recovered)

    def close(self) -> None:
        """Stop the scheduler, interrupt runs cleanly, release the database."""
        if self._started:
            self.scheduler.stop()
        self.dispatcher.stop()
        self.store.dispose()


def _migrate(url: str) -> None:
    """Upgrade the store with the patient lock wait: a start during an import waits for it."""
    engine = create_store_engine(url, immediate_transactions=True, pooled=False)
    try:
        upgrade_to_head(engine)
    finally:
        engine.dispose()
