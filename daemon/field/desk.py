"""The field desk: takes a monitor's report, checks it, keeps it (accepted or with the reason
it was refused), journals marker readings like any reading, and hands the core what the report
means: each marker's movement per hour (markers.py) and the observations, as external signals
of the site (model/external.py) that raise and corroborate like an instrument."""
from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geowarn.drivers.base import Invalid, Reading
from geowarn.drivers.kinds import KINDS
from geowarn.drivers.timestamps import parse_ts

from ..journal import Journal
from ..model.external import External
from ..model.levels import Level
from ..limits import NAME_MAX_CHARS
from ..registry import Registry
from ..rules import FieldRule
from ..secrets import secret
from . import markers, photos
from .settings import FieldSettings
from .store import FieldStore

if TYPE_CHECKING:
    from ..signals import Signals

UNITS_MM = {"mm": 1.0, "cm": 10.0}
MAX_ITEMS = 100  # markers or observations in one report
KEPT_MAX_CHARS = 16_384  # of a report's JSON (without the photo) in the store; a longer one is kept cut


def _bounded(doc: dict[str, Any]) -> dict[str, Any]:
    """What the store keeps of a report: the report, or its beginning if it is unreasonably long."""
    text = json.dumps(doc, ensure_ascii=False, allow_nan=False)
    return doc if len(text) <= KEPT_MAX_CHARS else {"cut": True, "chars": len(text), "preview": text[:256]}


class Refused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Checked:
    site: str
    ts: float
    readings: list[Reading] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    photo: tuple[bytes, str] | None = None  # re-encoded, and its file extension


@dataclass(frozen=True)
class FieldSetup:
    """What a report is checked and judged against: the sites and their declared markers, the
    `field:` section (monitors, limits), the alert rules' `field:` part. One report is handled
    with one of these from start to end; a reload hands the desk a new one."""

    registry: Registry
    settings: FieldSettings
    rule: FieldRule


