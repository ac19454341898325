"""`geowarn replay FILE.csv`: recorded readings through the same core, offline, as fast as it
can and deterministically (rows in time order, ties in file order; batches of one UTC day of data).

CSV columns `ts,site,device,kind,channel,value`; ts RFC 3339 or epoch seconds. A bad row is
quarantined with its reason and counted, never fatal. Channels a sensor kind derives at
decoding (GNSS `dh` from `dx` and `dy`) are derived here by the same kind code from the rows
of one device at one instant, so a record given as its measured components is judged on what
the service would judge. With `--auto-register` unknown sites and
devices are created from the `kind` column (one site per `site` value), each device's
reporting interval taken from its own data, so offline checks fit its cadence.
"""
from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geowarn.drivers.base import Invalid, Reading, Reason
from geowarn.drivers.kinds import KINDS
from geowarn.drivers.screen import screen
from geowarn.drivers.timestamps import format_ts, parse_ts

from .config import ConfigError, load_config
from .core import Core, CoreResult
from .model.levels import LEVELS, Level
from .model.slots import Slot
from .registry import Registry
from .rules import load_rules, rules_for_config
from .skill import read_events, skill, skill_summary

COLUMNS = ("ts", "site", "device", "kind", "channel", "value")
BATCH_S = 86400.0  # one UTC day of data per batch: rain is judged per reading, trends daily
BATCH_MAX = 5000
BAD_ROW = "bad_row"
KIND_MISMATCH = "kind_mismatch"


@dataclass
class Row:
    n: int
    ts: float
    site: str
    device: str
    kind: str
    channel: str
    value: float


@dataclass
class ReplayOutcome:
    readings: int = 0
    derived: int = 0  # readings derived from others (GNSS dh), counted in `readings`
    quarantined: Counter = field(default_factory=Counter)
    result: CoreResult = field(default_factory=CoreResult)
    final_levels: dict[str, str] = field(default_factory=dict)
    core: Core | None = None
    record: dict[str, tuple[float, float]] = field(default_factory=dict)  # each site's first and last reading
    skill: dict[str, Any] | None = None  # against dated events (--events), skill.py
    rates: dict[int, dict[str, Any]] = field(default_factory=dict)  # per deformation series: what was judged

    def note_rates(self, core: Core, touched: np.ndarray) -> None:
        """After a batch: each judged deformation series' measured rate (whether or not it stood
        out of the noise), so a report shows that a sparse series was judged and on what."""
        st = core.state
        touched = np.unique(touched)
        for sid in touched[~np.isnan(st.rate[touched])].tolist():
            r = self.rates.setdefault(sid, {"judged": 0, "peak_significant": None})
            r["judged"] += 1
            r["last"], r["last_se"] = float(st.rate[sid]), float(st.rate_se[sid])
            sig = float(st.slot_value[sid, Slot.RATE])
            if sig == sig and (r["peak_significant"] is None or sig > r["peak_significant"]):
                r["peak_significant"] = sig

    def report(self) -> dict[str, Any]:
        r = self.result
        return {
            "readings": self.readings,
            "derived": self.derived,
            "quarantined": sum(self.quarantined.values()),
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
            "events": [{"ts": format_ts(e.ts), "site": e.site, "level": e.level, "previous": e.previous,
                        "reasons": list(e.reasons_zh), "reasons_en": list(e.reasons_en)} for e in r.level_changes],
            "forecasts": [{"ts": format_ts(f.ts), "site": f.site, "device": f.device, "channel": f.channel,
                           "failure_time": format_ts(f.failure_time), "fit_r2": round(f.fit_r2, 4),
                           "uncertainty_h": round(f.sigma_s / 3600.0, 2)} for f in r.forecasts],
            "faults": [{"ts": format_ts(f.ts), "site": f.site, "device": f.device, "fault": f.fault,
                        "channel": f.channel, "detail": f.detail, "active": f.active} for f in r.faults],
            "final_levels": self.final_levels,
            **({"skill": self.skill} if self.skill is not None else {}),
            # per deformation series: how often its rate was judged, the last measured rate ± its
            # standard error (units/day) and the highest rate that stood out of its noise
            "rates": [{"site": i.site, "device": i.device, "channel": i.channel, "judged": r["judged"],
                       "last_per_day": round(r["last"], 4), "last_se_per_day": round(r["last_se"], 4),
                       "peak_significant_per_day": None if r["peak_significant"] is None
                       else round(r["peak_significant"], 4)}
                      for sid, r in sorted(self.rates.items())
                      for i in [self.core.series.info[sid]] if self.core is not None],
        }


def _parse_ts(raw: str) -> float:
    try:
        return parse_ts(float(raw))
    except ValueError:
        return parse_ts(raw)


