"""Reading the alert tables beside the lifecycle, on a connection of its own: health, metrics,
the console and drills ask here. Polling never waits for, nor holds up, the manager's connection
on the siren's path (WAL readers do not block the writer)."""
from __future__ import annotations

from pathlib import Path

from . import outbox, store
from .db import Database
from .store import Alert


class AlertReader:
    def __init__(self, path: str | Path):
        self.db = Database(path, checkpoints=False)

    def alerts(self, open_only: bool = True) -> list[Alert]:
        with self.db.read() as db:
            return store.listing(db, open_only)

    def site_alerts(self, site: str, limit: int = 50) -> list[Alert]:
        with self.db.read() as db:
            return store.site_alerts(db, site, limit)

    def notifications(self, site: str, limit: int) -> list[dict]:
        with self.db.read() as db:
            return outbox.site_log(db, site, limit)

    def overdue(self, queued_before: float) -> int:
        with self.db.read() as db:
            return outbox.overdue(db, queued_before)

    def unsettled(self, now: float) -> int:
        with self.db.read() as db:
            return outbox.unsettled(db, now)

    def tallies(self) -> tuple[list[tuple[str, str, int]], dict[str, int], list[tuple[str, bool, int]]]:
        """For /metrics, from one snapshot: open alerts per kind and level, outbox rows per status,
        delivery attempts per channel and result."""
        with self.db.read() as db:
            return store.open_counts(db), outbox.counts(db), outbox.attempt_results(db)

    def close(self) -> None:
        self.db.close()
