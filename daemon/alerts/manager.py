"""The alert lifecycle: decides alerts from site level changes and device faults, and queues
what must be said and done. It never sends anything itself: routing picks recipients,
templates render, the outbox stores; the OutboxWorker delivers.

Hazard alert (one open per site, drills apart): opens on a rise from normal, escalates in place
on a further rise, closes on the all-clear (level back to normal) or an operator's stand-down.
Acknowledgement stops repeats and escalation, it does not close. Device faults are separate
alerts for technicians; silences mute them, never a hazard warning. All state is in the
journal, read afresh on every call: a restart neither forgets an alert nor notifies it again,
and an acknowledgement from another process (`geowarn ack`) is seen at the next tick.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from geowarn.drivers.base import CommandReply

from .. import limits
from ..model.levels import Level
from ..registry import Registry, Site
from . import outbox, store
from .db import Database
from .events import DeviceFault, SiteLevelChange
from .messages import Renderer
from .outbox import OutMessage
from .recipients import Recipient
from .routing import Route, Router
from .settings import NotifySettings, SamplingSettings, SirenSettings
from .setup import AlertSetup
from .store import Alert, AlertClosed
from .wakeup import nudge, socket_path

if TYPE_CHECKING:
    from ..cap.publisher import CapPublisher, CapSetup

log = logging.getLogger("geowarn.alerts")

class ExpressLane(Protocol):
    """An in-process worker's fast path for siren commands (OutboxWorker implements it)."""

    def hold(self, keys: list[str]) -> None:
        """Before commit: these rows are the express path's, the regular lane must not send them."""

    def express(self, commands: list[outbox.OutCommand]) -> None:
        """After commit: publish them now."""


PRIORITY_HAZARD = 10  # + RED - level: red messages leave before blue ones
PRIORITY_FAULT = 20


def parse_alert_id(text: str | int) -> int:
    """`12` or the `A12` printed in messages (at most SQLite's largest integer)."""
    s = str(text).strip().lstrip("Aa#")
    if not (s.isascii() and s.isdigit()) or len(s) > 19 or int(s) > limits.MAX_ROW_ID:
        raise ValueError(f"not an alert id: {str(text)[:40]!r} (expected e.g. A12 or 12)")
    return int(s)


def acknowledge(db: sqlite3.Connection, alert_id: int, who: str, via: str, now: float) -> Alert:
    """Record an acknowledgement (idempotent) and cancel repeats not yet sent."""
    who = limits.text(who, "who acknowledges (by)", limits.NAME_MAX_CHARS, required=True)
    alert = store.get(db, alert_id)
    if alert.status != "open":
        raise AlertClosed(f"alert A{alert_id} is already closed ({alert.close_reason})")
    if alert.acked_at is not None:
        return alert
    store.update(db, alert_id, acked_at=now, acked_by=who, acked_via=via, updated_at=now)
    store.audit(db, alert_id, now, "acked", who, via=via, level=alert.level)
    outbox.cancel_pending(db, alert_id, f"a{alert_id}:%:repeat:%", now)
    return store.get(db, alert_id)


