"""`geowarn calibrate FILE.csv | --state-dir DIR [--site ID]`: a site's thresholds proposed from
its own record, each with where it comes from, as a `sites/<SITE>.yaml` snippet to review.

* Rain, per gauge. With two years of record or more, Dynaslope's rule: 1-day (24 h) total
  ≥ ½·T2 or 3-day (72 h) total ≥ T2, T2 the gauge's 2-year maximum 3-day total — the median
  of the yearly maxima of its 72 h total (a 2-year event is exceeded in half the years). Their
  rain trigger becomes yellow here and their near-threshold flag (0.75 of a threshold) blue.
  With less: the percentiles of the daily maxima of each window's total the current rules
  judge (blue the 99th, about 3.7 days a year; yellow the 99.7th, about one day a year),
  stating how few days a short record puts beyond them. Windows shorter than the gauge's
  reporting interval are not proposed (a daily report says nothing of its hours).
* Deformation, per device: the per-reading noise σ of each judged series (1.4826·MAD of
  successive differences / √2, as the core estimates it: differences cancel a trend, the MAD
  ignores steps and spikes), the spike floor it allows (hampel_k·σ, never under two reading
  steps of a quantised record) and the rate floor: the smallest rate that stands
  SIGNIFICANCE standard errors out of that noise over the rule's rate window at the series'
  cadence. A blue rate below the floor could never fire; it is raised to the floor.

Nothing is written unless `--write` (then into the rules directory, never over a file).
Levels above a proposed one are kept from the current rules where they stay above it.
"""
from __future__ import annotations

import math
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geowarn.drivers.kinds import KINDS
from geowarn.drivers.timestamps import format_ts

from .config import ConfigError, load_config
from .core.detectors.stats import MAD_SCALE, median_and_mad
from .core.detectors.threshold import SIGNIFICANCE
from .journal import Journal, journal_path
from .model.slots import RAIN_WINDOWS_H
from .replay import derive_channels, read_rows
from .rules import KindRule, Levels, Rules, default_rules_dir, load_rules, rules_for_config

YEAR_H = 365 * 24
T2_MIN_YEARS = 2
NEAR = 0.75  # Dynaslope's near-threshold flag: this share of a threshold
PCT_BLUE, PCT_YELLOW = 99.0, 99.7  # percentiles of daily maxima (short records)
LEVEL_KEYS = ("blue", "yellow", "orange", "red")


@dataclass
class Series:
    site: str
    device: str
    kind: str
    channel: str
    t: np.ndarray  # epoch s, ascending, distinct
    v: np.ndarray


def load_series(file: str | None, state_dir: str | None, site: str | None) -> tuple[list[Series], str]:
    """Every series of the record (of one site with `site`), finite and physically possible
    values only; channels a kind derives are derived as replay derives them. Returns the series
    and a description of the source."""
    if file is not None:
        rows, _ = derive_channels(read_rows(Path(file), Counter()))
        recs = [(r.ts, r.site, r.device, r.kind, r.channel, r.value) for r in rows]
        source = file
    else:
        path = journal_path(state_dir)
        if not path.exists():
            raise ConfigError(str(path), "", "no journal here: is --state-dir right?")
        with Journal(path, readonly=True) as j:
            recs = list(j.export_rows(None, site))
        source = str(path)
    by: dict[tuple[str, str, str, str], list[tuple[float, float]]] = defaultdict(list)
    for ts, s, dev, kind, ch, v in recs:
        lo, hi = KINDS[kind].limits.get(ch, (-math.inf, math.inf)) if kind in KINDS else (-math.inf, math.inf)
        if (site is None or s == site) and math.isfinite(v) and lo <= v <= hi:
            by[(s, dev, kind, ch)].append((ts, v))
    out = []
    for (s, dev, kind, ch), pts in sorted(by.items()):
        a = np.array(sorted(dict(pts).items()))  # one value per instant: the last given
        out.append(Series(s, dev, kind, ch, a[:, 0], a[:, 1]))
    if not out:
        raise ConfigError(source, "", f"no usable readings{f' of site {site}' if site else ''}")
    return out, source


def _nice(x: float, up: bool = True) -> float:
    """x to two significant figures, rounded up (a floor must not fall below what it protects)."""
    if x <= 0 or not math.isfinite(x):
        return x
    e = math.floor(math.log10(x)) - 1
    f = (math.ceil if up else round)(x / 10 ** e)
    return round(f * 10 ** e, max(0, -e))


