"""Alert state, its audit trail and silences: plain rows, written inside the caller's transaction."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, fields
from typing import Any

from geowarn.drivers.timestamps import format_ts


class AlertNotFound(LookupError):
    pass


class AlertClosed(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    kind: str  # hazard | fault
    site: str
    device: str
    fault: str
    drill: bool
    status: str  # open | closed
    level: str | None
    max_level: str | None
    reasons: list[str]
    forecast_failure_ts: float | None
    detail: str
    opened_at: float
    level_since: float
    updated_at: float
    closed_at: float | None
    close_reason: str | None
    closed_by: str | None
    acked_at: float | None
    acked_by: str | None
    acked_via: str | None
    round: int
    last_notified_at: float | None
    tier: int
    accelerated: bool
    siren_level: str | None
    silenced: bool

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Alert":
        d = {f.name: row[f.name] for f in fields(cls)}
        d["reasons"] = json.loads(d["reasons"] or "[]")
        for flag in ("drill", "accelerated", "silenced"):
            d[flag] = bool(d[flag])
        return cls(**d)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("forecast_failure_ts", "opened_at", "level_since", "updated_at", "closed_at", "acked_at",
                  "last_notified_at"):
            if out[k] is not None:
                out[k] = format_ts(out[k])
        return out


def get(db: sqlite3.Connection, alert_id: int) -> Alert:
    row = db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        raise AlertNotFound(f"no alert {alert_id}")
    return Alert.from_row(row)


def open_hazard(db: sqlite3.Connection, site: str, drill: bool) -> Alert | None:
    row = db.execute("SELECT * FROM alerts WHERE kind = 'hazard' AND status = 'open' AND site = ? AND drill = ?",
                     (site, int(drill))).fetchone()
    return Alert.from_row(row) if row else None


def open_fault(db: sqlite3.Connection, site: str, device: str, fault: str, drill: bool) -> Alert | None:
    row = db.execute("SELECT * FROM alerts WHERE kind = 'fault' AND status = 'open' AND site = ? AND device = ? "
                     "AND fault = ? AND drill = ?", (site, device, fault, int(drill))).fetchone()
    return Alert.from_row(row) if row else None


def open_alerts(db: sqlite3.Connection) -> list[Alert]:
    return [Alert.from_row(r) for r in db.execute("SELECT * FROM alerts WHERE status = 'open' ORDER BY id")]


def listing(db: sqlite3.Connection, open_only: bool = True, limit: int = 500) -> list[Alert]:
    sql = "SELECT * FROM alerts" + (" WHERE status = 'open'" if open_only else "") + " ORDER BY id DESC LIMIT ?"
    return [Alert.from_row(r) for r in db.execute(sql, (limit,))]


def site_alerts(db: sqlite3.Connection, site: str, limit: int = 50) -> list[Alert]:
    """A site's alerts, open and closed, newest first."""
    return [Alert.from_row(r) for r in db.execute("SELECT * FROM alerts WHERE site = ? ORDER BY id DESC LIMIT ?",
                                                  (site, limit))]


def open_counts(db: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """(kind, level or '', open alerts)."""
    return db.execute("SELECT kind, COALESCE(level, ''), COUNT(*) FROM alerts WHERE status = 'open' "
                      "GROUP BY 1, 2").fetchall()


def insert(db: sqlite3.Connection, **values: Any) -> int:
    if "reasons" in values:
        values["reasons"] = json.dumps(values["reasons"], ensure_ascii=False)
    cols = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    return db.execute(f"INSERT INTO alerts ({cols}) VALUES ({marks})", tuple(values.values())).lastrowid


def update(db: sqlite3.Connection, alert_id: int, **values: Any) -> None:
    if "reasons" in values:
        values["reasons"] = json.dumps(values["reasons"], ensure_ascii=False)
    sets = ", ".join(f"{k} = ?" for k in values)
    db.execute(f"UPDATE alerts SET {sets} WHERE id = ?", (*values.values(), alert_id))


def audit(db: sqlite3.Connection, alert_id: int, ts: float, event: str, who: str | None = None,
          **detail: Any) -> None:
    db.execute("INSERT INTO alert_history (alert_id, ts, event, who, detail) VALUES (?,?,?,?,?)",
               (alert_id, ts, event, who, json.dumps(detail, ensure_ascii=False, default=str)))


def history(db: sqlite3.Connection, alert_id: int) -> list[dict[str, Any]]:
    return [{"ts": format_ts(r["ts"]), "event": r["event"], "who": r["who"], **json.loads(r["detail"])}
            for r in db.execute("SELECT * FROM alert_history WHERE alert_id = ? ORDER BY id", (alert_id,))]


# --- silences: maintenance windows for data-quality alerts only ------------------------------

def add_silence(db: sqlite3.Connection, *, site: str | None, device: str | None, fault: str | None,
                starts: float, ends: float, who: str, reason: str, now: float) -> int:
    if ends <= starts:
        raise ValueError("a silence must end after it starts")
    if not (site or device):
        raise ValueError("a silence names a site or a device")
    if not reason.strip() or not who.strip():
        raise ValueError("a silence needs who and a reason")
    return db.execute("INSERT INTO silences (site, device, fault, starts, ends, who, reason, created) "
                      "VALUES (?,?,?,?,?,?,?,?)", (site, device, fault, starts, ends, who, reason, now)).lastrowid


def silenced(db: sqlite3.Connection, site: str, device: str, fault: str, ts: float) -> bool:
    return db.execute(
        "SELECT 1 FROM silences WHERE starts <= ? AND ends > ? AND (site IS NULL OR site = ?) "
        "AND (device IS NULL OR device = ?) AND (fault IS NULL OR fault = ?) LIMIT 1",
        (ts, ts, site, device, fault)).fetchone() is not None
