"""The durable outbox: every notification and device command is a row here before it leaves.

A row is keyed by an idempotency key (alert, notification round, recipient or device), so
queueing the same thing twice stores it once. Rows to one target leave in order. A message is
`delivered` once apprise confirms it and is never sent again; an attempt cut short by a crash
(`sending`) goes back to `pending` when the worker restarts. Commands are `published`, then
`confirmed` by the device's reply (matched by msgid), retried on silence, `failed` at the end.
"""
from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import dataclass

from .settings import RetrySettings

# what must leave before the next row to the same target may (a command awaiting its reply
# does not hold back the next one: an alarm that never answers must not silence the broadcast)
_AHEAD = {"apprise": ("pending", "sending"), "mqtt": ("pending", "sending"), "http": ("pending", "sending")}


@dataclass(frozen=True, slots=True)
class OutMessage:
    key: str
    alert_id: int | None  # None: an advisory beside any alert (a weather warning's patrol order)
    site: str
    role: str
    recipient: str
    target: str  # apprise URL, `${ENV}` unresolved: no secret is ever stored
    title: str
    body: str
    drill: bool
    priority: int


@dataclass(frozen=True, slots=True)
class OutCommand:
    key: str
    alert_id: int | None
    site: str
    device: str
    topic: str
    payload: bytes
    command: str
    msgid: str
    purpose: str  # siren | sampling
    priority: int
    max_attempts: int
    reply_timeout_s: float
    drill: bool


@dataclass(frozen=True, slots=True)
class OutPost:
    """A document POSTed to a system's endpoint (a CAP message to a warning platform)."""

    key: str
    alert_id: int
    site: str
    recipient: str  # the endpoint as shown: no credentials
    target: str  # the URL, `${ENV}` unresolved
    title: str
    payload: bytes
    content_type: str
    drill: bool
    priority: int


def msgid_for(key: str) -> str:
    """A numeric msgid stable for one outbox key (firmware echoes it in the reply)."""
    return str(int(hashlib.sha1(key.encode()).hexdigest()[:12], 16) % 10**9)


def target_key(target: str) -> str:
    return hashlib.sha1(target.encode()).hexdigest()[:16]


def enqueue_message(db: sqlite3.Connection, m: OutMessage, now: float) -> bool:
    """True when queued, False when this key was queued before."""
    cur = db.execute(
        "INSERT OR IGNORE INTO outbox (key, alert_id, channel, purpose, priority, site, role, recipient, target, "
        "target_key, title, body, drill, status, next_at, created, updated) "
        "VALUES (?,?,'apprise','notify',?,?,?,?,?,?,?,?,?,'pending',0,?,?)",
        (m.key, m.alert_id, m.priority, m.site, m.role, m.recipient, m.target, target_key(m.target), m.title,
         m.body, int(m.drill), now, now))
    return cur.rowcount == 1


def enqueue_command(db: sqlite3.Connection, c: OutCommand, now: float) -> bool:
    cur = db.execute(
        "INSERT OR IGNORE INTO outbox (key, alert_id, channel, purpose, priority, site, device, target, target_key, "
        "payload, command, msgid, drill, status, max_attempts, reply_timeout_s, next_at, created, updated) "
        "VALUES (?,?,'mqtt',?,?,?,?,?,?,?,?,?,?,'pending',?,?,0,?,?)",
        (c.key, c.alert_id, c.purpose, c.priority, c.site, c.device, c.topic, target_key(c.topic), c.payload,
         c.command, c.msgid, int(c.drill), c.max_attempts, c.reply_timeout_s, now, now))
    return cur.rowcount == 1


def enqueue_post(db: sqlite3.Connection, p: OutPost, now: float) -> bool:
    cur = db.execute(
        "INSERT OR IGNORE INTO outbox (key, alert_id, channel, purpose, priority, site, role, recipient, target, "
        "target_key, title, payload, content_type, drill, status, next_at, created, updated) "
        "VALUES (?,?,'http','cap',?,?,'system',?,?,?,?,?,?,?,'pending',0,?,?)",
        (p.key, p.alert_id, p.priority, p.site, p.recipient, p.target, target_key(p.target), p.title, p.payload,
         p.content_type, int(p.drill), now, now))
    return cur.rowcount == 1


