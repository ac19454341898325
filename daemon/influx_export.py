"""InfluxDB export: the journal, followed by cursors, written through the v2 write API.

Why cursors over the journal and not influxdb-client's batching writer: that writer drops a batch
once its retry time has passed; here an outage of the database only delays data. Each stream
(readings, statuses, quarantine, events) has a cursor, the last journal rowid the server has
confirmed. It advances in the same SQLite transaction that records the points the server
rejected, so a crash at any moment re-sends at most one batch (InfluxDB overwrites an identical
point) and loses nothing.

Other modules (detector signals, alert events, notifications and their results) append rows to
`export_events` with `export_events()`; the same cursor mechanism exports them.

Schema (tags never carry ids or sequence numbers: they would explode series cardinality):
  reading         tags site, device, kind, county   fields: the channels (dx, dy, width, mm, ...)
  device_status   tags site, device, kind, county   fields: battery_pct, temp_c, sensor_state_<code>, ...
  quarantine      tags reason [, site, device, kind, county]   fields: count (int)
  <event stream>  tags as appended                  fields as appended
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import re
import signal
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from .config import Config, ConfigError, InfluxSettings, load_config
from .journal import Journal, Retention, journal_path
from .registry import Registry

log = logging.getLogger("geowarn.export")

STREAMS = ("readings", "statuses", "quarantine", "events")
FIRST_PAGE_DIVISOR = 10  # a pass's first page of readings is this much smaller than the rest
# pages of readings formatted ahead of the wire, beyond one per read-ahead thread: the formatter
# keeps going through a slow request (the server's first, a flush) instead of idling (×1.1–1.25)
PAGES_BUFFERED = 4
REASON_MAX = 500  # characters of a server's complaint kept with a quarantined point

_SCHEMA = """
CREATE TABLE IF NOT EXISTS export_cursor (stream TEXT PRIMARY KEY, rowid INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS export_quarantine (
    id INTEGER PRIMARY KEY, quarantined_ms INTEGER NOT NULL, stream TEXT NOT NULL,
    source_rowid INTEGER NOT NULL, reason TEXT NOT NULL, line TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS export_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, measurement TEXT NOT NULL, tags TEXT NOT NULL,
    fields TEXT NOT NULL, ts_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL);
"""

# SQLite's printf('%!.17g') round-trips every double between 1e-100 and 1e100 exactly (checked
# on 2M values; beyond, its long-double arithmetic can miss the last digit): those rows go
# through Python's repr instead, with the non-finite and the orphans.
# (Plain comparisons: abs() is a function call per row; the usual case, not tiny, decided first.)
_EXACT = "(r.value BETWEEN -1e100 AND 1e100 AND (NOT r.value BETWEEN -1e-100 AND 1e-100 OR r.value = 0))"
# One line per reading, made by SQLite in C: a Python loop over the rows cost more than the HTTP
# write. InfluxDB merges lines with the same measurement, tags and timestamp into one point (their
# fields united) and VictoriaMetrics keeps each field as a series of its own, so this stores what
# one line per device and instant would, without the sort SQLite needed to group the rows.
# A line is its series' pre-escaped prefix ("reading,<tags> <channel>="), then the value and the
# timestamp. SQLite's `%d` costs five times its own integer-to-text, so the timestamp is appended
# as a plain integer.
_VALUE_TS = "format('%!.17g ', r.value) || r.ts_ms"
_PAGE = f"""
FROM readings r CROSS JOIN temp.export_series s ON s.id = r.series  -- CROSS: the rowid range drives
WHERE r.rowid > ? AND r.rowid <= ? AND {_EXACT}"""
_READING_LINES = f"SELECT r.rowid, substr(s.newline_prefix, 2) || {_VALUE_TS} {_PAGE}"
# The same lines as one request body (lines, body): no Python object per line, and as a BLOB, the
# UTF-8 SQLite made, not decoded to str only to be encoded again. The prefix, with the newline
# before it, is group_concat's separator: a column, not copied into a formatted string per row
# (a tenth cheaper). A separator goes between rows, so the first row's prefix comes from
# _READING_HEAD: the same row, as the rowid range is scanned in order (CROSS JOIN keeps `readings`
# the outer loop); the body is checked to start with that row's value and timestamp.
_READING_BODY = f"SELECT COUNT(*), CAST(group_concat({_VALUE_TS}, s.newline_prefix) AS BLOB) {_PAGE}"
_READING_HEAD = (f"SELECT CAST(substr(s.newline_prefix, 2) AS BLOB), CAST({_VALUE_TS} AS BLOB) {_PAGE} "
                 "ORDER BY r.rowid LIMIT 1")
_ODD_READINGS = f"""
SELECT r.rowid, r.series, r.ts_ms, r.value FROM readings r
WHERE r.rowid > ? AND r.rowid <= ?
  AND (NOT {_EXACT} OR r.value IS NULL OR r.series NOT IN (SELECT id FROM temp.export_series))"""


def ensure_schema(db: sqlite3.Connection) -> None:
    """The export tables. Statement by statement: executescript would commit the caller's
    open transaction."""
    for stmt in _SCHEMA.split(";"):
        if stmt.strip():
            db.execute(stmt)


# --- line protocol -----------------------------------------------------------------------------
# The same escaping as influxdb-client's Point; built by hand because Point costs ~10x more.

_ESC_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESC_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESC_STRING = str.maketrans({'"': r"\"", "\\": "\\\\"})
_INT64 = 2**63
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# tag keys that would carry ids or sequence numbers (unbounded cardinality): make them fields
_ID_TAGS = re.compile(r"^(id|seq|sequence|msgid|uuid|.*_id)$", re.IGNORECASE)


class BadPoint(ValueError):
    """A point that cannot be written as it is: it is quarantined with this reason."""


FieldValue = bool | int | float | str


def format_field(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        if not -_INT64 <= v < _INT64:
            raise BadPoint(f"integer {v} out of int64 range")
        return f"{v}i"
    if isinstance(v, float):
        if not math.isfinite(v):
            raise BadPoint(f"non-finite value {v}")
        return repr(v)
    if isinstance(v, str):
        return '"' + v.translate(_ESC_STRING) + '"'
    raise BadPoint(f"unsupported field type {type(v).__name__}")


def tag_set(tags: Mapping[str, str]) -> str:
    """`,k=v,...` sorted by key (what InfluxDB stores fastest); empty values are left out."""
    return "".join(f",{str(k).translate(_ESC_KEY)}={str(v).translate(_ESC_KEY)}"
                   for k, v in sorted(tags.items()) if v != "" and v is not None)


def make_line(measurement: str, tags: Mapping[str, str], fields: Mapping[str, Any], ts_ms: int) -> str:
    if not measurement:
        raise BadPoint("empty measurement")
    if not fields:
        raise BadPoint("a point needs at least one field")
    fs = ",".join(f"{str(k).translate(_ESC_KEY)}={format_field(v)}" for k, v in fields.items())
    return f"{measurement.translate(_ESC_MEASUREMENT)}{tag_set(tags)} {fs} {int(ts_ms)}"


def flatten_fields(obj: Mapping[str, Any], prefix: str = "") -> dict[str, FieldValue]:
    """Nested mappings become `outer_inner` fields (sensor_state → sensor_state_L1_QJ_1)."""
    out: dict[str, FieldValue] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten_fields(v, key + "_"))
        elif isinstance(v, (bool, str)):
            out[key] = v
        elif isinstance(v, (int, float)):
            out[key] = float(v)  # one type per field: an int here and a float there is a conflict
        elif v is not None:
            out[key] = str(v)
    return out


# --- events: the generic path for signals, alerts, notifications --------------------------------

class EventRow(NamedTuple):
    ts: float  # epoch seconds, UTC
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]


def _check_event(stream: str, row: EventRow) -> tuple[str, str, int]:
    if not _NAME.match(stream):
        raise ValueError(f"event stream {stream!r}: use letters, digits and _ (it becomes the measurement)")
    for k, v in row.tags.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ValueError(f"{stream}: tag {k!r}={v!r}: tags are str → str")
        if _ID_TAGS.match(k):
            raise ValueError(f"{stream}: tag {k!r} looks like an id or sequence number; make it a field")
    fields = dict(row.fields)
    if not fields:
        raise ValueError(f"{stream}: an event needs at least one field")
    try:
        for k, v in fields.items():
            if not isinstance(k, str) or not k:
                raise BadPoint(f"field name {k!r}")
            format_field(v)
        ts_ms = int(round(float(row.ts) * 1000))
    except (BadPoint, TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"{stream}: {e}") from None
    return json.dumps(dict(row.tags), ensure_ascii=False), json.dumps(fields, ensure_ascii=False), ts_ms


def export_events(db: sqlite3.Connection | str | Path, stream: str,
                  rows: Iterable[EventRow | tuple], now: float | None = None) -> int:
    """Queue events for InfluxDB (measurement = `stream`). With a connection, the rows join the
    caller's transaction (commit is the caller's, so an event commits with the state change it
    records); with a path, they are committed here. Raises ValueError on a malformed row, before
    anything is written."""
    created = int((time.time() if now is None else now) * 1000)
    checked = [(stream, *_check_event(stream, EventRow(*r)), created) for r in rows]
    sql = "INSERT INTO export_events (measurement, tags, fields, ts_ms, created_ms) VALUES (?,?,?,?,?)"
    if isinstance(db, sqlite3.Connection):
        ensure_schema(db)
        db.executemany(sql, checked)
        return len(checked)
    conn = sqlite3.connect(db, timeout=30)
    try:
        ensure_schema(conn)
        with conn:
            conn.executemany(sql, checked)
    finally:
        conn.close()
    return len(checked)



# --- the exporter ------------------------------------------------------------------------------

class _Transient(Exception):
    """The server is unreachable or unwell: nothing is lost, the batch waits in the journal."""


@dataclass
class ExportStats:
    points: int = 0  # points the server confirmed
    batches: int = 0
    quarantined: int = 0
    failures: int = 0  # consecutive transient failures (0: healthy)
    total_failures: int = 0
    last_error: str | None = None
    last_success: float | None = None
    per_stream: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STREAMS})


@dataclass(slots=True)
class _Page:
    stream: str
    last_rowid: int  # the cursor after this page
    rows: int
    points: int
    body: bytes  # the points' line protocol, one a line, UTF-8: what is sent
    bad: list[tuple[int, str, str]]  # (source rowid, reason, what we have of the point)
    # (line protocol, source rowid) of each point, made when a rejected batch must be bisected
    lines: Callable[[], list[tuple[str, int]]]

    @classmethod
    def of(cls, stream: str, last_rowid: int, rows: int, lines: list[tuple[str, int]],
           bad: list[tuple[int, str, str]]) -> "_Page":
        return cls(stream, last_rowid, rows, len(lines), _body(lines), bad, lambda: lines)


def _body(lines: Sequence[tuple[str, int]]) -> bytes:
    return "\n".join([text for text, _ in lines]).encode("utf-8")


def resolve_token(settings: InfluxSettings, base: Path | None = None) -> str | None:
    """The token from the credentials file (when set) or the environment; None: no token."""
    if settings.token_file:
        path = Path(settings.token_file).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        try:
            lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(str(path), "influx.token_file", f"cannot read: {e}") from None
        token = next((ln for ln in lines if ln and not ln.startswith("#")), "")
        if not token:
            raise ConfigError(str(path), "influx.token_file", "no token in the file")
        return token
    return os.environ.get(settings.token_env) or None


@dataclass(frozen=True)
class ExportSetup:
    """What the exporter is built from. Two are equal when they would export the same points the
    same way: a reload that changes none of it keeps the running exporter."""

    settings: InfluxSettings
    token: str | None
    tags: tuple  # every device's (id, site, kind, county): the tags the registry gives its points
    registry: Registry = field(compare=False)

    @classmethod
    def of(cls, config: Config) -> "ExportSetup | None":
        """None without an `influx:` section; raises ConfigError for an unreadable token file."""
        influx = config.settings.influx
        if influx is None:
            return None
        base = Path(config.source).parent if config.source else None
        reg = config.registry
        tags = tuple((d.id, d.site, d.kind, s.county) for s in reg.sites for d in s.devices)
        return cls(influx, resolve_token(influx, base), tags, reg)

    def exporter(self, journal_path: str | Path) -> "InfluxExporter":
        return InfluxExporter(journal_path, self.settings, self.registry, self.token)


def default_read_ahead() -> int:
    """Threads that format pages ahead. One from two cores on: SQLite formats a page without
    the GIL while the previous page is on the wire, so the formatting hides behind the server's
    work; more only where cores are left over for the database and the intake."""
    cpus = os.cpu_count() or 1
    return 0 if cpus < 2 else max(1, min(4, cpus - 2))


class InfluxExporter:
    """Follows the journal at `journal_path` and writes it to InfluxDB. `run_once()` exports
    everything pending (or stops at the first outage); `run(stop)` loops with backoff. Uses its
    own SQLite connection (WAL: the intake keeps writing). Retention is the journal's: it prunes
    behind `cursors()`."""

    def __init__(self, journal_path: str | Path, settings: InfluxSettings, registry: Registry | None = None,
                 token: str | None = None, read_ahead: int | None = None):
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.settings = settings
        self.registry = registry
        self.stats = ExportStats()
        self.path = Path(journal_path)
        Journal(self.path).close()  # the journal's own tables, if the exporter starts first
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # a cursor update lost to a power cut re-sends one batch, which InfluxDB overwrites:
        # not worth an fsync per batch
        self.db.execute("PRAGMA synchronous=NORMAL")
        ensure_schema(self.db)
        self._lock = threading.Lock()  # run_once from one thread at a time
        self._series_prefix: dict[int, str] = {}  # series id -> "reading,<tags> <channel>="
        self._device_prefixes: dict[tuple[str, str, str], str] = {}  # (site, device, kind) -> line prefix
        self._series_lock = threading.Lock()
        self._series_db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
        self._reader_conns: list[sqlite3.Connection] = []
        self._local = threading.local()
        # pages formatted by other threads while one is sent (0: one thread does all)
        self.read_ahead = read_ahead if read_ahead is not None else default_read_ahead()
        self._readers = ThreadPoolExecutor(max(1, self.read_ahead), thread_name_prefix="geowarn-export-read")
        # open the readers' connections (and their series tables) now, not in the first pass
        for opened in [self._readers.submit(self._reader) for _ in range(self.read_ahead)]:
            opened.result()
        self._device_tags: dict[str, dict[str, str]] = {}
        # retries=False: a failed POST comes straight back; the backoff here keeps the data
        self.client = InfluxDBClient(url=settings.url, token=token, org=settings.org,
                                     timeout=int(settings.timeout_s * 1000), retries=False,
                                     verify_ssl=settings.verify_ssl, ssl_ca_cert=settings.ca_file)
        self.write_api = self.client.write_api(write_options=SYNCHRONOUS)

    def close(self) -> None:
        with self._lock:
            self._readers.shutdown()
            self.write_api.close()
            self.client.close()
            for conn in self._reader_conns:
                conn.close()
            self._series_db.close()
            self.db.close()

    def __enter__(self) -> "InfluxExporter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the loop ------------------------------------------------------------------------------

    def run_once(self, max_batches: int | None = None, stop: threading.Event | None = None) -> int:
        """Export what is pending, stream by stream in journal order; returns the points the
        server confirmed. Never raises for an outage or a bad point: an outage stops the pass
        (stats.failures counts them), a bad point is quarantined."""
        written = 0
        batches = 0
        with self._lock:
            for stream in STREAMS:
                left = None if max_batches is None else max_batches - batches
                pages = self._pages(stream, self._cursor(stream), left)
                try:
                    for page in pages:
                        if stop is not None and stop.is_set():
                            return written
                        try:
                            rejected = self._deliver(page)
                        except _Transient as e:
                            self._failed(str(e))
                            return written
                        self._commit(page, rejected)
                        n = page.points - len(rejected)
                        written += n
                        batches += 1
                        self.stats.per_stream[stream] += n
                finally:
                    pages.close()  # waits for the pages being read ahead
        return written

    def _pages(self, stream: str, after: int, max_pages: int | None) -> Iterator[_Page]:
        """The stream's pending pages in journal order. Readings, the bulk, are read ahead by
        `read_ahead` threads with connections of their own while the current page is on the
        wire (formatting them costs about what the write does), up to PAGES_BUFFERED pages
        ahead; with `read_ahead` 0, one page at a time."""
        size = self.settings.batch_size
        count = 0
        if stream != "readings":
            while max_pages is None or count < max_pages:
                page = self._read_page(stream, after)
                if page is None:
                    return
                yield page
                count += 1
                if page.rows < size:
                    return
                after = page.last_rowid
            return
        span = self._readings_span(after)
        if span is None:
            return
        after, top = span
        inflight: deque[Future] = deque()
        depth = self.read_ahead + PAGES_BUFFERED if self.read_ahead else 0  # besides the page on the wire
        try:
            while True:
                while len(inflight) <= depth and (max_pages is None or count < max_pages):
                    if after >= top:  # caught up with the pass's view: look again once
                        top = self._readings_top()
                        if after >= top:
                            break
                    # a short first page: the first request (the slowest) is on the wire while
                    # full pages are formatted, instead of waiting for a full page
                    last = min(top, after + (size if count else max(1, size // FIRST_PAGE_DIVISOR)))
                    inflight.append(self._readers.submit(self._build_readings, after, last))
                    count += 1
                    after = last
                if not inflight:
                    return
                yield inflight.popleft().result()
        finally:
            for f in inflight:
                f.cancel() or f.exception()  # let a running read finish before anyone closes

    def run(self, stop: threading.Event, after_pass: Callable[[], object] | None = None) -> None:
        """Export until `stop`; `after_pass` runs between passes (the command line's retention)."""
        while not stop.is_set():
            try:
                self.run_once(stop=stop)
            except sqlite3.Error as e:  # a journal hiccup (locked, disk): try again later
                self._failed(f"journal: {e}")
            except Exception as e:  # a bug of ours or the client's must not end the export
                log.exception("export pass failed")
                self._failed(f"{type(e).__name__}: {e}")
            if after_pass is not None:
                try:
                    after_pass()
                except sqlite3.Error as e:
                    log.error("journal pruning failed: %s", e)
            stop.wait(self.retry_delay() if self.stats.failures else self.settings.poll_s)

    def retry_delay(self) -> float:
        """Exponential backoff with jitter, so several exporters do not hammer a returning server."""
        s = self.settings
        base = min(s.backoff_initial_s * 2 ** max(self.stats.failures - 1, 0), s.backoff_max_s)
        return base * random.uniform(0.5, 1.0)

    # Introspection uses a connection of its own: safe from any thread while run() works.

    def cursors(self) -> dict[str, int]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            got = dict(db.execute("SELECT stream, rowid FROM export_cursor"))
        return {s: got.get(s, 0) for s in STREAMS}

    def backlog(self) -> dict[str, int]:
        """Journal rows per stream not yet confirmed by the server."""
        cur = self.cursors()
        tables = {"readings": ("readings", "rowid"), "statuses": ("statuses", "rowid"),
                  "quarantine": ("quarantine", "rowid"), "events": ("export_events", "id")}
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            return {s: db.execute(f"SELECT COUNT(*) FROM {t} WHERE {c} > ?", (cur[s],)).fetchone()[0]
                    for s, (t, c) in tables.items()}

    def quarantined(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest points that could not be exported, with the reason."""
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            rows = db.execute("SELECT quarantined_ms, stream, source_rowid, reason, line FROM export_quarantine "
                              "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{"quarantined": ms / 1000.0, "stream": s, "source_rowid": r, "reason": why, "line": line[:300]}
                for ms, s, r, why, line in rows]

    # --- delivery ------------------------------------------------------------------------------

    def _deliver(self, page: _Page) -> list[tuple[int, str, str]]:
        """Write the page's body; the points the server rejects come back as (rowid, reason,
        line), found by bisecting the page's lines, so one bad point costs log2(batch) extra
        requests and the rest lands."""
        if not page.points:
            return []
        complaint = self._write(page.body)
        return [] if complaint is None else self._bisect(page.lines(), complaint)

    def _bisect(self, lines: list[tuple[str, int]], complaint: str) -> list[tuple[int, str, str]]:
        if len(lines) == 1:
            return [(lines[0][1], complaint, lines[0][0])]
        mid = len(lines) // 2
        rejected = []
        for half in (lines[:mid], lines[mid:]):
            c = self._write(_body(half))
            if c is not None:
                rejected += self._bisect(half, c)
        return rejected

    def _write(self, body: bytes) -> str | None:
        """POST `body` through influxdb-client's v2 write API (bytes go out as they are); None
        when the server took it all, its complaint when it rejected points. Raises _Transient
        when the data must wait."""
        from influxdb_client import WritePrecision
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError

        try:
            self.write_api.write(self.settings.bucket, self.settings.org, body, write_precision=WritePrecision.MS)
            return None
        except ApiException as e:
            status = e.status or 0
            reason = _api_message(e)
            # 400 bad point / partial write, 422 outside retention, 413 batch too large
            if status in (400, 413, 422):
                return f"HTTP {status}: {reason}"
            # 401/403/404 (token, bucket) and 429/5xx: the data waits for the operator or server
            raise _Transient(f"HTTP {status}: {reason}") from None
        except (HTTPError, OSError) as e:
            raise _Transient(f"{type(e).__name__}: {e}") from None

    def _commit(self, page: _Page, rejected: list[tuple[int, str, str]]) -> None:
        now_ms = int(time.time() * 1000)
        bad = page.bad + rejected
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if bad:
                db.executemany(
                    "INSERT INTO export_quarantine (quarantined_ms, stream, source_rowid, reason, line) VALUES (?,?,?,?,?)",
                    [(now_ms, page.stream, rowid, reason[:REASON_MAX], line) for rowid, reason, line in bad])
            db.execute("INSERT INTO export_cursor VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET rowid = excluded.rowid",
                       (page.stream, page.last_rowid))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        s = self.stats
        if s.failures:
            log.info("InfluxDB back after %d failed attempts", s.failures)
        s.failures = 0
        s.batches += 1
        s.points += page.points - len(rejected)
        s.quarantined += len(bad)
        s.last_success = time.time()
        for rowid, reason, _ in bad:
            log.warning("export %s row %d quarantined: %s", page.stream, rowid, reason[:200])

    def _failed(self, error: str) -> None:
        s = self.stats
        s.failures += 1
        s.total_failures += 1
        s.last_error = error
        log.log(logging.WARNING if s.failures == 1 else logging.DEBUG,
                "InfluxDB write failed (%s); data waits in the journal, retrying with backoff", error)

    # --- reading the journal -------------------------------------------------------------------

    def _cursor(self, stream: str) -> int:
        row = self.db.execute("SELECT rowid FROM export_cursor WHERE stream = ?", (stream,)).fetchone()
        return row[0] if row else 0

    def _read_page(self, stream: str, after: int) -> _Page | None:
        return getattr(self, f"_page_{stream}")(after, self.settings.batch_size)

    def _page_readings(self, after: int, limit: int) -> _Page | None:
        span = self._readings_span(after)
        if span is None:
            return None
        after, top = span
        return self._build_readings(after, min(top, after + limit))

    # Pages of readings are rowid ranges, not "the next n rows": no query per page to find where
    # it ends. Rowids above the cursor are dense (SQLite hands out max + 1, pruning deletes only
    # behind the cursor); a gap would only make a page hold fewer rows.

    def _readings_span(self, after: int) -> tuple[int, int] | None:
        """(where the pending readings start: just before the first rowid past `after`, the last
        rowid); None when nothing is pending."""
        first = self.db.execute("SELECT MIN(rowid) FROM readings WHERE rowid > ?", (after,)).fetchone()[0]
        return None if first is None else (first - 1, self._readings_top())

    def _readings_top(self) -> int:
        return self.db.execute("SELECT MAX(rowid) FROM readings").fetchone()[0] or 0

    def _build_readings(self, after: int, last: int) -> _Page:
        """The readings with rowids in (after, last]. Runs on a read-ahead thread, with that
        thread's connection."""
        with self._snapshot() as db:  # one snapshot for all queries
            points, body = db.execute(_READING_BODY, (after, last)).fetchone()
            if points:
                body = self._headed(db, after, last, points, body)
            lines, bad = self._odd_readings(db, after, last) if points < last - after else ([], [])
        if lines:  # body: NULL when SQLite formatted no row
            body = b"\n".join(([body] if body else []) + [text.encode("utf-8") for text, _ in lines])
        return _Page("readings", last, last - after, points + len(lines), body or b"", bad,
                     partial(self._reading_lines, after, last))

    def _headed(self, db: sqlite3.Connection, after: int, last: int, points: int, body: bytes) -> bytes:
        """`body` with the first line's prefix in front. Should SQLite ever aggregate the rows in
        another order than it scans them, the lines are made one by one instead."""
        prefix, first = db.execute(_READING_HEAD, (after, last)).fetchone()
        if body.startswith(first) and (points == 1 or body[len(first):len(first) + 1] == b"\n"):
            return prefix + body
        log.warning("export: SQLite joined the readings %d..%d out of order; formatting them line by line",
                    after + 1, last)
        return "\n".join(text for text, _ in self._lines_in(db, after, last)).encode("utf-8")

    def _reading_lines(self, after: int, last: int) -> list[tuple[str, int]]:
        """The page's lines one by one with their source rowid, as `_build_readings` sent them."""
        with self._snapshot() as db:
            return self._lines_in(db, after, last) + self._odd_readings(db, after, last)[0]

    @staticmethod
    def _lines_in(db: sqlite3.Connection, after: int, last: int) -> list[tuple[str, int]]:
        return [(text, rowid) for rowid, text in db.execute(_READING_LINES, (after, last))]

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """This thread's read connection inside one read transaction (one view of the journal)."""
        db = self._reader()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def _odd_readings(self, db: sqlite3.Connection, after: int, last: int
                      ) -> tuple[list[tuple[str, int]], list[tuple[int, str, str]]]:
        """Lines (with Python's repr) and quarantined rows for the rare readings SQLite cannot
        format exactly or at all; one point each."""
        lines: list[tuple[str, int]] = []
        bad: list[tuple[int, str, str]] = []
        for rowid, sid, ts_ms, value in db.execute(_ODD_READINGS, (after, last)):
            prefix = self._series_prefix.get(sid)
            if prefix is None:
                bad.append((rowid, f"unknown series {sid}", f"series={sid} ts_ms={ts_ms} value={value!r}"))
            elif not isinstance(value, float) or not math.isfinite(value):
                bad.append((rowid, f"non-finite or non-numeric value {value!r}", f"{prefix}{value!r} {ts_ms}"))
            else:
                lines.append((f"{prefix}{value!r} {ts_ms}", rowid))
        return lines, bad

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection, its TEMP table of series brought up to date."""
        r = self._local.__dict__.get("reader")
        if r is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
            conn.execute("CREATE TEMP TABLE export_series (id INTEGER PRIMARY KEY, newline_prefix TEXT NOT NULL)")
            r = self._local.reader = [conn, 0]
            with self._series_lock:
                self._reader_conns.append(conn)
        conn, top = r
        rows = self._sync_series(top)
        if rows:
            conn.executemany("INSERT OR REPLACE INTO temp.export_series VALUES (?,?)",
                             [(sid, "\n" + prefix) for sid, prefix in rows])
            r[1] = rows[-1][0]
        return conn

    def _sync_series(self, top: int) -> list[tuple[int, str]]:
        """Series after id `top` as (id, line prefix): the measurement, tags, a space, the field
        key and `=`, escaped here once. Series are never deleted."""
        with self._series_lock:
            new = self._series_db.execute("SELECT id, site, device, kind, channel FROM series WHERE id > ? "
                                          "ORDER BY id", (top,)).fetchall()
            rows = []
            for sid, site, device, kind, channel in new:
                prefix = self._series_prefix.get(sid)
                if prefix is None:
                    prefix = self._series_prefix[sid] = (f"{self._reading_prefix(site, device, kind)} "
                                                         f"{channel.translate(_ESC_KEY)}=")
                rows.append((sid, prefix))
            return rows

    def _reading_prefix(self, site: str, device: str, kind: str) -> str:
        """`reading,<tags>`, escaped once per device (its channels share it)."""
        key = (site, device, kind)
        prefix = self._device_prefixes.get(key)
        if prefix is None:
            tags = {"site": site, "device": device, "kind": kind, "county": self._county(site)}
            prefix = self._device_prefixes[key] = "reading" + tag_set(tags)
        return prefix

    def _county(self, site: str) -> str:
        s = self.registry.site(site) if self.registry is not None else None
        return s.county if s is not None else ""

    def _tags_of_device(self, device: str | None) -> dict[str, str]:
        """site, device, kind, county from the registry, else from the journal's series; {} for a
        device neither knows (an unknown id must not become a tag: anyone can invent ids)."""
        if not device:
            return {}
        tags = self._device_tags.get(device)
        if tags is None:
            d = self.registry.device(device) if self.registry is not None else None
            if d is not None:
                tags = {"site": d.site, "device": device, "kind": d.kind, "county": self._county(d.site)}
            else:
                row = self.db.execute("SELECT site, kind FROM series WHERE device = ? LIMIT 1", (device,)).fetchone()
                tags = ({"site": row[0], "device": device, "kind": row[1], "county": self._county(row[0])}
                        if row else {})
            self._device_tags[device] = tags
        return tags

    def _rows_after(self, select: str, key: str, after: int, limit: int) -> list[tuple]:
        """The next `limit` rows of a journal table past the stream's cursor, in key order."""
        return self.db.execute(f"{select} WHERE {key} > ? ORDER BY {key} LIMIT ?", (after, limit)).fetchall()

    def _page_statuses(self, after: int, limit: int) -> _Page | None:
        rows = self._rows_after("SELECT rowid, device, ts_ms, fields FROM statuses", "rowid", after, limit)
        if not rows:
            return None
        lines, bad = [], []
        for rowid, device, ts_ms, raw in rows:
            try:
                doc = json.loads(raw)
                if not isinstance(doc, dict):
                    raise BadPoint("status fields are not an object")
                fields = flatten_fields(doc) or {"reported": True}  # a bare heartbeat is still news
                for k in ("sw_version", "sound_state", "pa_state"):  # text: keep one field type
                    if k in fields:
                        fields[k] = str(doc.get(k))
                tags = self._tags_of_device(device)
                if not tags:  # not a tag: anyone can invent device ids
                    fields["device_id"] = str(device)
                lines.append((make_line("device_status", tags, fields, ts_ms), rowid))
            except (BadPoint, ValueError) as e:
                bad.append((rowid, f"status of {device}: {e}", f"{device} {ts_ms} {raw[:2000]}"))
        return _Page.of("statuses", rows[-1][0], len(rows), lines, bad)

    def _page_quarantine(self, after: int, limit: int) -> _Page | None:
        rows = self._rows_after("SELECT rowid, received_ms, reason, device FROM quarantine", "rowid", after, limit)
        if not rows:
            return None
        full = len(rows) == limit
        if full and rows[0][1] != rows[-1][1]:
            # one journal write shares one received_ms: keep its rows in one page, so its counts
            # are not split into two points that overwrite each other
            last_ms = rows[-1][1]
            rows = [r for r in rows if r[1] != last_ms]
        counts: dict[tuple[int, str, str | None], list[int]] = {}
        for rowid, ms, reason, device in rows:
            dev = device if self._tags_of_device(device) else None
            c = counts.setdefault((ms, reason, dev), [rowid, 0])
            c[1] += 1
        lines = [(make_line("quarantine", {"reason": reason, **self._tags_of_device(dev)}, {"count": n}, ms), rowid)
                 for (ms, reason, dev), (rowid, n) in counts.items()]
        return _Page.of("quarantine", rows[-1][0], limit if full else len(rows), lines, [])

    def _page_events(self, after: int, limit: int) -> _Page | None:
        rows = self._rows_after("SELECT id, measurement, tags, fields, ts_ms FROM export_events", "id", after, limit)
        if not rows:
            return None
        lines, bad = [], []
        for rowid, measurement, tags, fields, ts_ms in rows:
            try:
                t, f = json.loads(tags), json.loads(fields)
                if not isinstance(t, dict) or not isinstance(f, dict):
                    raise BadPoint("tags and fields must be JSON objects")
                lines.append((make_line(measurement, t, f, ts_ms), rowid))
            except (BadPoint, ValueError, TypeError) as e:
                bad.append((rowid, f"event {measurement}: {e}", f"{measurement} {tags} {fields} {ts_ms}"[:4000]))
        return _Page.of("events", rows[-1][0], len(rows), lines, bad)


def _api_message(e: Exception) -> str:
    msg = getattr(e, "message", None)
    if not msg:
        body = getattr(e, "body", None)
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        msg = body or getattr(e, "reason", None) or str(e)
    msg = " ".join(str(msg).split())
    # servers quote the offending line; keep the start and the end of a long complaint
    return msg if len(msg) <= REASON_MAX else msg[:REASON_MAX // 2 - 2] + " … " + msg[-(REASON_MAX // 2 - 2):]


# --- command line ------------------------------------------------------------------------------

def cmd_export_influx(args) -> int:
    cfg = load_config(args.config)
    influx = cfg.settings.influx
    if influx is None:
        raise ConfigError(cfg.source, "influx", "no `influx:` section: InfluxDB is not configured "
                          "(the journal alone serves)")
    path = journal_path(args.state_dir)
    if not path.exists():
        raise ConfigError(str(path), "", "no journal here: is --state-dir right?")
    token = resolve_token(influx, Path(cfg.source).parent)
    exporter = InfluxExporter(path, influx, cfg.registry, token)
    retention = Retention(path, cfg.settings.journal.retention_days, cursors=exporter.cursors)
    try:
        if args.once:
            written = exporter.run_once()
            pruned = retention.tick(time.time()) or {}
            s = exporter.stats
            print(json.dumps({"points": written, "quarantined": s.quarantined, "backlog": exporter.backlog(),
                              "pruned": pruned, "error": s.last_error if s.failures else None}))
            return 1 if s.failures else 0
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        log.info("exporting %s to %s (bucket %s)", path, influx.url, influx.bucket)
        exporter.run(stop, after_pass=lambda: retention.tick(time.time()))
        return 0
    finally:
        exporter.close()


def add_cli(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("export-influx", help="export the journal to InfluxDB (cursor, backoff, quarantine)")
    sp.add_argument("--config", help="configuration file with an `influx:` section")
    sp.add_argument("--state-dir", required=True)
    sp.add_argument("--once", action="store_true", help="export what is pending, prune, print JSON, exit "
                    "(exit 1 when the server could not be reached)")
    sp.set_defaults(func=cmd_export_influx)
