"""CAP messages in the journal file, beside the alert tables, written in the lifecycle's
transaction: an alert and its public message commit together. One row per alert and version;
the stored XML is what every reader and endpoint gets, byte for byte."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS cap_messages (
    identifier TEXT PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    site TEXT NOT NULL,
    event TEXT NOT NULL,                -- opened raised lowered renewed closed stood_down
    msg_type TEXT NOT NULL,             -- Alert | Update | Cancel
    status TEXT NOT NULL,               -- Actual | Exercise
    level TEXT,
    sent REAL NOT NULL,
    sent_text TEXT NOT NULL,            -- as written in the message (references quote it)
    expires REAL NOT NULL,
    headline TEXT NOT NULL,
    xml BLOB NOT NULL,
    UNIQUE (alert_id, version)
);
CREATE INDEX IF NOT EXISTS cap_messages_sent ON cap_messages (sent);
"""


@dataclass(frozen=True, slots=True)
class CapRow:
    identifier: str
    alert_id: int
    version: int
    site: str
    event: str
    msg_type: str
    status: str
    level: str | None
    sent: float
    sent_text: str
    expires: float
    headline: str
    xml: bytes

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> "CapRow":
        return cls(**{k: r[k] for k in r.keys()})


def create(db: sqlite3.Connection) -> None:
    for statement in SCHEMA.split(";"):  # executescript would commit the caller's transaction
        if statement.strip():
            db.execute(statement)


def insert(db: sqlite3.Connection, row: CapRow) -> None:
    db.execute("INSERT INTO cap_messages (identifier, alert_id, version, site, event, msg_type, status, level, sent, "
               "sent_text, expires, headline, xml) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
               (row.identifier, row.alert_id, row.version, row.site, row.event, row.msg_type, row.status, row.level,
                row.sent, row.sent_text, row.expires, row.headline, row.xml))


def of_alert(db: sqlite3.Connection, alert_id: int) -> list[CapRow]:
    return [CapRow.from_row(r) for r in
            db.execute("SELECT * FROM cap_messages WHERE alert_id = ? ORDER BY version", (alert_id,))]


def get(db: sqlite3.Connection, ident: str) -> CapRow | None:
    r = db.execute("SELECT * FROM cap_messages WHERE identifier = ?", (ident,)).fetchone()
    return CapRow.from_row(r) if r else None


def current_and_recent(db: sqlite3.Connection, since: float, status: str | None = None,
                       limit: int = 500) -> list[CapRow]:
    """Every message of an alert not yet cancelled, and every message sent since `since`; newest first."""
    sql = ("SELECT * FROM cap_messages WHERE (sent >= ? OR alert_id IN (SELECT alert_id FROM cap_messages "
           "GROUP BY alert_id HAVING SUM(msg_type = 'Cancel') = 0))")
    args: list = [since]
    if status is not None:
        sql += " AND status = ?"
        args.append(status)
    sql += " ORDER BY sent DESC, version DESC LIMIT ?"
    return [CapRow.from_row(r) for r in db.execute(sql, (*args, limit))]
