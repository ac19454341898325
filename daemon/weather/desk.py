"""Weather warnings in the running service. While a warning is valid, each site in its area:
carries a weather-risk signal that corroborates but never raises (model/external.py); has its
devices on accelerated reporting; has its monitors told to patrol, and reminded when no field
report arrives within `weather.reminder_h`. At expiry the signal lapses and reporting is
restored (unless the site's own level keeps it accelerated). Warnings are kept in
`weather.sqlite` in the state directory and resume after a restart. A stored warning that
fails to be acted on MAX_FAILURES times in a row is set aside with the reason (listed, and
named by /healthz for a day) instead of being retried on every tick: one bad warning never
holds up the others."""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..alerts import advisories
from ..alerts.manager import AlertManager
from ..model.external import External
from ..model.levels import Level
from ..registry import Registry
from ..rules import WeatherRule
from .warning import Warning, parse_warning

if TYPE_CHECKING:
    from ..signals import Signals

log = logging.getLogger("geowarn.weather")
BOX_MARGIN_DEG = 0.05  # around the sites of a county warning, for the devices' lon/lat range
MAX_FAILURES = 3  # ticks in a row a stored warning may fail before it is set aside
SET_ASIDE_SHOWN_S = 86400.0  # how long /healthz names a warning that was set aside


@dataclass(frozen=True)
class WeatherSetup:
    """What warnings are acted on with: the sites (a warning's area), the alert rules' `weather:`
    part, and the level at which the sites' own alerts accelerate reporting (`sampling:`)."""

    registry: Registry
    rule: WeatherRule
    accelerate_at: str | None