class FieldDesk:
    def __init__(self, state_dir: str | Path, setup: FieldSetup, signals: "Signals", journal: Journal):
        """`signals` takes what a report means to the core and the lifecycle; `journal` answers
        what a marker read before."""
        self.setup = setup
        self.signals = signals
        self.journal = journal
        self.store = FieldStore(state_dir)

    def reconfigure(self, setup: FieldSetup) -> None:
        """A reload: reports from now on are checked against it (new monitors' tokens, sites)."""
        self.setup = setup

    @property
    def settings(self) -> FieldSettings:
        return self.setup.settings

    def monitor_for(self, token: bytes) -> str | None:
        """The monitor whose token this is (compared in constant time), or None."""
        for name, env in self.setup.settings.monitors.items():
            expected = secret(env, env)
            if expected and hmac.compare_digest(token, expected.encode()):
                return name
        return None

    # --- intake ------------------------------------------------------------------------------

    def submit(self, monitor: str, body: dict[str, Any], now: float | None = None) -> tuple[int, dict]:
        """(HTTP status, answer) for a report of an authenticated monitor. Every report is
        stored, refused ones with their reason."""
        now = time.time() if now is None else now
        setup = self.setup
        photo_b64 = body.get("photo")
        kept = _bounded({k: v for k, v in body.items() if k != "photo"})  # the photo goes to a file
        site = body.get("site") if isinstance(body.get("site"), str) and body["site"] else None
        try:
            checked = self._check(setup, body, photo_b64, now)
        except Refused as e:
            rid = self.store.add(monitor, (site or "")[:NAME_MAX_CHARS] or None, "rejected", e.reason, kept, now=now)
            return e.status, {"id": rid, "status": "rejected", "error": e.reason}
        rid = self.store.add(monitor, checked.site, "accepted", None, kept, checked.photo, now=now)
        levels = self._apply(setup.rule, checked, monitor, now)
        return 201, {"id": rid, "status": "accepted", "readings": len(checked.readings),
                     "observations": checked.observations, "site_level": levels}

    def refuse(self, monitor: str | None, reason: str, record: dict[str, Any], now: float | None = None) -> int:
        """A request that is no report (no valid token, not JSON, too large): kept with its reason
        as a bounded record (who, size, the first bytes), never the whole body."""
        return self.store.add(monitor, None, "rejected", reason, _bounded(record), now=now)

    def _check(self, setup: FieldSetup, body: dict[str, Any], photo_b64: Any, now: float) -> Checked:
        settings, rule = setup.settings, setup.rule
        site = setup.registry.site(body["site"]) if isinstance(body.get("site"), str) else None
        if site is None:
            raise Refused(422, f"未知监测点 unknown site {str(body.get('site'))[:NAME_MAX_CHARS]!r}")
        ts = _ts(settings, body.get("ts"), now, "ts") if body.get("ts") is not None else now
        out = Checked(site.id, ts)
        items = body.get("markers") or []
        obs = body.get("observations") or []
        if not isinstance(items, list) or not isinstance(obs, list):
            raise Refused(422, "markers and observations must be lists")
        if not isinstance(body.get("text") or "", str):
            raise Refused(422, "text must be a string")
        if not items and not obs and not body.get("text"):
            raise Refused(422, "空报告 empty report: no marker reading, observation or text")
        if len(items) > MAX_ITEMS or len(obs) > MAX_ITEMS:
            raise Refused(422, f"at most {MAX_ITEMS} markers and {MAX_ITEMS} observations per report")
        declared = {d.id: d for d in site.devices if d.kind == "marker"}
        known = {k.device for k in self.journal.series().values() if k.device.startswith(f"{site.id}-M-")}
        lo, hi = KINDS["marker"].limits["distance"]
        for i, m in enumerate(items):
            if not isinstance(m, dict):
                raise Refused(422, f"markers[{i}] must be an object")
            name = m.get("marker")
            if not isinstance(name, str) or not name or len(name) > NAME_MAX_CHARS:
                raise Refused(422, f"markers[{i}]: marker must be a name of at most {NAME_MAX_CHARS} characters")
            dev = _marker_device(rule, site.id, name, declared, known)
            known.add(dev)
            unit = m.get("unit") or "cm"
            if unit not in UNITS_MM:
                raise Refused(422, f"markers[{i}]: unit must be cm or mm, not {str(unit)[:20]!r}")
            distance = m.get("distance")
            if isinstance(distance, bool) or not isinstance(distance, (int, float)):
                raise Refused(422, f"markers[{i}]: distance must be a number")
            try:
                mm = float(distance) * UNITS_MM[unit]
            except OverflowError:  # an integer of 400 digits
                raise Refused(422, f"markers[{i}]: distance must be a number") from None
            if not lo <= mm <= hi:
                raise Refused(422, f"不可能的距离 impossible distance {m.get('distance')} {unit} for marker {name}: "
                                   f"a tape reads {lo:g}–{hi / 10:g} cm")
            t = _ts(settings, m["ts"], now, f"markers[{i}].ts") if m.get("ts") is not None else ts
            last = self.journal.history(dev, "distance", 1)
            if last and abs(mm - last[-1][1]) > rule.markers.max_step_mm:
                raise Refused(422, f"不可能的变化 impossible change for marker {name}: {last[-1][1]:g} → {mm:g} mm "
                                   f"(more than {rule.markers.max_step_mm:g} mm); re-set pegs are a new marker")
            out.readings.append(Reading(dev, "marker", "distance", t, mm, site=site.id))
        for o in obs:
            if not isinstance(o, str) or o not in rule.observations:
                raise Refused(422, f"未知观察项 unknown observation {str(o)[:NAME_MAX_CHARS]!r}; expected one of "
                                   f"{', '.join(rule.observations)}")
            out.observations.append(o)
        if len(str(body.get("text") or "")) > settings.text_max_chars:
            raise Refused(413, f"text longer than {settings.text_max_chars} characters")
        if photo_b64:
            if not isinstance(photo_b64, str):
                raise Refused(422, "photo must be base64")
            try:
                raw = base64.b64decode(photo_b64, validate=True)
            except (binascii.Error, ValueError):
                raise Refused(422, "photo must be base64") from None
            if len(raw) > settings.photo_max_bytes:
                raise Refused(413, f"照片过大 photo of {len(raw)} bytes; at most {settings.photo_max_bytes}")
            try:
                out.photo = photos.clean(raw)
            except ValueError as e:
                raise Refused(422, f"照片无法识别 photo: {e}") from None
        return out

    # --- effect --------------------------------------------------------------------------------

    def _apply(self, rule: FieldRule, c: Checked, monitor: str, now: float) -> str:
        # journaled like any reading (the core warms from them after a restart), then judged
        self.signals.readings([(r, c.site) for r in c.readings], now)
        with self.signals.together():
            for dev in dict.fromkeys(r.device for r in c.readings):
                sig = _marker_signal(rule, dev, self.journal.history(dev, "distance", 10), c.ts)
                if sig is not None:
                    self.signals.external(c.site, f"marker:{dev}", sig, c.ts)
            for o in c.observations:
                self.signals.external(c.site, f"observation:{o}", _observation(rule, o, monitor, c.ts), c.ts)
            return self.signals.site_levels().get(c.site, "normal")

    def restore(self, now: float) -> None:
        """Before the core warms from the journal: hold the markers' and still-valid observations'
        signals again, so warming ends at the levels they had helped set (nothing is re-sent)."""
        rule = self.setup.rule
        for key in self.journal.series().values():
            if key.kind == "marker":
                sig = _marker_signal(rule, key.device, self.journal.history(key.device, "distance", 10), now)
                if sig is not None:
                    self.signals.hold(key.site, f"marker:{key.device}", sig)
        for r in reversed(self.store.reports(limit=10_000)):
            ts = r["received"]
            if r["status"] != "accepted" or now - ts >= rule.observation_valid_h * 3600.0:
                continue
            for o in r["report"].get("observations") or []:
                if o in rule.observations:
                    self.signals.hold(r["site"], f"observation:{o}", _observation(rule, o, r["monitor"], ts))

    def close(self) -> None:
        self.store.close()