class AlertManager:
    def __init__(self, registry: Registry, db_path: str | Path, *, notify: NotifySettings | None = None,
                 sirens: SirenSettings | None = None, sampling: SamplingSettings | None = None,
                 router: Router | None = None, renderer: Renderer | None = None,
                 wake: Callable[[], None] | None = None,
                 express: ExpressLane | None = None,
                 clock: Callable[[], float] = time.time,
                 synchronous: str = "full",
                 cap: "CapPublisher | None" = None,
                 keep_accelerated: Callable[[str], bool] | None = None,
                 setup: AlertSetup | None = None):
        # what the configuration says, in one piece: a reload swaps it whole (`reconfigure`)
        self.setup = setup or AlertSetup.build(registry, notify, sirens, sampling, router=router, renderer=renderer)
        # sites a reload removed while they had an open alert: kept for that alert only
        self.retired: dict[str, Site] = {}
        self.db = Database(db_path, synchronous, checkpoints=False)
        # tells the OutboxWorker there is work: in-process directly, else through the state dir
        self.wake = wake or partial(nudge, socket_path(Path(db_path).parent))
        # hands committed siren commands to an in-process worker's express path: they leave at
        # once instead of waiting for the journal's write lock (they are in the outbox already)
        self.express = express
        self._urgent: list[outbox.OutCommand] = []
        self._urgent_lock = threading.Lock()
        self.clock = clock
        self.cap = cap  # each site warning's public CAP message, written with the alert
        # whether something outside alerts (a weather warning) keeps a site's devices accelerated
        self.keep_accelerated: Callable[[str], bool] = keep_accelerated or (lambda site: False)

    def reconfigure(self, setup: AlertSetup, cap: "CapSetup | None" = None) -> None:
        """A reload: from the next event, tick or action on, everything follows `setup` (and CAP
        messages `cap`). Swapped while no transaction runs, so none sees half of each. A site the
        new registry lacks keeps its open alerts (repeats and escalation to its contacts as they
        were, acknowledgement, stand-down, all-clear) until they close; no new alert opens for it."""
        with self.db.read() as db:
            held = {a.site for a in store.open_alerts(db) if setup.registry.site(a.site) is None}
            retired = {sid: site for sid in held if (site := self._site_or_none(sid)) is not None}
            self.setup, self.retired = setup, retired
            if self.cap is not None and cap is not None:
                self.cap.reconfigure(cap)
        for sid in sorted(retired):
            log.warning("site %s is no longer in the registry but has an open alert: it stays open until "
                        "stood down or cleared; no new alert opens for %s", sid, sid)

    def close(self) -> None:
        self.db.close()

    # --- events in ----------------------------------------------------------------------------

    def handle(self, event: SiteLevelChange | DeviceFault) -> int | None:
        """Apply one event; returns the id of the alert it touched (None if it touched none).
        Raises ValueError for an event about a site the registry does not know."""
        if isinstance(event, SiteLevelChange):
            fn: Callable[[sqlite3.Connection, Any], int | None] = self._level_change
        elif isinstance(event, DeviceFault):
            fn = self._fault
        else:
            raise TypeError(f"AlertManager.handle takes SiteLevelChange or DeviceFault, not {type(event).__name__}")
        try:
            with self.db.tx() as db:
                alert_id = fn(db, event)
        except BaseException:
            with self._urgent_lock:
                self._urgent = []
            raise
        self._dispatch_urgent()
        self.wake()
        return alert_id

    def _dispatch_urgent(self) -> None:
        with self._urgent_lock:
            urgent, self._urgent = self._urgent, []
        if urgent and self.express is not None:
            self.express.express(urgent)

    def on_reply(self, reply: CommandReply, now: float | None = None) -> None:
        """A device's command reply (from the intake): confirms or fails the command it answers."""
        now = self.clock() if now is None else now
        with self.db.tx() as db:
            row = outbox.match_reply(db, reply.device, reply.command, reply.msgid)
            if row is None:
                log.debug("reply matches no command awaiting one: %s", reply.raw[:120])
                return
            was = row["status"]
            status = outbox.settle_command(db, row, reply.ok, f"device replied: {reply.raw[:200]}", now)
            self._command_settled(db, row, was, status, now, reply.raw[:200])
        self.wake()

    def tick(self, now: float | None = None) -> None:
        """Time-driven work; call about once a second: repeats until acknowledged, escalation to
        the next tier, command replies that did not come, contacts that keep failing."""
        now = self.clock() if now is None else now
        with self.db.tx() as db:
            for alert in store.open_alerts(db):
                if alert.kind == "hazard":
                    self._repeat_and_escalate(db, alert, now)
                    if self.cap is not None:
                        self.cap.renew_if_due(db, alert, self._site(alert.site), now)
            for row in outbox.unanswered(db):
                status = outbox.settle_command(db, row, False, f"no reply within {row['reply_timeout_s']:g} s", now)
                self._command_settled(db, row, "published", status, now, "no reply")
            for row in outbox.unpublishable(db):
                outbox.mark_reported(db, row["id"], 1)
                self._command_settled(db, row, "pending", "failed", now,
                                      f"not published: {row['last_error'] or '?'}")
            self._failing_contacts(db, now)
        self.wake()

    # --- operator actions ---------------------------------------------------------------------

    def ack(self, alert_id: int | str, who: str, via: str = "api", now: float | None = None) -> Alert:
        now = self.clock() if now is None else now
        with self.db.tx() as db:
            return acknowledge(db, parse_alert_id(alert_id), who, via, now)

    def stand_down(self, alert_id: int | str, who: str, reason: str, now: float | None = None) -> Alert:
        """An operator closes an alert, with a reason; audited and announced like an all-clear."""
        who = limits.text(who, "who stands down (by)", limits.NAME_MAX_CHARS, required=True)
        reason = limits.text(reason, "reason", limits.REASON_MAX_CHARS, required=True)
        now = self.clock() if now is None else now
        with self.db.tx() as db:
            alert = store.get(db, parse_alert_id(alert_id))
            if alert.status != "open":
                raise AlertClosed(f"alert A{alert.id} is already closed ({alert.close_reason})")
            self._close(db, alert, "stood_down", who, reason, now)
            result = store.get(db, alert.id)
        self.wake()
        return result

    def silence(self, *, site: str | None = None, device: str | None = None, fault: str | None = None,
                until: float, who: str, reason: str, starts: float | None = None) -> int:
        """A maintenance window: device-fault alerts matching it open silently. Hazard warnings
        are never silenced. At most MAX_SILENCE_S long, ending before 2100 (limits.py)."""
        now = self.clock()
        starts = now if starts is None else starts
        for ts, what in ((starts, "starts"), (until, "until")):
            if not limits.EARLIEST_TS <= ts < limits.LATEST_TS:
                raise ValueError(f"{what} must lie between 2000 and 2100")
        limits.check_span(starts, until, limits.MAX_SILENCE_S, "a silence")
        who = limits.text(who, "who silences (by)", limits.NAME_MAX_CHARS, required=True)
        reason = limits.text(reason, "reason", limits.REASON_MAX_CHARS, required=True)
        if site is not None and self.setup.registry.site(site) is None:
            raise ValueError(f"unknown site {site!r}")
        if device is not None and self.setup.registry.device(device) is None:
            raise ValueError(f"unknown device {device!r}")
        with self.db.tx() as db:
            sid = store.add_silence(db, site=site, device=device, fault=fault, starts=starts,
                                    ends=until, who=who, reason=reason, now=now)
        return sid

    def tell(self, site: Site, roles: tuple[str, ...], key: str, text: Callable[[str], tuple[str, str]], *,
             priority: int, alert_id: int | None = None, drill: bool = False, now: float | None = None,
             audit: tuple[str, dict[str, Any]] | None = None) -> int:
        """Messages beside an alert's own warnings (a patrol order, a camera's still): to the
        site's people in `roles`, each in their language (`text(lang)` gives title and body),
        through the outbox, keyed `key:<recipient>` so a second call queues nothing twice.
        `audit` (event, detail) joins the alert's trail in the same transaction. The number of
        messages queued."""
        now = self.clock() if now is None else now
        n = 0
        with self.db.tx() as db:
            if audit is not None and alert_id is not None:
                store.audit(db, alert_id, now, audit[0], None, **audit[1])
            for rec in self.setup.router.roles(site, roles).recipients:
                title, body = text(rec.lang)
                n += outbox.enqueue_message(db, OutMessage(
                    key=f"{key}:{rec.key}", alert_id=alert_id, site=site.id, role=rec.role, recipient=rec.name,
                    target=rec.target, title=title, body=body, drill=drill, priority=priority), now)
        self.wake()
        return n

    # --- reading ------------------------------------------------------------------------------

    def alerts(self, open_only: bool = True) -> list[Alert]:
        with self.db.read() as db:
            return store.listing(db, open_only)

    def get(self, alert_id: int | str) -> tuple[Alert, list[dict]]:
        with self.db.read() as db:
            aid = parse_alert_id(alert_id)
            return store.get(db, aid), store.history(db, aid)

    # --- hazard lifecycle ---------------------------------------------------------------------

    def _site_or_none(self, site_id: str) -> Site | None:
        return self.setup.registry.site(site_id) or self.retired.get(site_id)

    def _site(self, site_id: str) -> Site:
        site = self._site_or_none(site_id)
        if site is None:
            raise ValueError(f"unknown site {site_id!r}")
        return site

    def _may_open(self, site: Site, what: str) -> bool:
        """New alerts open only for sites of the registry (a retired one finishes what it has)."""
        if self.setup.registry.site(site.id) is not None:
            return True
        log.warning("no new %s alert for %s: the site is no longer in the registry", what, site.id)
        return False

    def _level_change(self, db: sqlite3.Connection, ev: SiteLevelChange) -> int | None:
        site = self._site(ev.site)
        alert = store.open_hazard(db, site.id, ev.drill)
        new, prev = Level.of(ev.level), Level.of(ev.previous)
        if alert is None:
            if new == 0 or new <= prev:
                return None  # a fall (or all-clear) with no open alert: e.g. after a stand-down
            if not self._may_open(site, "hazard"):
                return None
            aid = store.insert(db, kind="hazard", site=site.id, drill=int(ev.drill), status="open", level=ev.level,
                               max_level=ev.level, reasons=ev.reasons, forecast_failure_ts=ev.forecast_failure_ts,
                               opened_at=ev.ts, level_since=ev.ts, updated_at=ev.ts)
            store.audit(db, aid, ev.ts, "opened", None, level=ev.level, reasons=ev.reasons, drill=ev.drill)
            alert = store.get(db, aid)
            self._announce(db, alert, "opened", self.setup.router.level(site, ev.level), ev.ts)
            self._publish(db, alert, site, "opened")
        elif new == 0:
            self._close(db, alert, "closed", None, "", ev.ts)
            return alert.id
        elif new != Level.of(alert.level):
            raised = new > Level.of(alert.level)
            changes: dict[str, Any] = dict(level=ev.level, level_since=ev.ts, updated_at=ev.ts, reasons=ev.reasons,
                                           forecast_failure_ts=ev.forecast_failure_ts)
            # repeats of the old level still waiting would now say the wrong thing
            outbox.cancel_pending(db, alert.id, f"a{alert.id}:%:repeat:%", self.clock())
            if raised:  # a higher level needs a fresh acknowledgement and restarts escalation
                changes.update(acked_at=None, acked_by=None, acked_via=None, tier=0,
                               max_level=ev.level if new > Level.of(alert.max_level) else alert.max_level)
            store.update(db, alert.id, **changes)
            store.audit(db, alert.id, ev.ts, "raised" if raised else "lowered", None, level=ev.level,
                        previous=alert.level, reasons=ev.reasons)
            # everyone warned so far hears of the change, plus the new level's roles
            route = self._merge(self.setup.router.level(site, ev.level), self.setup.router.level(site, alert.level),
                                *[self.setup.router.tier(site, i) for i in range(alert.tier)])
            alert = store.get(db, alert.id)
            self._announce(db, alert, "raised" if raised else "lowered", route, ev.ts)
            self._publish(db, alert, site, "raised" if raised else "lowered")
        else:
            store.update(db, alert.id, reasons=ev.reasons, forecast_failure_ts=ev.forecast_failure_ts,
                         updated_at=ev.ts)
            store.audit(db, alert.id, ev.ts, "updated", None, reasons=ev.reasons)
            return alert.id
        self._devices_for_level(db, alert, site, ev.level, ev.ts)
        return alert.id

    def _devices_for_level(self, db: sqlite3.Connection, alert: Alert, site: Site, level: str, ts: float) -> None:
        now = self.clock()
        if level in self.setup.planner.siren_levels(site, alert.drill) and (
                alert.siren_level is None or Level.of(level) > Level.of(alert.siren_level)):
            commands = self.setup.planner.siren(alert.id, alert.round, site, level, alert.drill)
            fresh = [c for c in commands if outbox.enqueue_command(db, c, now)]
            if fresh and self.express is not None:
                # held before the commit makes them visible, so the regular lane never sends them too
                self.express.hold([c.key for c in fresh])
                with self._urgent_lock:
                    self._urgent.extend(fresh)
            store.update(db, alert.id, siren_level=level)
            store.audit(db, alert.id, ts, "sirens", None, level=level, devices=sorted({c.device for c in commands}))
        at = self.setup.sampling.accelerate_at
        if at is not None and Level.of(level) >= Level.of(at) and not alert.accelerated:
            for c in self.setup.planner.reporting(alert.id, site, True, alert.drill):
                outbox.enqueue_command(db, c, now)
            store.update(db, alert.id, accelerated=1)
            store.audit(db, alert.id, ts, "sampling_accelerated", None)

    def _close(self, db: sqlite3.Connection, alert: Alert, event: str, who: str | None, note: str, ts: float) -> None:
        store.update(db, alert.id, status="closed", closed_at=ts, close_reason=event, closed_by=who, updated_at=ts)
        store.audit(db, alert.id, ts, event, who, reason=note, level=alert.level)
        outbox.cancel_pending(db, alert.id, f"a{alert.id}:%:repeat:%", self.clock())
        site = self._site(alert.site)
        if alert.kind == "fault":
            if not alert.silenced:
                self._announce_fault(db, alert, site, active=False, ts=ts)
            return
        route = self._merge(self.setup.router.level(site, alert.max_level or alert.level),
                            *[self.setup.router.tier(site, i) for i in range(alert.tier)])
        self._announce(db, alert, event, route, ts, note=note)
        self._publish(db, store.get(db, alert.id), site, event, note)
        others = store.open_hazard(db, site.id, not alert.drill)
        if alert.accelerated and self.keep_accelerated(site.id):  # a weather warning still holds them
            store.audit(db, alert.id, ts, "sampling_kept", None, reason="weather warning in force")
        elif alert.accelerated and not (others and others.accelerated):
            for c in self.setup.planner.reporting(alert.id, site, False, alert.drill):
                outbox.enqueue_command(db, c, self.clock())
            store.audit(db, alert.id, ts, "sampling_restored", None)

    def _repeat_and_escalate(self, db: sqlite3.Connection, alert: Alert, now: float) -> None:
        if alert.acked_at is not None:
            return
        policy = self.setup.notify.levels[alert.level]
        site = self._site(alert.site)
        if policy.repeat_s and now >= (alert.last_notified_at or alert.level_since) + policy.repeat_s:
            route = self._merge(self.setup.router.level(site, alert.level),
                                *[self.setup.router.tier(site, i) for i in range(alert.tier)])
            self._announce(db, alert, "repeat", route, now)
            alert = store.get(db, alert.id)
        tiers = self.setup.notify.escalation
        while policy.escalate and alert.tier < len(tiers) and now >= alert.level_since + tiers[alert.tier].after_s:
            store.audit(db, alert.id, now, "escalated", None, tier=tiers[alert.tier].name)
            self._announce(db, alert, "escalated", self.setup.router.tier(site, alert.tier), now, touch_repeat=False)
            store.update(db, alert.id, tier=alert.tier + 1)
            alert = store.get(db, alert.id)

    # --- device faults ------------------------------------------------------------------------

    def _fault(self, db: sqlite3.Connection, ev: DeviceFault) -> int | None:
        site = self._site(ev.site)
        alert = store.open_fault(db, site.id, ev.device, ev.fault, ev.drill)
        if not ev.active:
            if alert is None:
                return None
            store.update(db, alert.id, detail=ev.detail or alert.detail)
            self._close(db, store.get(db, alert.id), "cleared", None, ev.detail, ev.ts)
            return alert.id
        if alert is not None:  # still active: note it, say nothing new
            store.update(db, alert.id, detail=ev.detail, updated_at=ev.ts)
            return alert.id
        if not self._may_open(site, "fault"):
            return None
        silenced = store.silenced(db, site.id, ev.device, ev.fault, ev.ts)
        aid = store.insert(db, kind="fault", site=site.id, device=ev.device, fault=ev.fault, drill=int(ev.drill),
                           status="open", detail=ev.detail, opened_at=ev.ts, level_since=ev.ts, updated_at=ev.ts,
                           silenced=int(silenced))
        store.audit(db, aid, ev.ts, "opened", None, fault=ev.fault, device=ev.device, detail=ev.detail,
                    silenced=silenced)
        if not silenced:
            self._announce_fault(db, store.get(db, aid), site, active=True, ts=ev.ts)
        return aid

    def _command_settled(self, db: sqlite3.Connection, row: sqlite3.Row, was: str, status: str, now: float,
                         detail: str) -> None:
        aid = row["alert_id"]
        if aid is not None:  # commands of a weather warning belong to no alert
            store.audit(db, aid, now, f"command_{status}", None, device=row["device"], command=row["command"],
                        attempt=row["attempts"], detail=detail)
        fault = "siren_failed" if row["purpose"] == "siren" else "command_failed"
        if status == "failed":
            self._own_fault(db, DeviceFault(row["site"], row["device"], fault, now,
                                        f"{row['command']}: {detail} after {row['attempts']} attempts",
                                        True, bool(row["drill"])))
        elif status == "confirmed" and (was == "failed" or row["failing_reported"]):  # it answered after all
            self._own_fault(db, DeviceFault(row["site"], row["device"], fault, now, f"{row['command']} answered",
                                        False, bool(row["drill"])))

    def _own_fault(self, db: sqlite3.Connection, ev: DeviceFault) -> None:
        """A fault the lifecycle finds itself (a command unanswered, a contact failing). About a
        site no configuration knows any more it is logged, not raised: the tick must go on."""
        if self._site_or_none(ev.site) is None:
            log.warning("%s of %s at %s not raised: the site is no longer in the registry", ev.fault, ev.device,
                        ev.site)
            return
        self._fault(db, ev)

    def _failing_contacts(self, db: sqlite3.Connection, now: float) -> None:
        for row in outbox.failing_unreported(db, self.setup.notify.retry.report_failing_after):
            outbox.mark_reported(db, row["id"], 1)
            source = store.get(db, row["alert_id"]) if row["alert_id"] else None
            if source is not None and source.fault == "contact_failing":
                continue  # a technician's own channel failing cannot be reported over itself
            self._own_fault(db, DeviceFault(row["site"], f"contact:{row['recipient']}", "contact_failing", now,
                                        f"{row['role']} {row['recipient']}: {row['attempts']} attempts failed, "
                                        f"last: {row['last_error'] or '?'}"))
        for row in outbox.recovered_reported(db):
            outbox.mark_reported(db, row["id"], 2)
            self._own_fault(db, DeviceFault(row["site"], f"contact:{row['recipient']}", "contact_failing", now,
                                        f"{row['role']} {row['recipient']}: delivered again", False))

    # --- composing messages -------------------------------------------------------------------

    def _publish(self, db: sqlite3.Connection, alert: Alert, site: Site, event: str, note: str = "") -> None:
        if self.cap is not None:
            self.cap.record(db, alert, site, event, self.clock(), note)

    @staticmethod
    def _merge(*routes: Route) -> Route:
        out = Route()
        seen: set[str] = set()
        for r in routes:
            for rec in r.recipients:
                if rec.target not in seen:
                    seen.add(rec.target)
                    out.recipients.append(rec)
            out.unreachable.extend(u for u in r.unreachable if u not in out.unreachable)
        return out

    def _announce(self, db: sqlite3.Connection, alert: Alert, event: str, route: Route, ts: float, *,
                  note: str = "", touch_repeat: bool = True) -> None:
        site = self._site(alert.site)
        round_ = alert.round + 1
        now = self.clock()
        level = alert.level if event not in ("closed", "stood_down") else (alert.max_level or alert.level)
        renderer = self.setup.renderer
        for rec in route.recipients:
            if event in ("closed", "stood_down"):
                msg = renderer.closed(lang=rec.lang, event=event, site=site, level=level, role=rec.role,
                                      note=note, alert_id=alert.id, drill=alert.drill, ts=ts)
            else:
                msg = renderer.hazard(lang=rec.lang, event=event, site=site, level=level, role=rec.role,
                                      reasons=alert.reasons, forecast_ts=alert.forecast_failure_ts,
                                      alert_id=alert.id, drill=alert.drill, ts=ts, ack_url=self.setup.notify.ack_url)
            self._enqueue(db, alert, round_, event, rec, msg.title, msg.body, PRIORITY_HAZARD + Level.RED - Level.of(level), now)
        if route.unreachable:
            store.audit(db, alert.id, ts, "unreachable", None, contacts=route.unreachable)
        changes: dict[str, Any] = {"round": round_}
        if touch_repeat:
            changes["last_notified_at"] = ts
        store.update(db, alert.id, **changes)
        store.audit(db, alert.id, ts, f"notified_{event}", None, round=round_, recipients=len(route.recipients))

    def _announce_fault(self, db: sqlite3.Connection, alert: Alert, site: Site, *, active: bool, ts: float) -> None:
        route = self.setup.router.fault(site, alert.fault)
        round_ = alert.round + 1
        now = self.clock()
        for rec in route.recipients:
            msg = self.setup.renderer.fault(lang=rec.lang, site=site, device=alert.device, fault=alert.fault,
                                            detail=alert.detail, active=active, alert_id=alert.id,
                                            drill=alert.drill, ts=ts)
            self._enqueue(db, alert, round_, "fault" if active else "fault_cleared", rec, msg.title, msg.body,
                          PRIORITY_FAULT, now)
        store.update(db, alert.id, round=round_, last_notified_at=ts)
        store.audit(db, alert.id, ts, "notified_fault" if active else "notified_fault_cleared", None,
                    round=round_, recipients=len(route.recipients), unreachable=route.unreachable)

    def _enqueue(self, db: sqlite3.Connection, alert: Alert, round_: int, event: str, rec: Recipient, title: str,
                 body: str, priority: int, now: float) -> None:
        outbox.enqueue_message(db, OutMessage(
            key=f"a{alert.id}:{round_}:{event}:{rec.key}", alert_id=alert.id, site=alert.site, role=rec.role,
            recipient=rec.name, target=rec.target, title=title, body=body, drill=alert.drill, priority=priority), now)
