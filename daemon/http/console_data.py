"""What the operator console shows, read from the running service: the network overview and
one site's detail. Plain dicts, ready for JSON; every function runs off the event loop (they
touch SQLite and the core's arrays)."""
from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from geowarn.drivers.timestamps import format_ts

from ..alerts.reader import AlertReader
from ..alerts.store import Alert
from ..model.levels import LEVELS, Level

if TYPE_CHECKING:
    from ..service import Service

SITE_WINDOW_H = 72.0  # recent readings shown on a site page
MAX_POINTS = 2000  # per series: enough for a phone-sized plot, bounded for slow links
NOTIFICATION_ROWS = 200


def _ts(t: float | None) -> str | None:
    return format_ts(t) if t is not None and math.isfinite(t) and t > 0 else None


def alert_order(alerts: list[Alert]) -> list[Alert]:
    """Highest level first, then newest: hazards outrank device faults."""
    return sorted(alerts, key=lambda a: (-(Level.of(a.level) if a.kind == "hazard" and a.level else -1),
                                         -a.level_since, -a.id))


def _site_seen(core: Any) -> dict[str, float]:
    """Newest data per site from the core's per-device clocks: warmed from the journal, so it
    survives a restart (the intake's counters start empty)."""
    out: dict[str, float] = {}
    for di, si in enumerate(core.series.device_site[:len(core.dev_seen)]):
        ts = float(core.dev_seen[di])
        site = core.series.sites[si]
        if math.isfinite(ts) and ts > out.get(site, 0.0):
            out[site] = ts
    return out


def network(service: "Service", reader: AlertReader) -> dict[str, Any]:
    """Sites with their level, open faults and last reading; counts per level; open alerts."""
    reg = service.config.registry
    with service.core_read() as core:
        levels = core.site_levels()
        seen = _site_seen(core)
    alerts = [a.to_json() for a in alert_order(reader.alerts(open_only=True))]
    faults: dict[str, list[dict[str, str]]] = defaultdict(list)
    for a in alerts:
        if a["kind"] == "fault":
            faults[a["site"]].append({"device": a["device"], "fault": a["fault"], "detail": a["detail"],
                                      "alert": a["id"], "silenced": a["silenced"]})
    sites = []
    for s in reg.sites:
        sites.append({"id": s.id, "name": s.name, "county": s.county, "township": s.township, "hazard": s.hazard,
                      "lon": s.lon, "lat": s.lat, "households": s.households, "people": s.people,
                      "level": levels.get(s.id, "normal"), "last_seen": _ts(seen.get(s.id)),
                      "faults": faults.get(s.id, []), "devices": len(s.devices)})
    counts = {lv: 0 for lv in LEVELS}
    for s in sites:
        counts[s["level"]] += 1
    return {"name": reg.name, "example": reg.example, "drill": service.drill, "generated": _ts(time.time()),
            "counts": counts, "sites": sites, "alerts": alerts}


def _levels_json(levels: Any) -> dict[str, float] | None:
    if levels is None:
        return None
    return {k: v for k, v in levels.model_dump().items() if v is not None}


def _thresholds(rule: Any) -> dict[str, Any]:
    """The rule's numbers a plot can draw (absolute, change from baseline) or state (rates, rain)."""
    out: dict[str, Any] = {}
    th = rule.threshold
    if th is not None and th.enabled:
        out["absolute"] = _levels_json(th.absolute)
        out["change"] = _levels_json(th.change)
        out["change_window_h"] = th.change_window_h
        out["rate_per_day"] = _levels_json(th.rate)
        out["rate_window_h"] = th.rate_window_h
    rf = rule.rainfall
    if rf is not None and rf.enabled:
        out["rain_totals_mm"] = {str(h): _levels_json(lv) for h, lv in rf.totals_mm.items() if lv is not None}
    return out


