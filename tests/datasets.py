"""The real monitoring data of ../shared/data as replay CSVs (ts,site,device,kind,channel,value),
and a synthetic Voight-law creep. Nothing big is copied into the repository."""
from __future__ import annotations

import csv
import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    """shared/data beside this clone; else $GEOWARN_SHARED_DATA; else beside the repository this
    one was cloned from (a CI clone in a temporary directory)."""
    here = REPO.parent / "shared" / "data"
    candidates = [here]
    if os.environ.get("GEOWARN_SHARED_DATA"):
        candidates.append(Path(os.environ["GEOWARN_SHARED_DATA"]))
    try:
        origin = subprocess.run(["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if origin and "://" not in origin:
        candidates.append(Path(origin).resolve().parent / "shared" / "data")
    return next((c for c in candidates if c.is_dir()), here)


DATA = _shared_data()
HEADER = ["ts", "site", "device", "kind", "channel", "value"]


def data_file(name: str) -> Path:
    path = DATA / name
    if not path.is_file():
        raise FileNotFoundError(f"real monitoring data missing: {path} (the repository expects shared/data/ "
                                f"beside its clone, at {DATA})")
    return path


def _utc(s: str, fmt: str) -> str:
    return datetime.strptime(s, fmt).replace(tzinfo=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write(path: Path, rows: list[list]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def lamosano(out: Path) -> Path:
    """Point p5 (mm, every 11 days) as a GNSS horizontal channel, and the hourly rain."""
    rows = []
    with data_file("lamosano_displacement_p5_2015_2020.csv").open() as f:
        for r in csv.DictReader(f):
            # the series runs 0 to -102 mm (line of sight); dh is a magnitude
            rows.append([_utc(r["date"], "%Y-%m-%d"), "LAMOSANO", "p5", "gnss", "dh", abs(float(r["p5"]))])
    with data_file("lamosano_hourly_rain_2015_2020.csv").open() as f:
        for r in csv.DictReader(f):
            rows.append([_utc(r["date"], "%d/%m/%Y %H:%M"), "LAMOSANO", "rain", "rain", "mm", r["rain"]])
    return _write(out, rows)


def _dev(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:-]+", "_", "-".join(parts)).strip("_")


def dynaslope(out: Path) -> Path:
    """Every marker and component as its own crack meter (cm → mm ×10); components never mix.
    An empty component is the single reading N."""
    rows = []
    with data_file("dynaslope_surficial_crack_markers_2014_2016.csv").open() as f:
        for r in csv.DictReader(f):
            if not r["measure_cm"].strip():
                continue  # an empty field: a row without a measurement
            comp = r["component"].strip() or "N"
            if comp == "?":
                comp = "unknown"
            rows.append([_utc(r["timestamp"], "%Y-%m-%d %H:%M:%S"), r["site"].upper(),
                         _dev(r["site"], r["marker"], comp), "crack", "width", float(r["measure_cm"]) * 10])
    with data_file("dynaslope_MSL_surficial_markers_2015_2017.csv").open() as f:
        for r in csv.DictReader(f):
            rows.append([_utc(r["ts"], "%Y-%m-%d %H:%M:%S"), "MSL", _dev("msl", r["marker_name"]), "crack", "width",
                         float(r["meas_cm"]) * 10])
    return _write(out, rows)


def mukilteo(out: Path) -> Path:
    rows = []
    with data_file("usgs_mukilteo_RALHS_15min_rain_2015.csv").open() as f:
        for r in csv.DictReader(f):
            rows.append([_utc(r["datetime"], "%Y-%m-%d %H:%M"), "MUKILTEO", r["station"], "rain", "mm",
                         r["precip_mm_15min"]])
    return _write(out, rows)


def voight(out: Path | None = None, *, seed: int = 7, creep_days: float = 40.0, accel_days: float = 20.0,
           v0: float = 2.0, noise: float = 0.5, interval_s: float = 7200.0) -> tuple[Path | None, dict]:
    """A crack meter creeping at v0 mm/day, then accelerating by Voight's law with α = 2:
    1/v falls linearly to zero at failure tf. Gaussian noise (mm) on every reading.
    Returns the CSV and the truth (t_onset, tf)."""
    rng = np.random.default_rng(seed)
    t0 = 1_700_000_000.0
    t1 = t0 + creep_days * 86400
    tf = t1 + accel_days * 86400
    t = np.arange(t0, tf - 600, interval_s)
    # α = 2: v = 1/(A (tf - t)); v(t1) = v0 fixes A; displacement integrates to a log
    A = 1.0 / (v0 / 86400 * (tf - t1))
    x = np.where(t < t1, v0 / 86400 * (t - t0),
                 v0 / 86400 * (t1 - t0) + np.log((tf - t1) / np.maximum(tf - t, 1.0)) / A)
    x = x + rng.normal(0.0, noise, len(t))
    truth = {"t0": t0, "t_onset": t1, "tf": tf, "t": t, "x": x}
    if out is not None:
        from geowarn.drivers.timestamps import format_ts
        rows = [[format_ts(ti), "VOIGHT", "cm1", "crack", "width", f"{xi:.3f}"] for ti, xi in zip(t, x)]
        # a second instrument on the same slope, following the same law with its own noise
        x2 = (x - rng.normal(0.0, noise, len(t))) * 0.8 + rng.normal(0.0, noise, len(t))
        rows += [[format_ts(ti), "VOIGHT", "cm2", "crack", "width", f"{xi:.3f}"] for ti, xi in zip(t, x2)]
        _write(out, rows)
    return out, truth


def voight_displacement(t: np.ndarray, t0: float, t_onset: float, tf: float, v0: float) -> np.ndarray:
    """Steady creep at v0 (mm/day) until t_onset, then Voight's law with alpha = 2 to failure at tf."""
    A = 1.0 / (v0 / 86400 * (tf - t_onset))
    return np.where(t < t_onset, v0 / 86400 * (t - t0),
                    v0 / 86400 * (t_onset - t0) + np.log((tf - t_onset) / np.maximum(tf - t, 1.0)) / A)


def run_voight_closed_loop(core, site: str, devices: list[str], *, seed: int = 11, creep_days: float = 40.0,
                           accel_days: float = 20.0, v0: float = 2.0, noise: float = 0.5,
                           normal_s: float = 7200.0, accelerated_s: float = 600.0, spikes: int = 6,
                           stop_before_s: float = 3600.0):
    """Crack meters on one slope following Voight's law, each with its own Gaussian noise and a
    few spikes, reporting every `normal_s` and, once the site is at yellow or above, every
    `accelerated_s` (the service orders accelerated sampling at yellow: DESIGN). Fed to the core
    in one-hour batches. Returns the truth and what the core said along the way."""
    rng = np.random.default_rng(seed)
    t0 = 1_700_000_000.0
    t_onset = t0 + creep_days * 86400
    tf = t_onset + accel_days * 86400
    sids = [core.intern(site, d, "crack", "width") for d in devices]
    spike_at = set(rng.integers(100, int(creep_days * 12), spikes).tolist())
    next_t = {s: t0 + 600.0 * i for i, s in enumerate(sids)}
    levels, forecasts, signals, faults = [], [], [], []
    n = 0
    hour = t0
    while hour < tf - stop_before_s:
        hour += 3600.0
        accelerated = core.site_levels().get(site, "normal") in ("yellow", "orange", "red")
        ids, ts, vals = [], [], []
        for s in sids:
            while next_t[s] < hour and next_t[s] < tf - stop_before_s:
                x = voight_displacement(np.array([next_t[s]]), t0, t_onset, tf, v0)[0] + rng.normal(0, noise)
                n += 1
                if n in spike_at:
                    x += rng.choice([-1, 1]) * rng.uniform(20, 60)
                ids.append(s)
                ts.append(next_t[s])
                vals.append(x)
                next_t[s] += accelerated_s if accelerated else normal_s
        res = core.process(ids, ts, vals)
        levels += [(e.ts, e.level) for e in res.level_changes]
        signals += res.signals
        faults += res.faults
        for s in sids:
            fc = core.forecast(s)
            if fc is not None and ts:
                forecasts.append((max(ts), s, fc["failure_time"], fc["fit_r2"], fc["sigma_s"]))
    return {"t0": t0, "t_onset": t_onset, "tf": tf, "levels": levels, "forecasts": forecasts,
            "signals": signals, "faults": faults}