def _g(x: float | None) -> str:
    return "null" if x is None else f"{x:g}"


def _levels_line(proposed: dict[str, float | None], current: Levels | None) -> tuple[str, list[str]]:
    """`{blue: .., yellow: .., orange: .., red: ..}` with the current rule's higher levels kept
    where they stay above the proposed ones; and notes on what was left out."""
    cur = {k: getattr(current, k) if current is not None else None for k in LEVEL_KEYS}
    out, notes = {}, []
    floor = -math.inf
    for k in LEVEL_KEYS:
        v = proposed[k] if k in proposed else cur[k]
        if v is not None and v <= floor:
            notes.append(f"the current {k} {v:g} is not above the proposed lower levels: left out, set it by hand")
            v = None
        out[k] = v
        floor = v if v is not None else floor
    return "{" + ", ".join(f"{k}: {_g(v)}" for k, v in out.items()) + "}", notes


# --- rain --------------------------------------------------------------------------------

def hourly(s: Series) -> tuple[float, np.ndarray]:
    """The record as hourly totals (mm) from its first hour, each report in the hour it
    arrived; a gauge counter (`total`) as its increments (a fall is a reset)."""
    v = s.v
    if s.channel == "total":
        d = np.diff(v, prepend=v[0])
        v = np.where(d < 0, v, d)
    h = np.floor(s.t / 3600.0).astype(np.int64)
    return float(h[0] * 3600), np.bincount(h - h[0], weights=v)


def rolling(hours: np.ndarray, w: int) -> np.ndarray:
    """The w-hour total ending at every hour."""
    c = np.concatenate(([0.0], np.cumsum(hours)))
    return c[1:] - c[np.maximum(np.arange(1, len(c)) - w, 0)]


def rain_proposal(s: Series, rule: KindRule) -> list[str]:
    rf = rule.rainfall
    start, hours = hourly(s)
    span_days = len(hours) / 24.0
    gaps = np.diff(s.t)
    cadence_h = float(np.median(gaps)) / 3600.0 if len(gaps) else math.inf
    current = rf.totals_mm if rf is not None else {}
    head = [f"# {s.kind} {s.device} {s.channel}: {len(s.t)} reports, {format_ts(s.t[0])[:10]} – "
            f"{format_ts(s.t[-1])[:10]} ({span_days:.0f} days), {hours.sum():.0f} mm in all, "
            f"typical interval {cadence_h:g} h"]
    lines: list[str] = []
    years = len(hours) // YEAR_H
    if years >= T2_MIN_YEARS:
        r72 = rolling(hours, 72)
        maxima = [float(r72[i * YEAR_H:(i + 1) * YEAR_H].max()) for i in range(years)]
        t2 = float(np.median(maxima))
        head += ["# Dynaslope rule (updews rainfallalert.py): 1-day total >= T2/2 or 3-day total >= T2 is their",
                 "# rain trigger (here yellow); 0.75 of a threshold their near-threshold flag (here blue).",
                 f"# T2 = 2-year maximum 3-day total = the median of {years} yearly maxima of the 72 h total",
                 f"# (years from {format_ts(start)[:10]}: " + ", ".join(f"{m:.1f}" for m in maxima)
                 + f" mm) = {t2:.1f} mm"]
        for w, thr in ((24, t2 / 2), (72, t2)):
            line, notes = _levels_line({"blue": round(NEAR * thr, 1), "yellow": round(thr, 1)}, current.get(w))
            lines += [f"# {n}" for n in notes] + [f"{w}: {line}"]
    else:
        days = math.floor(len(hours) / 24)
        head += [f"# under {T2_MIN_YEARS} years of record: percentiles of the {days} daily maxima of each window's total",
                 f"# (blue the {PCT_BLUE:g}th, about {365 * (1 - PCT_BLUE / 100):.1f} days a year at or above; yellow the "
                 f"{PCT_YELLOW:g}th, about {365 * (1 - PCT_YELLOW / 100):.1f})"]
        if days * (1 - PCT_BLUE / 100) < 3:
            head.append(f"# a short record: {days} days put only {days * (1 - PCT_BLUE / 100):.1f} days beyond the "
                        f"{PCT_BLUE:g}th and {days * (1 - PCT_YELLOW / 100):.1f} beyond the {PCT_YELLOW:g}th percentile: "
                        "these are the record's wettest days, not yet its climate")
        for w in RAIN_WINDOWS_H:
            if current.get(w) is None:
                continue
            if w < cadence_h:
                lines.append(f"# {w} h: not proposed, the gauge reports every {cadence_h:g} h")
                continue
            daily = rolling(hours, w)[: days * 24].reshape(days, 24).max(axis=1)
            blue, yellow = (float(np.percentile(daily, q)) for q in (PCT_BLUE, PCT_YELLOW))
            if yellow <= 0:
                lines.append(f"# {w} h: not proposed, no rain in the record")
                continue
            prop: dict[str, float | None] = {"blue": _nice(blue), "yellow": _nice(yellow)}
            if prop["blue"] >= prop["yellow"] or prop["blue"] <= 0:
                prop["blue"] = None
            line, notes = _levels_line(prop, current.get(w))
            lines += [f"# {n}" for n in notes] + [f"{w}: {line}   # record maximum {daily.max():.1f} mm"]
    if all(ln.startswith("#") for ln in lines):
        return head + lines
    return head + ["rainfall:", "  totals_mm:"] + [f"    {ln}" for ln in lines]