def _marker_signal(rule: FieldRule, dev: str, history: list[tuple[float, float]], ts: float) -> External | None:
    """What a marker's readings say (markers.py), as the site's signal; None when too few."""
    j = markers.judge(history, rule.markers)
    if j is None:
        return None
    zh, en = markers.reason(dev, j)
    return External(f"marker:{dev}", j.level, True, ts, None, zh, en)


def _observation(rule: FieldRule, name: str, monitor: str, ts: float) -> External:
    """A monitor's observation as the site's signal, valid `observation_valid_h` from `ts`."""
    ob = rule.observations[name]
    return External("observation", Level.of(ob.level), True, ts, ts + rule.observation_valid_h * 3600.0,
                    f"群测群防员 {monitor} 报告：{ob.zh}", f"monitor {monitor} reports: {ob.en}")


def _ts(settings: FieldSettings, raw: Any, now: float, what: str) -> float:
    try:
        t = parse_ts(raw)
    except Invalid as e:
        raise Refused(422, f"{what}: {e.detail}") from None
    if t > now + settings.future_s:
        raise Refused(422, f"{what} is in the future: check the phone's clock")
    if t < now - settings.max_age_days * 86400:
        raise Refused(422, f"{what} is older than {settings.max_age_days:g} days")
    return t


def _marker_device(rule: FieldRule, site: str, name: str, declared: dict, known: set[str]) -> str:
    dev = name if name.startswith(f"{site}-M-") else f"{site}-M-{name}"
    if declared:
        if dev not in declared:
            raise Refused(422, f"未知裂缝标记 unknown marker {name!r} at {site}; declared: "
                               f"{', '.join(sorted(d.removeprefix(site + '-M-') for d in declared))}")
        return dev
    if not re.fullmatch(rule.marker_pattern, dev.removeprefix(f"{site}-M-")):
        raise Refused(422, f"未知裂缝标记 unknown marker {name!r}: names are {rule.marker_pattern}")
    if dev not in known and not rule.auto_register_markers:
        raise Refused(422, f"未知裂缝标记 unknown marker {name!r} at {site}: markers must be declared")
    if dev not in known and len(known) >= rule.max_markers_per_site:
        raise Refused(422, f"未知裂缝标记 unknown marker {name!r}: {site} already has "
                           f"{rule.max_markers_per_site} markers")
    return dev