def cancel_pending(db: sqlite3.Connection, alert_id: int, key_pattern: str, now: float) -> int:
    return db.execute("UPDATE outbox SET status = 'cancelled', updated = ? WHERE alert_id = ? AND status = 'pending' "
                      "AND key LIKE ?", (now, alert_id, key_pattern)).rowcount


# --- the worker's side ------------------------------------------------------------------------

def recover(db: sqlite3.Connection, now: float, retry: RetrySettings | None = None) -> int:
    """After a crash: attempts that never finished are unconfirmed, so they go again. A retry
    due further ahead than the longest backoff was scheduled before the wall clock stepped
    back: it is due now, not an hour late."""
    db.execute("UPDATE outbox_attempts SET finished = ?, ok = 0, detail = 'interrupted (worker stopped)' "
               "WHERE finished IS NULL", (now,))
    if retry is not None:
        db.execute("UPDATE outbox SET next_at = 0 WHERE status = 'pending' AND next_at > ?", (now + retry.max_s,))
    # the monotonic clock of a previous boot means nothing now: the wait for a reply starts again
    db.execute("UPDATE outbox SET published_mono = ? WHERE status = 'published'", (time.monotonic(),))
    return db.execute("UPDATE outbox SET status = 'pending', next_at = 0, updated = ? WHERE status = 'sending'",
                      (now,)).rowcount


def claim(db: sqlite3.Connection, channel: str, now: float, limit: int) -> list[sqlite3.Row]:
    ahead = ",".join(f"'{s}'" for s in _AHEAD[channel])
    rows = db.execute(
        f"SELECT * FROM outbox o WHERE status = 'pending' AND channel = ? AND next_at <= ? "
        f"AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.target_key = o.target_key AND p.id < o.id "
        f"AND p.status IN ({ahead})) ORDER BY priority, id LIMIT ?", (channel, now, limit)).fetchall()
    db.executemany("UPDATE outbox SET status = 'sending', updated = ? WHERE id = ?", [(now, r["id"]) for r in rows])
    return rows


def next_due(db: sqlite3.Connection, channel: str) -> float | None:
    row = db.execute("SELECT MIN(next_at) FROM outbox WHERE status = 'pending' AND channel = ?", (channel,)).fetchone()
    return row[0]


def begin_attempt(db: sqlite3.Connection, row: sqlite3.Row, now: float, shown_target: str) -> tuple[int, int]:
    """(attempt number, attempt id); commands become `published` before they leave, so a reply
    racing our own bookkeeping always finds its row."""
    n = row["attempts"] + 1
    mqtt = row["channel"] == "mqtt"
    status = "published" if mqtt else "sending"
    db.execute("UPDATE outbox SET attempts = ?, status = ?, published_at = ?, published_mono = ?, updated = ? "
               "WHERE id = ?", (n, status, now if mqtt else None, time.monotonic() if mqtt else None, now, row["id"]))
    aid = db.execute("INSERT INTO outbox_attempts (outbox_id, attempt, started, target) VALUES (?,?,?,?)",
                     (row["id"], n, now, shown_target)).lastrowid
    return n, aid


def backoff_s(attempts: int, retry: RetrySettings) -> float:
    return min(retry.base_s * 2 ** max(attempts - 1, 0), retry.max_s)