def read_rows(path: Path, quarantined: Counter) -> list[Row]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(str(path), "", f"cannot read: {e}") from None
    try:  # decoded whole: a bad byte is reported on its own line, not the buffer's first
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(str(path), "", f"not UTF-8: {e.reason} at byte {e.start}",
                          data[:e.start].count(b"\n") + 1) from None
    rows: list[Row] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        _read_records(path, reader, rows, quarantined)
    except csv.Error as e:  # e.g. a field beyond csv's size limit: say where
        raise ConfigError(str(path), "", f"not readable as CSV: {e}", reader.line_num or 1) from None
    return rows


def _read_records(path: Path, reader, rows: list[Row], quarantined: Counter) -> None:
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != COLUMNS:
        raise ConfigError(str(path), "", f"the header must be {','.join(COLUMNS)}", 1)
    for n, rec in enumerate(reader, start=2):
        if len(rec) != len(COLUMNS):
            quarantined[BAD_ROW] += 1
            continue
        ts_raw, site, device, kind, channel, value_raw = (c.strip() for c in rec)
        try:
            ts = _parse_ts(ts_raw)
        except Invalid:
            quarantined[Reason.BAD_TIMESTAMP] += 1
            continue
        try:
            value = float(value_raw)
        except ValueError:
            quarantined[Reason.NON_NUMERIC] += 1
            continue
        if kind not in KINDS or channel not in KINDS[kind].channels:
            quarantined[Reason.UNKNOWN_SENSOR] += 1
            continue
        if not site or not device:
            quarantined[BAD_ROW] += 1
            continue
        rows.append(Row(n, ts, site, device, kind, channel, value))


def derive_channels(rows: list[Row]) -> tuple[list[Row], int]:
    """The rows plus the channels their sensor kinds derive (drivers/kinds: `derive`), from the
    rows of one device at one instant; a derived channel given in the file as well is replaced,
    as the service never takes one from the wire. Returns the rows and how many were derived."""
    groups: dict[tuple[str, str, float], dict[str, Row]] = {}
    for r in rows:
        if KINDS[r.kind].derived:
            groups.setdefault((r.device, r.kind, r.ts), {}).setdefault(r.channel, r)  # the first, as the core keeps
    made: list[Row] = []
    replaced: set[int] = set()
    for (device, kind, ts), chans in groups.items():
        measured = {ch: r for ch, r in chans.items() if ch not in KINDS[kind].derived}
        got = KINDS[kind].derive({ch: r.value for ch, r in measured.items()})
        if not got:
            continue
        n = max(r.n for r in measured.values())
        site = min(measured.values(), key=lambda r: r.n).site
        made += [Row(n, ts, site, device, kind, ch, v) for ch, v in got.items()]
        replaced.update(id(chans[ch]) for ch in got if ch in chans)
    if not made:
        return rows, 0
    return [r for r in rows if id(r) not in replaced] + made, len(made)


def _auto_registry(base: Registry | None, rows: list[Row], quarantined: Counter) -> tuple[Registry, list[Row]]:
    """The base registry plus a device for every unknown device id in the data."""
    sites: dict[str, dict] = {s.id: s.model_dump() for s in base.sites} if base else {}
    known = {d.id: d for d in base.devices} if base else {}
    times: dict[str, list[float]] = defaultdict(list)
    kinds: dict[str, tuple[str, str]] = {}
    kept: list[Row] = []
    for r in rows:
        if r.device in known:
            kept.append(r)
            continue
        first = kinds.setdefault(r.device, (r.site, r.kind))
        if first != (r.site, r.kind):  # one device, one site and kind
            quarantined[Reason.SITE_MISMATCH if first[0] != r.site else Reason.BAD_SCHEMA] += 1
            continue
        times[r.device].append(r.ts)
        kept.append(r)
    for dev, (site, kind) in kinds.items():
        gaps = np.diff(np.unique(times[dev]))
        # the 90th percentile gap: irregular (manual) readings should not look offline all the time
        interval = int(np.clip(np.percentile(gaps, 90) if len(gaps) else 7200, 60, 7 * 86400))
        entry = sites.setdefault(site, {"id": site, "name": site, "county": "", "hazard": "landslide",
                                        "lon": 0.0, "lat": 0.0, "devices": []})
        entry["devices"] = [*entry["devices"], {"id": dev, "kind": kind, "interval_s": interval,
                                                "accelerated_interval_s": min(60, interval)}]
    try:
        reg = Registry.from_dict({"name": "replay", "sites": list(sites.values())})
    except ValueError as e:
        raise ConfigError("--auto-register", "", f"cannot register the data's sites and devices: {e}") from None
    return reg, kept