# --- deformation -------------------------------------------------------------------------

@dataclass
class Noise:
    sigma: float  # per reading
    step: float  # the record's smallest change between readings (its quantum), 0 if none
    cadence_s: float  # median interval
    n: int


def noise_of(s: Series) -> Noise | None:
    """None when the record has too few readings to say (fewer than 9)."""
    d = np.diff(s.v)
    if len(d) < 8:
        return None
    _, mad = median_and_mad(d[None, :])
    nz = np.abs(np.round(d, 6))
    nz = nz[nz > 0]
    return Noise(MAD_SCALE * float(mad[0]) / math.sqrt(2.0), float(nz.min()) if len(nz) else 0.0,
                 float(np.median(np.diff(s.t))), len(s.t))


def rate_floor(noise: Noise, window_h: float) -> tuple[float, float]:
    """(smallest significant rate per day, readings in the window) for evenly spread readings:
    the least-squares slope error σ·√(12/n)/W, times SIGNIFICANCE."""
    w = window_h * 3600.0
    n = max(w / noise.cadence_s, 1.0)
    return SIGNIFICANCE * noise.sigma * math.sqrt(12.0 / n) / w * 86400.0, n


def deformation_proposal(series: list[Series], rule: KindRule) -> list[str]:
    q, t = rule.quality, rule.threshold
    unit = {"tilt": "deg"}.get(series[0].kind, "kPa" if series[0].kind == "pressure" else "mm")
    head: list[str] = []
    spike, floor = 0.0, 0.0
    for s in series:
        nz = noise_of(s)
        if nz is None:
            head.append(f"# {s.kind} {s.device} {s.channel}: {len(s.t)} readings, too few to estimate its noise")
            continue
        sp = max(q.hampel_k * nz.sigma, 2.0 * nz.step)
        head.append(f"# {s.kind} {s.device} {s.channel}: {nz.n} readings, typical interval {nz.cadence_s / 3600:.3g} h, "
                    f"noise σ {nz.sigma:.3g} {unit} (1.4826·MAD of successive differences / √2)"
                    + (f", reading step {nz.step:.3g}" if nz.step else ""))
        head.append(f"#   spike floor max(hampel_k {q.hampel_k:g} × σ, 2 reading steps) = {sp:.3g} {unit}")
        spike = max(spike, sp)
        if t is not None:
            fl, n = rate_floor(nz, t.rate_window_h)
            if n < t.rate_min_points:
                head.append(f"#   the {t.rate_window_h:g} h rate window holds {n:.2g} readings at this cadence, fewer than "
                            f"rate_min_points {t.rate_min_points}: no rate floor over it")
                continue
            head.append(f"#   rate floor over the {t.rate_window_h:g} h rate window ({n:.3g} readings): "
                        f"{SIGNIFICANCE:g} standard errors = {fl:.3g} {unit}/day")
            floor = max(floor, fl)
    if spike == 0.0:
        return head
    lines = head + ["quality:", f"  spike_floor: {_nice(spike)}   # was {q.spike_floor:g}"]
    if t is not None and t.rate is not None and floor > 0:
        blue = t.rate.blue
        if blue is not None and blue >= floor:
            line, notes = _levels_line({}, t.rate)
            lines += ["threshold:", f"  rate: {line}   # unchanged: blue {blue:g} is above the rate floor {floor:.3g}"]
        else:
            line, notes = _levels_line({"blue": _nice(floor)}, t.rate)
            lines += ["threshold:"] + [f"  # {n}" for n in notes] + \
                     [f"  rate: {line}   # blue raised to the rate floor (was {_g(blue)}): below it scatter alone"]
    return lines