def _series(service: "Service", site_id: str, since: float) -> list[dict[str, Any]]:
    core = service.core
    points: dict[tuple[str, str], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    kinds: dict[tuple[str, str], str] = {}
    for ts, _site, device, kind, channel, value in service.journal.export_rows(since, site_id):
        t, v = points[(device, channel)]
        t.append(ts)
        v.append(value)
        kinds[(device, channel)] = kind
    out = []
    for (device, channel), (t, v) in sorted(points.items()):
        step = max(1, math.ceil(len(t) / MAX_POINTS))  # thin evenly, keep the newest point
        t, v = t[::-1][::step][::-1], v[::-1][::step][::-1]
        kind = kinds[(device, channel)]
        sid = core.series.get(site_id, device, channel)
        with service.core_read():
            fc = core.forecast(sid) if sid is not None and kind != "rain" else None
            level = core.series_level(sid) if sid is not None else "normal"
            rain = core.rain_totals(sid) if sid is not None and kind == "rain" and channel == "mm" else None
        rule = core.rules.for_device(kind, site_id, device)
        out.append({
            "device": device, "kind": kind, "channel": channel, "level": level,
            "judged": channel in rule.channels, "t": t, "v": v,
            "thresholds": _thresholds(rule) if channel in rule.channels else {},
            "forecast": None if fc is None else {**fc, "failure_at": _ts(fc["failure_time"])},
            "rain_totals_mm": None if rain is None else {str(h): round(x, 2) for h, x in rain.items()},
        })
    return out


def _devices(service: "Service", site: Any, series: list[dict], faults: list[dict]) -> list[dict[str, Any]]:
    statuses = service.journal.latest_statuses([d.id for d in site.devices])
    last_reading: dict[str, float] = {}
    for s in series:
        if s["t"]:
            last_reading[s["device"]] = max(last_reading.get(s["device"], 0.0), s["t"][-1])
    core = service.core
    out = []
    for d in site.devices:
        st_ts, fields = statuses.get(d.id, (None, {}))
        di = core.series.device_ix.get(d.id)
        with service.core_read():
            seen = float(core.dev_seen[di]) if di is not None and di < len(core.dev_seen) else 0.0
        signal = next((fields[k] for k in ("signal", "signal_4g", "signal_nb", "signal_bd") if k in fields), None)
        out.append({
            "id": d.id, "kind": d.kind, "protocol": d.protocol, "model": d.model, "interval_s": d.interval_s,
            "battery_pct": fields.get("battery_pct"), "signal": signal,
            "last_seen": _ts(max(seen, last_reading.get(d.id, 0.0), st_ts or 0.0)),
            "last_status": _ts(st_ts), "status": fields,
            "faults": [f for f in faults if f["device"] == d.id],
        })
    return out


def _notifications(reader: AlertReader, site_id: str) -> list[dict[str, Any]]:
    out = reader.notifications(site_id, NOTIFICATION_ROWS)
    for d in out:
        for k in ("created", "updated", "done_at"):
            d[k] = _ts(d[k])
        d["drill"] = bool(d["drill"])
    return out


def site_detail(service: "Service", reader: AlertReader, site_id: str,
                hours: float = SITE_WINDOW_H) -> dict[str, Any] | None:
    site = service.config.registry.site(site_id)
    if site is None:
        return None
    since = time.time() - hours * 3600
    alerts = [a.to_json() for a in alert_order(reader.site_alerts(site_id))]
    faults = [{"device": a["device"], "fault": a["fault"], "detail": a["detail"], "alert": a["id"],
               "silenced": a["silenced"]} for a in alerts if a["kind"] == "fault" and a["status"] == "open"]
    series = _series(service, site_id, since)
    with service.core_read() as core:
        level = core.site_levels().get(site_id, "normal")
    return {
        "id": site.id, "name": site.name, "county": site.county, "township": site.township, "hazard": site.hazard,
        "lon": site.lon, "lat": site.lat, "households": site.households, "people": site.people,
        "level": level, "window_h": hours,
        "since": _ts(since), "generated": _ts(time.time()),
        "series": series, "devices": _devices(service, site, series, faults),
        "alerts": alerts, "notifications": _notifications(reader, site_id),
    }
