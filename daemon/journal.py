"""The journal: SQLite in WAL mode, the service's durable memory.

Accepted readings are committed here before their MQTT acknowledgement. A reading is
identified by (device, channel, timestamp): writing it twice stores it once, so a redelivery
after a crash adds nothing. Rows keep their insertion order (rowid), which downstream cursors
(core warm-up, InfluxDB export) follow.
"""
from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geowarn.drivers.base import CommandReply, DeviceStatus, Reading, Rejection

log = logging.getLogger("geowarn.journal")

SCHEMA_VERSION = 1
JOURNAL_FILE = "journal.sqlite"  # in the state directory
PRUNE_EVERY_S = 3600.0  # retention looks this often (on the service's clock)
QUARANTINE_PAYLOAD_MAX = 16 * 1024  # keep enough of a bad frame to diagnose it

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, site TEXT NOT NULL, device TEXT NOT NULL,
    kind TEXT NOT NULL, channel TEXT NOT NULL, UNIQUE (device, channel));
CREATE TABLE IF NOT EXISTS readings (
    series INTEGER NOT NULL REFERENCES series(id), ts_ms INTEGER NOT NULL, value REAL NOT NULL,
    seq INTEGER, received_ms INTEGER NOT NULL, PRIMARY KEY (series, ts_ms));
CREATE TABLE IF NOT EXISTS statuses (
    device TEXT NOT NULL, ts_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL, fields TEXT NOT NULL,
    PRIMARY KEY (device, ts_ms));
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL,
    detail TEXT NOT NULL, device TEXT, payload BLOB);
