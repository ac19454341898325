"""Field reports as received, accepted or rejected with the reason, in the state directory
(`field.sqlite`; photos beside it under `field-photos/`). Nothing a monitor sends is lost."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY, received REAL NOT NULL, monitor TEXT, site TEXT, status TEXT NOT NULL,
    reason TEXT, body TEXT NOT NULL, photo TEXT);
CREATE INDEX IF NOT EXISTS reports_site ON reports (site, received);
"""


class FieldStore:
    def __init__(self, state_dir: str | Path):
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.photos = self.dir / "field-photos"
        self._db = sqlite3.connect(self.dir / "field.sqlite", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def add(self, monitor: str | None, site: str | None, status: str, reason: str | None, body: dict[str, Any],
            photo: tuple[bytes, str] | None = None, now: float | None = None) -> int:
        """Keep a report; `photo` is (the re-encoded image, its extension: jpg or png)."""
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO reports (received, monitor, site, status, reason, body) VALUES (?,?,?,?,?,?)",
                (time.time() if now is None else now, monitor, site, status, reason,
                 json.dumps(body, ensure_ascii=False, allow_nan=False)))
            rid = int(cur.lastrowid)
            if photo:
                self.photos.mkdir(exist_ok=True)
                path = self.photos / f"report-{rid}.{photo[1]}"
                path.write_bytes(photo[0])
                self._db.execute("UPDATE reports SET photo = ? WHERE id = ?", (str(path), rid))
        return rid

    def reports(self, site: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        sql = "SELECT id, received, monitor, site, status, reason, body, photo FROM reports"
        args: tuple = ()
        if site:
            sql, args = sql + " WHERE site = ?", (site,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [{"id": i, "received": r, "monitor": m, "site": s, "status": st, "reason": why,
                 "report": json.loads(b), "photo": p} for i, r, m, s, st, why, b, p in rows]

    def last_accepted(self, site: str) -> float | None:
        """When the site's latest accepted report arrived (patrol reminders ask)."""
        with self._lock:
            row = self._db.execute("SELECT MAX(received) FROM reports WHERE site = ? AND status = 'accepted'",
                                   (site,)).fetchone()
        return row[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