def finish_attempt(db: sqlite3.Connection, row: sqlite3.Row, attempt: int, attempt_id: int, ok: bool, detail: str,
                   now: float, retry: RetrySettings) -> None:
    db.execute("UPDATE outbox_attempts SET finished = ?, ok = ?, detail = ? WHERE id = ?",
               (now, int(ok), detail[:2000], attempt_id))
    if row["channel"] == "mqtt":
        if not ok:  # not even the broker took it: try again after a pause
            db.execute("UPDATE outbox SET status = 'pending', next_at = ?, last_error = ?, updated = ? "
                       "WHERE id = ? AND status = 'published'",
                       (now + backoff_s(attempt, retry), detail[:500], now, row["id"]))
        return
    if ok:
        db.execute("UPDATE outbox SET status = 'delivered', done_at = ?, last_error = NULL, updated = ? WHERE id = ?",
                   (now, now, row["id"]))
    else:
        db.execute("UPDATE outbox SET status = 'pending', next_at = ?, last_error = ?, updated = ? WHERE id = ?",
                   (now + backoff_s(attempt, retry), detail[:500], now, row["id"]))


def record_express(db: sqlite3.Connection, key: str, ok: bool, detail: str, now: float,
                   retry: RetrySettings) -> None:
    """Book a command the express path published straight from memory. If the regular lane or a
    reply got to the row first, only the attempt is recorded."""
    row = db.execute("SELECT * FROM outbox WHERE key = ?", (key,)).fetchone()
    if row is None:
        return
    if row["status"] == "pending":
        attempt, attempt_id = begin_attempt(db, row, now, row["target"])
        finish_attempt(db, row, attempt, attempt_id, ok, "express: " + detail, now, retry)
    else:
        db.execute("INSERT INTO outbox_attempts (outbox_id, attempt, started, finished, ok, target, detail) "
                   "VALUES (?,?,?,?,?,?,?)", (row["id"], row["attempts"], now, now, int(ok), row["target"],
                                              "express: " + detail[:500]))
        if not ok:  # the lane left this attempt to us and it failed: retry, do not wait for a reply
            db.execute("UPDATE outbox SET status = 'pending', next_at = ?, last_error = ?, updated = ? "
                       "WHERE id = ? AND status = 'published'",
                       (now + backoff_s(row["attempts"], retry), detail[:500], now, row["id"]))


# --- command replies and their absence --------------------------------------------------------

def match_reply(db: sqlite3.Connection, device: str | None, command: str, msgid: str | None) -> sqlite3.Row | None:
    if msgid:
        row = db.execute("SELECT * FROM outbox WHERE channel = 'mqtt' AND msgid = ? "
                         "AND status IN ('published', 'failed', 'pending') ORDER BY id DESC LIMIT 1",
                         (msgid,)).fetchone()
        if row is not None:
            return row
    if device:  # firmware that does not echo msgid: the oldest command of that name awaiting a reply
        return db.execute("SELECT * FROM outbox WHERE channel = 'mqtt' AND device = ? AND command = ? "
                          "AND status = 'published' ORDER BY id LIMIT 1", (device, command)).fetchone()
    return None


def settle_command(db: sqlite3.Connection, row: sqlite3.Row, ok: bool, detail: str, now: float) -> str:
    """Apply a reply (or its absence); returns the row's new status."""
    if ok:
        status = "confirmed"
    elif row["attempts"] >= (row["max_attempts"] or 1):
        status = "failed"
    else:
        status = "pending"
    # a retry is due at once: `now` is the lifecycle's clock, the worker keeps its own
    db.execute("UPDATE outbox SET status = ?, done_at = ?, next_at = 0, last_error = ?, updated = ? WHERE id = ?",
               (status, now if status != "pending" else None, None if ok else detail[:500], now, row["id"]))
    return status