class WeatherDesk:
    def __init__(self, state_dir: str | Path, setup: WeatherSetup, signals: "Signals", alerts: AlertManager,
                 last_report: Callable[[str], float | None], accelerated: set[str]):
        """`signals` takes each warning's signal to the core; `alerts` queues patrol orders and
        reporting commands (alerts/advisories.py); `last_report` is a site's newest accepted field
        report (FieldStore.last_accepted); `accelerated` is kept here and read by the lifecycle
        (AlertManager's keep_accelerated): the sites whose devices an active warning accelerated."""
        self.setup = setup
        self.signals = signals
        self.alerts = alerts
        self.last_report = last_report
        self._db = sqlite3.connect(Path(state_dir) / "weather.sqlite", check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS warnings (id TEXT PRIMARY KEY, received REAL NOT NULL, "
                         "source TEXT NOT NULL, doc TEXT NOT NULL, state TEXT NOT NULL, "
                         "activated REAL, reminded TEXT NOT NULL DEFAULT '[]')")
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(warnings)")}
        for name, decl in (("failures", "INTEGER NOT NULL DEFAULT 0"), ("error", "TEXT"), ("set_aside", "REAL")):
            if name not in columns:  # a state directory from before set-aside warnings
                self._db.execute(f"ALTER TABLE warnings ADD COLUMN {name} {decl}")
        self._lock = threading.RLock()
        self._accelerated = accelerated

    def reconfigure(self, setup: WeatherSetup) -> None:
        """A reload (with the service lock held: no tick runs meanwhile)."""
        self.setup = setup

    @property
    def rule(self):
        return self.setup.rule

    # --- intake ------------------------------------------------------------------------------

    def ingest(self, doc: Any, source: str, now: float) -> Warning:
        """Validate and keep a warning, then act on it at once; raises ValueError."""
        w = parse_warning(doc)
        if not w.sites(self.setup.registry):
            raise ValueError("the warning covers no site of this network")
        with self._lock:
            # a warning sent again (corrected) is acted on afresh, also after it was set aside
            self._db.execute("INSERT INTO warnings (id, received, source, doc, state) VALUES (?,?,?,?, 'pending') "
                             "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, failures = 0, error = NULL, "
                             "set_aside = NULL, state = CASE state WHEN 'set_aside' THEN 'pending' ELSE state END",
                             (w.id, now, source, json.dumps(w.to_json(), ensure_ascii=False)))
        with self.signals.together():
            self.tick(now)
        return w

    def warnings(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT id, received, source, doc, state, activated, error FROM warnings "
                                    "ORDER BY received DESC").fetchall()
        return [{**_doc(i, d), "received": r, "source": s, "state": st, "activated": a, "error": e}
                for i, r, s, d, st, a, e in rows]

    def set_aside(self, now: float | None = None) -> list[tuple[str, str]]:
        """(id, reason) of the warnings set aside within the last day (/healthz names them)."""
        since = (time.time() if now is None else now) - SET_ASIDE_SHOWN_S
        with self._lock:
            return self._db.execute("SELECT id, error FROM warnings WHERE state = 'set_aside' AND set_aside > ? "
                                    "ORDER BY set_aside", (since,)).fetchall()

    # --- time ------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Called with the service lock held (the service's ticker, or ingest). Each warning on
        its own: one that fails is counted, and set aside after MAX_FAILURES."""
        with self._lock:
            rows = self._db.execute("SELECT id, doc, state, activated, reminded, failures FROM warnings "
                                    "WHERE state IN ('pending', 'active')").fetchall()
        for wid, doc, state, activated, reminded, failures in rows:
            try:
                w = parse_warning(json.loads(doc))
            except ValueError as e:  # stored before today's bounds: it can never be acted on
                self._set_aside(wid, f"ValueError: {e}", now)
                continue
            try:
                if now >= w.valid_to:
                    self._expire(w, now)
                elif now >= w.valid_from and state == "pending":
                    self._activate(w, now)
                elif state == "active":
                    self._remind(w, float(activated), set(json.loads(reminded)), now)
            except Exception as e:  # noqa: BLE001 -- any fault of ours: counted, logged, set aside after 3
                self._failed(wid, e, now)
            else:
                if failures:
                    with self._lock:
                        self._db.execute("UPDATE warnings SET failures = 0, error = NULL WHERE id = ?", (wid,))

    def _failed(self, wid: str, error: Exception, now: float) -> None:
        reason = f"{type(error).__name__}: {error}"[:500]
        log.error("weather warning %s failed: %s", wid, reason, exc_info=error)
        with self._lock:
            self._db.execute("UPDATE warnings SET failures = failures + 1, error = ? WHERE id = ?", (reason, wid))
            n = self._db.execute("SELECT failures FROM warnings WHERE id = ?", (wid,)).fetchone()[0]
        if n >= MAX_FAILURES:
            self._set_aside(wid, reason, now)

    def _set_aside(self, wid: str, reason: str, now: float) -> None:
        with self._lock:
            self._db.execute("UPDATE warnings SET state = 'set_aside', set_aside = ?, error = ? WHERE id = ?",
                             (now, reason, wid))
        log.error("weather warning %s set aside, no longer acted on: %s", wid, reason)

    def restore(self, now: float) -> None:
        """Before the core warms: active warnings hold their signals again (their commands and
        messages were sent before the restart; expiry restores reporting as usual). One that
        can no longer be read is set aside at once."""
        with self._lock:
            rows = self._db.execute("SELECT id, doc FROM warnings WHERE state = 'active'").fetchall()
        for wid, doc in rows:
            try:
                w = parse_warning(json.loads(doc))
            except ValueError as e:  # stored before today's bounds: it cannot be acted on
                self._set_aside(wid, f"ValueError: {e}", now)
                continue
            if now < w.valid_to:
                for site in w.sites(self.setup.registry):
                    self.signals.hold(site.id, f"weather:{w.id}", self._signal(w, now))
                    if Level.of(w.level) >= Level.of(self.rule.accelerate_from):
                        self._accelerated.add(site.id)

    def _held_by_others(self, wid: str, now: float) -> set[str]:
        with self._lock:
            docs = self._db.execute("SELECT doc FROM warnings WHERE state = 'active' AND id != ?", (wid,)).fetchall()
        held: set[str] = set()
        for (doc,) in docs:
            try:
                o = parse_warning(json.loads(doc))
            except ValueError:  # set aside by its own tick
                continue
            if o.valid_to > now and Level.of(o.level) >= Level.of(self.rule.accelerate_from):
                held |= {s.id for s in o.sites(self.setup.registry)}
        return held

    def _signal(self, w: Warning, now: float) -> External:
        zh = f"地质灾害气象风险{Level.of(w.level).colour_zh}预警（{w.id}）有效"
        en = f"meteorological geohazard risk warning {w.level} ({w.id}) in force"
        level = Level.of(self.rule.levels.get(w.level, w.level))
        return External("weather", level, False, now, w.valid_to, zh, en)  # corroborates, never raises

    def _box(self, w: Warning) -> tuple[float, float, float, float]:
        if w.box is not None:
            return w.box
        sites = w.sites(self.setup.registry)
        return (min(s.lon for s in sites) - BOX_MARGIN_DEG, min(s.lat for s in sites) - BOX_MARGIN_DEG,
                max(s.lon for s in sites) + BOX_MARGIN_DEG, max(s.lat for s in sites) + BOX_MARGIN_DEG)

    def _activate(self, w: Warning, now: float) -> None:
        mgr, rule, sites = self.alerts, self.rule, w.sites(self.setup.registry)
        for site in sites:
            self.signals.external(site.id, f"weather:{w.id}", self._signal(w, now), now)
            if Level.of(w.level) >= Level.of(rule.accelerate_from):
                advisories.reporting(mgr, f"w{w.id}", site, w.level, w.valid_to, self._box(w), True, now)
                self._accelerated.add(site.id)
            if Level.of(w.level) >= Level.of(rule.patrol_from):
                advisories.patrol(mgr, f"w{w.id}", site, w.level, w.valid_from, w.valid_to, False, now)
        with self._lock:
            self._db.execute("UPDATE warnings SET state = 'active', activated = ? WHERE id = ?", (now, w.id))
        log.info("weather warning %s (%s) active for %d sites", w.id, w.level, len(sites))

    def _remind(self, w: Warning, activated: float, reminded: set[str], now: float) -> None:
        if Level.of(w.level) < Level.of(self.rule.patrol_from) or now - activated < self.rule.reminder_h * 3600:
            return
        for site in w.sites(self.setup.registry):
            if site.id in reminded:
                continue
            last = self.last_report(site.id)
            if last is None or last < activated:
                advisories.patrol(self.alerts, f"w{w.id}", site, w.level, w.valid_from, w.valid_to,
                                  True, now)
            reminded.add(site.id)  # once per warning: a report, or one reminder
        with self._lock:
            self._db.execute("UPDATE warnings SET reminded = ? WHERE id = ?", (json.dumps(sorted(reminded)), w.id))

    def _expire(self, w: Warning, now: float) -> None:
        mgr, accel_at = self.alerts, self.setup.accelerate_at
        levels = self.signals.site_levels()
        with self._lock:
            state = self._db.execute("SELECT state FROM warnings WHERE id = ?", (w.id,)).fetchone()[0]
        held = self._held_by_others(w.id, now)
        for site in w.sites(self.setup.registry):
            self.signals.external(site.id, f"weather:{w.id}", None, now)
            if site.id in held:  # an overlapping warning still in force keeps them accelerated
                continue
            self._accelerated.discard(site.id)
            own = Level.of(levels.get(site.id, "normal"))
            # the site's own level keeps its devices accelerated: the alert's all-clear restores them
            if state == "active" and Level.of(w.level) >= Level.of(self.rule.accelerate_from) and \
                    (accel_at is None or own < Level.of(accel_at)):
                advisories.reporting(mgr, f"w{w.id}", site, w.level, w.valid_to, self._box(w), False, now)
        with self._lock:
            self._db.execute("UPDATE warnings SET state = 'expired' WHERE id = ?", (w.id,))
        log.info("weather warning %s expired", w.id)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _doc(wid: str, doc: str) -> dict[str, Any]:
    """A stored warning as listed; one that no longer parses is listed by its id alone."""
    try:
        parsed = json.loads(doc)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"id": wid}
