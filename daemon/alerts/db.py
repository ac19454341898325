"""The alert tables in the journal file (SQLite, WAL), on a connection of their own.

Alert state, its audit trail, silences and the outbox live in one file so that deciding an
alert and queueing its messages commit together: a crash leaves either both or neither.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ADDED_COLUMNS = {"outbox": {"published_mono": "REAL", "content_type": "TEXT"}}

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,                 -- hazard | fault
    site TEXT NOT NULL,
    device TEXT NOT NULL DEFAULT '',
    fault TEXT NOT NULL DEFAULT '',
    drill INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,               -- open | closed
    level TEXT,                         -- hazard: current level
    max_level TEXT,
    reasons TEXT NOT NULL DEFAULT '[]',
    forecast_failure_ts REAL,
    detail TEXT NOT NULL DEFAULT '',
    opened_at REAL NOT NULL,
    level_since REAL NOT NULL,
    updated_at REAL NOT NULL,
    closed_at REAL, close_reason TEXT, closed_by TEXT,
    acked_at REAL, acked_by TEXT, acked_via TEXT,
    round INTEGER NOT NULL DEFAULT 0,   -- notification rounds so far: part of idempotency keys
    last_notified_at REAL,
    tier INTEGER NOT NULL DEFAULT 0,    -- escalation tiers notified at the current level
    accelerated INTEGER NOT NULL DEFAULT 0,
    siren_level TEXT,
    silenced INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_open_hazard ON alerts (site, drill)
    WHERE status = 'open' AND kind = 'hazard';
CREATE UNIQUE INDEX IF NOT EXISTS alerts_open_fault ON alerts (site, device, fault, drill)
    WHERE status = 'open' AND kind = 'fault';
CREATE TABLE IF NOT EXISTS alert_history (
    id INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL, ts REAL NOT NULL, event TEXT NOT NULL,
    who TEXT, detail TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS alert_history_alert ON alert_history (alert_id);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY, site TEXT, device TEXT, fault TEXT, starts REAL NOT NULL, ends REAL NOT NULL,
    who TEXT NOT NULL, reason TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,           -- idempotency: alert, round and recipient (or device)
    alert_id INTEGER,
    channel TEXT NOT NULL,              -- apprise | mqtt | http
    purpose TEXT NOT NULL,              -- notify | siren | sampling | cap
    priority INTEGER NOT NULL,          -- lower first: sirens before messages
    site TEXT NOT NULL, device TEXT, role TEXT, recipient TEXT,
    target TEXT NOT NULL,               -- apprise URL or endpoint with ${ENV} unresolved, or MQTT topic
    target_key TEXT NOT NULL,           -- messages to one target leave in order
    title TEXT, body TEXT, payload BLOB, command TEXT, msgid TEXT,
    drill INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,               -- pending sending published delivered confirmed failed cancelled
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER,               -- commands only; messages are retried for ever
    reply_timeout_s REAL,
    next_at REAL NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL, done_at REAL, published_at REAL,
    published_mono REAL,                -- commands: time.monotonic() when published (reply deadline)
    content_type TEXT,                  -- http: the payload's media type
    last_error TEXT,
    failing_reported INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, channel, priority, next_at);
CREATE INDEX IF NOT EXISTS outbox_target ON outbox (target_key, status);
CREATE INDEX IF NOT EXISTS outbox_msgid ON outbox (msgid);
CREATE TABLE IF NOT EXISTS outbox_attempts (
    id INTEGER PRIMARY KEY, outbox_id INTEGER NOT NULL, attempt INTEGER NOT NULL,
    started REAL NOT NULL, finished REAL, ok INTEGER, target TEXT, detail TEXT);
CREATE INDEX IF NOT EXISTS outbox_attempts_row ON outbox_attempts (outbox_id);
"""


class Database:
    """One SQLite connection guarded by a lock; `tx()` is one IMMEDIATE transaction."""

    def __init__(self, path: str | Path, synchronous: str = "full", checkpoints: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        if not checkpoints:
            # a WAL checkpoint can take a disk's worth of time: keep it off the latency-critical
            # connections and leave it to the others (the intake's journal, the message lane)
            self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.executescript(SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Columns added since a journal was created (CREATE TABLE IF NOT EXISTS keeps old tables)."""
        for table, columns in ADDED_COLUMNS.items():
            have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            for column, decl in columns.items():
                if column not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot that takes no write lock (WAL readers never wait for writers)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()