CREATE INDEX IF NOT EXISTS quarantine_reason ON quarantine (reason);
CREATE TABLE IF NOT EXISTS replies (
    id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, device TEXT, command TEXT NOT NULL,
    ok INTEGER NOT NULL, msgid TEXT, raw TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class SeriesKey:
    site: str
    device: str
    kind: str
    channel: str


@dataclass(frozen=True, slots=True)
class Quarantined:
    topic: str
    payload: bytes
    rejection: Rejection


@dataclass(slots=True)
class Entry:
    """What one intake batch writes, in one transaction."""

    readings: list[tuple[Reading, str]] = field(default_factory=list)  # (reading, site)
    statuses: list[DeviceStatus] = field(default_factory=list)
    replies: list[CommandReply] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Written:
    series_ids: list[int]  # per entry reading, in order
    new_readings: int  # readings not already in the journal


def journal_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / JOURNAL_FILE


# Retention: the tables of the journal file that grow with time, as (table, rowid column, time
# column, the export stream whose cursor guards it: InfluxDB must have a row before it goes).
RETAINED = (
    ("readings", "rowid", "received_ms", "readings"),
    ("statuses", "rowid", "received_ms", "statuses"),
    ("quarantine", "rowid", "received_ms", "quarantine"),
    ("export_events", "id", "created_ms", "events"),
    ("replies", "rowid", "received_ms", None),
    ("export_quarantine", "rowid", "quarantined_ms", None),
)


def prune_journal(path: str | Path, retention_days: float, *, cursors: Mapping[str, int] | None = None,
                  now: float | None = None, chunk: int = 10_000) -> dict[str, int]:
    """Delete rows received more than `retention_days` ago; with `cursors` (InfluxDB configured:
    the export's cursor per stream) only rows at or behind their stream's cursor. The newest row
    of a table always stays: SQLite hands out max(rowid)+1, so emptying a table would reuse rowids
    behind the cursors. (For the same reason, never VACUUM the journal: it may renumber rowids.)
    On a connection of its own, in short transactions: the intake keeps writing meanwhile."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        cutoff = _ms((time.time() if now is None else now) - retention_days * 86400)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        pruned: dict[str, int] = {}
        for table, rid, tcol, stream in RETAINED:
            if table not in tables:
                continue
            top = conn.execute(f"SELECT MAX({rid}) FROM {table}").fetchone()[0]
            if top is None:
                continue
            bound = top - 1
            if cursors is not None and stream is not None:
                bound = min(bound, cursors.get(stream, 0))
            n = 0
            while True:
                cur = conn.execute(
                    f"DELETE FROM {table} WHERE {rid} IN (SELECT {rid} FROM {table} "
                    f"WHERE {rid} <= ? AND {tcol} < ? ORDER BY {rid} LIMIT ?)", (bound, cutoff, chunk))
                n += cur.rowcount
                if cur.rowcount < chunk:
                    break
            if n:
                pruned[table] = n
        return pruned
    finally:
        conn.close()


class Retention:
    """Keeps the journal file to `days` (None: keeps everything), looking every PRUNE_EVERY_S of
    the caller's clock (a drill's simulated time prunes on simulated days). `cursors` says what
    InfluxDB has confirmed, when there is an export: nothing it lacks is pruned."""

    def __init__(self, path: str | Path, days: float | None,
                 cursors: Callable[[], Mapping[str, int] | None] = lambda: None):
        self.path = Path(path)
        self.days = days
        self.cursors = cursors
        self._last = -math.inf

    def due(self, now: float) -> bool:
        return bool(self.days) and now - self._last >= PRUNE_EVERY_S

    def run(self, now: float) -> dict[str, int]:
        """Prune now (the next look is PRUNE_EVERY_S later, also when this one fails); what was
        pruned per table."""
        self._last = now
        pruned = prune_journal(self.path, self.days or 0, cursors=self.cursors(), now=now) if self.days else {}
        log.info("journal retention %g days: pruned %s", self.days or 0, pruned)
        return pruned

    def tick(self, now: float) -> dict[str, int] | None:
        """Prune when due; what was pruned per table (None: not due, or no retention)."""
        return self.run(now) if self.due(now) else None


def _ms(ts: float) -> int:
    return int(round(ts * 1000.0))


class Journal:
    """One connection, usable from one thread at a time (guarded by a lock)."""

    def __init__(self, path: str | Path, synchronous: str = "full", busy_timeout_s: float = 5.0,
                 readonly: bool = False, clock: Callable[[], float] = time.time):
        """`readonly`: for readers beside the service (`geowarn status`), which must work when the
        journal's disk is full or read-only."""
        self.path = Path(path)
        self.clock = clock  # stamps received_ms, which retention prunes by: the service's clock
        self._lock = threading.Lock()
        if readonly:
            self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False,
                                       isolation_level=None, timeout=busy_timeout_s)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                       timeout=busy_timeout_s)  # then fail loudly: the intake retries
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self._series: dict[tuple[str, str], int] = {
            (dev, ch): sid for sid, dev, ch in self._db.execute("SELECT id, device, channel FROM series")
        }

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- writing -----------------------------------------------------------------------------

    def write(self, entry: Entry, now: float | None = None) -> Written:
        """Commit a batch atomically; raises sqlite3.Error (nothing written) on failure."""
        received = _ms(self.clock() if now is None else now)
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            created: list[tuple[str, str]] = []
            try:
                ids = [self._series_id(r, site, created) for r, site in entry.readings]
                before = db.total_changes
                db.executemany(
                    "INSERT OR IGNORE INTO readings (series, ts_ms, value, seq, received_ms) VALUES (?,?,?,?,?)",
                    [(sid, _ms(r.ts), r.value, r.seq, received) for sid, (r, _) in zip(ids, entry.readings)],
                )
                new = db.total_changes - before
                db.executemany(
                    "INSERT OR IGNORE INTO statuses VALUES (?,?,?,?)",
                    [(s.device, _ms(s.ts), received, json.dumps(s.fields, ensure_ascii=False)) for s in entry.statuses],
                )
                db.executemany(
                    "INSERT INTO replies (received_ms, device, command, ok, msgid, raw) VALUES (?,?,?,?,?,?)",
                    [(received, r.device, r.command, int(r.ok), r.msgid, r.raw) for r in entry.replies],
                )
                db.executemany(
                    "INSERT INTO quarantine (received_ms, topic, reason, detail, device, payload) VALUES (?,?,?,?,?,?)",
                    [(received, q.topic, q.rejection.reason, q.rejection.detail, q.rejection.device,
                      q.payload[:QUARANTINE_PAYLOAD_MAX]) for q in entry.quarantined],
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                for key in created:  # their ids were rolled back with the transaction
                    self._series.pop(key, None)
                raise
        return Written(ids, new)

    def _series_id(self, r: Reading, site: str, created: list[tuple[str, str]]) -> int:
        key = (r.device, r.channel)
        sid = self._series.get(key)
        if sid is None:
            cur = self._db.execute(
                "INSERT INTO series (site, device, kind, channel) VALUES (?,?,?,?) "
                "ON CONFLICT (device, channel) DO UPDATE SET site = excluded.site RETURNING id",
                (site, r.device, r.kind, r.channel),
            )
            sid = self._series[key] = cur.fetchone()[0]
            created.append(key)
        return sid

    # --- reading -----------------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    def series(self) -> dict[int, SeriesKey]:
        return {sid: SeriesKey(site, dev, kind, ch)
                for sid, site, dev, kind, ch in self._query("SELECT id, site, device, kind, channel FROM series")}

    def readings_after(self, rowid: int, limit: int = 10_000) -> list[tuple[int, int, float, float]]:
        """(rowid, series, ts seconds, value) in journal order, for cursors downstream."""
        return [(rid, sid, ts_ms / 1000.0, v) for rid, sid, ts_ms, v in self._query(
            "SELECT rowid, series, ts_ms, value FROM readings WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (rowid, limit))]

    def export_rows(self, since: float | None = None, site: str | None = None) -> Iterator[tuple]:
        """(ts seconds, site, device, kind, channel, value) ordered by time, then series."""
        sql = ("SELECT r.ts_ms, s.site, s.device, s.kind, s.channel, r.value FROM readings r "
               "JOIN series s ON s.id = r.series WHERE r.ts_ms >= ?")
        args: list[Any] = [_ms(since) if since is not None else -(2**62)]
        if site is not None:
            sql += " AND s.site = ?"
            args.append(site)
        sql += " ORDER BY r.ts_ms, s.device, s.channel"
        with self._lock:
            cur = self._db.execute(sql, args)
            rows = cur.fetchall()
        for ts_ms, *rest in rows:
            yield (ts_ms / 1000.0, *rest)

    def latest_statuses(self, devices: list[str]) -> dict[str, tuple[float, dict[str, Any]]]:
        """Each device's newest status report: device -> (ts seconds, normalised fields)."""
        if not devices:
            return {}
        marks = ",".join("?" * len(devices))
        rows = self._query(f"SELECT device, MAX(ts_ms), fields FROM statuses WHERE device IN ({marks}) "
                           "GROUP BY device", devices)  # SQLite: the bare column comes from the MAX row
        return {dev: (ts_ms / 1000.0, json.loads(fields)) for dev, ts_ms, fields in rows}

    def history(self, device: str, channel: str, limit: int = 10) -> list[tuple[float, float]]:
        """The device channel's latest readings (ts seconds, value), oldest first."""
        rows = self._query("SELECT r.ts_ms, r.value FROM readings r JOIN series s ON s.id = r.series "
                           "WHERE s.device = ? AND s.channel = ? ORDER BY r.ts_ms DESC LIMIT ?",
                           (device, channel, limit))
        return [(ts / 1000.0, v) for ts, v in reversed(rows)]

    def count_readings(self) -> int:
        return self._query("SELECT COUNT(*) FROM readings")[0][0]

    def status_summary(self) -> dict[str, Any]:
        """Readings per kind, last seen per site and device, quarantine counts per reason."""
        per_kind = dict(self._query(
            "SELECT s.kind, COUNT(*) FROM readings r JOIN series s ON s.id = r.series GROUP BY s.kind"))
        last_dev = self._query(
            "SELECT s.site, s.device, MAX(r.ts_ms), MAX(r.received_ms) FROM readings r "
            "JOIN series s ON s.id = r.series GROUP BY s.device")
        status_seen = dict(self._query("SELECT device, MAX(ts_ms) FROM statuses GROUP BY device"))
        quarantine = dict(self._query("SELECT reason, COUNT(*) FROM quarantine GROUP BY reason"))
        devices: dict[str, dict[str, Any]] = {}
        sites: dict[str, float] = {}
        for site, dev, ts_ms, rcv_ms in last_dev:
            devices[dev] = {"site": site, "last_reading": ts_ms / 1000.0, "last_received": rcv_ms / 1000.0}
            sites[site] = max(sites.get(site, 0.0), ts_ms / 1000.0)
        for dev, ts_ms in status_seen.items():
            devices.setdefault(dev, {})["last_status"] = ts_ms / 1000.0
        return {
            "readings": sum(per_kind.values()),
            "readings_by_kind": per_kind,
            "devices": devices,
            "sites": sites,
            "quarantine": quarantine,
            "quarantine_total": sum(quarantine.values()),
        }

    def quarantine_rows(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._query("SELECT received_ms, topic, reason, detail, device, payload FROM quarantine "
                           "ORDER BY id DESC LIMIT ?", (limit,))
        return [{"received": r / 1000.0, "topic": t, "reason": reason, "detail": d, "device": dev,
                 "payload": (p or b"")[:200].decode("utf-8", "backslashreplace")}
                for r, t, reason, d, dev, p in rows]