def unanswered(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Commands whose reply is overdue. A reply's wait is a round trip through the network and
    the device: real elapsed time (monotonic), whatever clock the lifecycle runs on (a drill's
    simulated clock passes 15 s in a millisecond), and immune to wall-clock steps."""
    return db.execute("SELECT * FROM outbox WHERE channel = 'mqtt' AND status = 'published' "
                      "AND published_mono + reply_timeout_s <= ?", (time.monotonic(),)).fetchall()


def unpublishable(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """Commands the broker has not taken after all their attempts (broker down, refused): still
    retried, but their failure is reported once."""
    return db.execute("SELECT * FROM outbox WHERE channel = 'mqtt' AND status IN ('pending', 'sending') "
                      "AND attempts >= max_attempts AND failing_reported = 0").fetchall()


# --- contacts that keep failing ---------------------------------------------------------------

def failing_unreported(db: sqlite3.Connection, threshold: int) -> list[sqlite3.Row]:
    return db.execute("SELECT * FROM outbox WHERE channel IN ('apprise', 'http') AND status IN ('pending', 'sending') "
                      "AND attempts >= ? AND failing_reported = 0", (threshold,)).fetchall()


def recovered_reported(db: sqlite3.Connection) -> list[sqlite3.Row]:
    return db.execute("SELECT * FROM outbox WHERE failing_reported = 1 AND status IN ('delivered', 'cancelled')"
                      ).fetchall()


def mark_reported(db: sqlite3.Connection, row_id: int, value: int) -> None:
    db.execute("UPDATE outbox SET failing_reported = ? WHERE id = ?", (value, row_id))


def counts(db: sqlite3.Connection) -> dict[str, int]:
    return {r[0]: r[1] for r in db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status")}


# --- what is read beside the lifecycle: health, metrics, the console, the CLI, drills ---------

WAITING = ("pending", "sending")


def overdue(db: sqlite3.Connection, queued_before: float) -> int:
    """Deliveries still not made that were queued before this time (every row is due when
    queued; `next_at` only says when the next retry is, and moves on with each failure)."""
    return db.execute("SELECT COUNT(*) FROM outbox WHERE status IN (?, ?) AND created < ?",
                      (*WAITING, queued_before)).fetchone()[0]


def oldest_waiting(db: sqlite3.Connection) -> float | None:
    return db.execute("SELECT MIN(created) FROM outbox WHERE status IN (?, ?)", WAITING).fetchone()[0]


def retrying(db: sqlite3.Connection, limit: int = 20) -> list[dict]:
    """Rows still waiting after failed attempts, the most tried first."""
    return [dict(zip(("site", "role", "recipient", "command", "device", "attempts", "last_error"), r))
            for r in db.execute("SELECT site, role, recipient, command, device, attempts, last_error FROM outbox "
                                "WHERE status IN (?, ?) AND attempts > 0 ORDER BY attempts DESC LIMIT ?",
                                (*WAITING, limit))]


def attempt_results(db: sqlite3.Connection) -> list[tuple[str, bool, int]]:
    """(channel, ok, attempts) over every finished delivery attempt."""
    return [(channel, bool(ok), n) for channel, ok, n in db.execute(
        "SELECT o.channel, a.ok, COUNT(*) FROM outbox_attempts a JOIN outbox o ON o.id = a.outbox_id "
        "WHERE a.finished IS NOT NULL GROUP BY 1, 2")]


SITE_LOG_COLUMNS = ("id", "alert_id", "channel", "purpose", "role", "recipient", "device", "command", "title",
                    "status", "attempts", "created", "updated", "done_at", "last_error", "drill")


def site_log(db: sqlite3.Connection, site: str, limit: int) -> list[dict]:
    """A site's notifications and commands, newest first."""
    return [dict(zip(SITE_LOG_COLUMNS, r)) for r in db.execute(
        f"SELECT {', '.join(SITE_LOG_COLUMNS)} FROM outbox WHERE site = ? ORDER BY id DESC LIMIT ?", (site, limit))]


def notified_alerts(db: sqlite3.Connection) -> set[int]:
    """Alerts at least one message of which was delivered."""
    return {a for (a,) in db.execute("SELECT DISTINCT alert_id FROM outbox WHERE purpose = 'notify' "
                                     "AND status IN ('delivered', 'confirmed')")}


def unsettled(db: sqlite3.Connection, now: float) -> int:
    """Rows due now or commands awaiting their reply: the outbox is not done yet."""
    return db.execute("SELECT COUNT(*) FROM outbox WHERE (status IN (?, ?) AND next_at <= ?) OR status = 'published'",
                      (*WAITING, now)).fetchone()[0]