def run_replay(path: str | Path, config: str | None = None, auto_register: bool = False) -> ReplayOutcome:
    path = Path(path)
    out = ReplayOutcome()
    rows, out.derived = derive_channels(read_rows(path, out.quarantined))
    if config is not None:
        cfg = load_config(config)
        registry, rules = cfg.registry, rules_for_config(cfg)
    else:
        registry, rules = (None if auto_register else load_config().registry), load_rules()
    if auto_register:
        registry, rows = _auto_registry(registry, rows, out.quarantined)
    rows.sort(key=lambda r: (r.ts, r.n))
    readings = [Reading(r.device, r.kind, r.channel, r.ts, r.value, site=r.site) for r in rows]
    accepted, rejected = screen(readings, registry, now=math.inf)
    for rej in rejected:
        out.quarantined[rej.reason] += 1
    # a row must speak of its device as the registry knows it
    mismatch = [r for r in accepted if registry.device(r.device).kind != r.kind]
    if mismatch:
        out.quarantined[KIND_MISMATCH] += len(mismatch)
        accepted = [r for r in accepted if registry.device(r.device).kind == r.kind]
    core = Core(registry, rules)
    core.expect_accelerated = False  # recorded devices never obeyed our accelerated-sampling orders
    out.core = core
    ids = np.array([core.intern(r.site, r.device, r.kind, r.channel) for r in accepted], np.int64)
    ts = np.array([r.ts for r in accepted], float)
    vals = np.array([r.value for r in accepted], float)
    out.readings = len(accepted)
    for r in accepted:  # in time order
        first = out.record.get(r.site, (r.ts, r.ts))[0]
        out.record[r.site] = (first, r.ts)
    if len(accepted):
        hours = np.floor(ts / BATCH_S)
        cuts = np.flatnonzero(np.diff(hours)) + 1
        bounds = [0, *cuts.tolist(), len(ts)]
        for a, b in zip(bounds, bounds[1:]):
            for lo in range(a, b, BATCH_MAX):
                hi = min(b, lo + BATCH_MAX)
                out.result.extend(core.process(ids[lo:hi], ts[lo:hi], vals[lo:hi]))
                out.note_rates(core, ids[lo:hi])
                out.result.extend(core.tick(float(ts[hi - 1])))
    out.final_levels = core.site_levels()
    return out


def summary(o: ReplayOutcome) -> str:
    lines = [f"readings: {o.readings}" + (f" ({o.derived} derived)" if o.derived else "")
             + f", quarantined: {sum(o.quarantined.values())}"
             + (" (" + ", ".join(f"{k} {n}" for k, n in sorted(o.quarantined.items())) + ")" if o.quarantined else "")]
    r = o.result
    lines.append(f"level changes: {len(r.level_changes)}")
    for e in r.level_changes[:50]:
        lines.append(f"  {format_ts(e.ts)} {e.site}: {e.previous} -> {e.level}")
        lines += [f"      {s}" for s in e.reasons_zh[1:4]]
    if len(r.level_changes) > 50:
        lines.append(f"  ... and {len(r.level_changes) - 50} more (use --report)")
    peak: dict[str, str] = {}
    for e in r.level_changes:
        if Level.of(e.level) > Level.of(peak.get(e.site, "normal")):
            peak[e.site] = e.level
    lines.append("highest level per site: " + (", ".join(f"{s} {lv}" for s, lv in sorted(peak.items())) or "none above normal"))
    lines.append(f"forecasts: {len(r.forecasts)}")
    if r.forecasts:
        f = r.forecasts[-1]
        lines.append(f"  last: {format_ts(f.ts)} {f.site} {f.device} {f.channel} failure {format_ts(f.failure_time)} "
                     f"r² {f.fit_r2:.2f}")
    faults = Counter(f.fault.split(":")[0] for f in r.faults if f.active)
    lines.append("faults: " + (", ".join(f"{k} {n}" for k, n in sorted(faults.items())) or "none"))
    if o.skill is not None:
        lines += skill_summary(o.skill)
    return "\n".join(lines)


def cmd_replay(args) -> int:
    events = read_events(args.events) if args.events else None
    o = run_replay(args.file, args.config, args.auto_register)
    if events is not None:
        o.skill = skill(o.result.level_changes, events, o.record, args.hit_level)
    if args.report:
        try:
            with open(args.report, "w", encoding="utf-8") as f:
                json.dump(o.report(), f, ensure_ascii=False, indent=1)
                f.write("\n")
        except OSError as e:
            raise ConfigError(args.report, "", f"cannot write the report: {e}") from None
    else:
        sys.stdout.write(summary(o) + "\n")
    return 0


def add_replay_parser(sub, with_config) -> None:
    sp = with_config(sub.add_parser("replay", help="feed a CSV of readings through the detector core offline"))
    sp.add_argument("file", help="CSV ts,site,device,kind,channel,value")
    sp.add_argument("--auto-register", action="store_true",
                    help="create unknown sites and devices from the data, with the default rules")
    sp.add_argument("--report", help="write the JSON report here")
    sp.add_argument("--events", help="CSV date[,site] of dated landslides or failures: adds the skill report "
                                     "(highest level and lead times before each, hits, alert days, false alert days)")
    sp.add_argument("--hit-level", default="yellow", choices=LEVELS[1:],
                    help="the level an event must be preceded by to count as hit (default yellow)")
    sp.set_defaults(func=cmd_replay)