# --- the snippet -------------------------------------------------------------------------

def propose(series: list[Series], rules: Rules, site: str, source: str) -> str:
    """The sites/<SITE>.yaml text for one site."""
    mine = [s for s in series if s.site == site]
    t0, t1 = min(s.t[0] for s in mine), max(s.t[-1] for s in mine)
    out = [f"# geowarn calibrate: thresholds proposed for site {site} from its record",
           f"# source {source}, {format_ts(t0)[:10]} – {format_ts(t1)[:10]}, {sum(len(s.t) for s in mine)} readings.",
           "# Review every value before keeping this file: each says where it comes from (alert_rules/README.md).",
           "devices:"]
    by_dev: dict[str, list[Series]] = defaultdict(list)
    for s in mine:
        by_dev[s.device].append(s)
    for dev, ss in sorted(by_dev.items()):
        kind = ss[0].kind
        rule = rules.for_device(kind, site, dev)
        if kind == "rain":
            judged = [s for s in ss if s.channel in rule.channels and rule.rainfall is not None]
            body = rain_proposal(next((s for s in judged if s.channel == "mm"), judged[0]), rule) if judged else []
        else:
            judged = [s for s in ss if s.channel in rule.channels]
            body = deformation_proposal(judged, rule) if judged else []
        if not any(not ln.lstrip().startswith("#") for ln in body):
            out += [f"  {ln}" for ln in body] + [f"  # {kind} {dev}: nothing to propose"]
            continue
        out.append(f"  {_yaml_key(dev)}:")
        out += [f"    {ln}" for ln in body]
    return "\n".join(out) + "\n"


def _yaml_key(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_snippet(rules_dir: Path, site: str, text: str, pairs: list[tuple[str, str]]) -> None:
    """Load the rules directory with the snippet as its sites/<SITE>.yaml: the proposal must be
    a rule file `geowarn check` accepts."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "rules"
        shutil.copytree(rules_dir, d, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
        (d / "sites").mkdir(exist_ok=True)
        (d / "sites" / f"{site}.yaml").write_text(text, encoding="utf-8")
        rules = load_rules(d)
        for kind, dev in pairs:
            rules.for_device(kind, site, dev)


def cmd_calibrate(args) -> int:
    if (args.file is None) == (args.state_dir is None):
        raise ConfigError("calibrate", "", "give a record: FILE.csv or --state-dir DIR (one of them)")
    rules_dir = Path(args.rules_dir) if args.rules_dir else None
    if args.config is not None:
        cfg = load_config(args.config)
        rules = rules_for_config(cfg)
        rules_dir = rules_dir or Path(rules.source)
    else:
        rules = load_rules(rules_dir)
    series, source = load_series(args.file, args.state_dir, args.site)
    sites = sorted({s.site for s in series})
    for site in sites:
        text = propose(series, rules, site, source)
        check_snippet(rules_dir or default_rules_dir(), site, text,
                      sorted({(s.kind, s.device) for s in series if s.site == site}))
        if not args.write:
            sys.stdout.write(f"# --- sites/{site}.yaml ---\n{text}")
            continue
        if rules_dir is None or rules_dir.resolve() == default_rules_dir().resolve():
            raise ConfigError("--write", "", "no rules directory of your own to write into: give --rules-dir DIR "
                                             "or a --config whose `rules:` names one")
        target = rules_dir / "sites" / f"{site}.yaml"
        if target.exists():
            raise ConfigError(str(target), "", "exists: review the proposal (without --write) and merge it by hand")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {target}\n")
    return 0


def add_cli(sub, with_config) -> None:
    sp = with_config(sub.add_parser("calibrate", help="propose a site's thresholds from its record, with provenance, "
                                                      "as a sites/<SITE>.yaml snippet (writes nothing unless --write)"))
    sp.add_argument("file", nargs="?", help="CSV ts,site,device,kind,channel,value (as replay reads)")
    sp.add_argument("--state-dir", help="...or the journal of a state directory")
    sp.add_argument("--site", help="only this site (default: every site of the record)")
    sp.add_argument("--rules-dir", help="the rules directory to check against and write into "
                                        "(default: the configuration's, else the packaged defaults)")
    sp.add_argument("--write", action="store_true", help="write sites/<SITE>.yaml into the rules directory "
                                                         "(never over an existing file)")
    sp.set_defaults(func=cmd_calibrate)
