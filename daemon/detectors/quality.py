"""Data quality: device faults for technicians. Nothing here ever raises a site level.

* spike: a Hampel test (median and MAD of a window), carried along the median slope so a
  steady trend is not taken for outliers: a reading that departs from the prediction by more
  than k·1.4826·MAD (and more than `spike_floor`) is held back as suspect; the next reading decides:
  back in line → spike (kept out of every window); in line with the suspect → a real step
  (moved back in), and a step beyond `jump` is a reference/antenna jump, removed from the
  series as an offset so it is never taken for movement;
* out of range, flat-line, offline / never reported, low battery, sensor_state errors.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.buffers import Windows
from ..core.params import Params
from .stats import rowmedian, theil_sen

MAD_SCALE = 1.4826
SENSOR_STATE = {-1: "power error / 供电故障", -2: "data error / 数据异常", -3: "no data / 无数据"}


@dataclass
class Expect:
    """What the recent past predicts for each new reading."""

    pred: np.ndarray  # predicted value at the new reading's time
    tol: np.ndarray  # allowed departure (NaN when there is too little history to judge)
    slope: np.ndarray  # units/s


def expect(win: Windows, p: Params, sid: np.ndarray, t: np.ndarray) -> Expect:
    """Hampel's test made trend-aware: every usable reading of the window is carried forward
    to time t along the median slope; the prediction is their median, the tolerance k times
    their scaled MAD (never below the floor). Fewer than 5 usable readings: no judgement."""
    w = int(p.hampel_w[sid].max())
    ts, v, _ = win.raw_last(sid, w)
    ok = ~np.isnan(v) & (np.arange(w)[None, :] >= (w - p.hampel_w[sid])[:, None])
    ts = np.where(ok, ts, np.nan)
    v = np.where(ok, v, np.nan)
    slope = np.nan_to_num(theil_sen(ts, v)[0])
    carried = v + slope[:, None] * (t[:, None] - ts)
    pred = rowmedian(carried)
    sigma = MAD_SCALE * rowmedian(np.abs(carried - pred[:, None]))
    tol = np.fmax(p.hampel_k[sid] * sigma, p.floor[sid])
    tol[ok.sum(axis=1) < 5] = np.nan
    return Expect(pred, tol, slope)


def flatline(win: Windows, p: Params, sid: np.ndarray) -> np.ndarray:
    """True where a series has repeated exactly the same value for at least flatline_h."""
    on = ~np.isnan(p.flat_h[sid])
    out = np.zeros(len(sid), bool)
    if not on.any():
        return out
    rows = np.flatnonzero(on)
    s = sid[rows]
    ts, _, present = win.raw_last(s, 64)
    v = np.where(present, win.raw_v[s[:, None], (win.count[s][:, None] - 64 + np.arange(64)) % win.raw_v.shape[1]], np.nan)
    t_last = win.last_ts[s]
    inside = present & (ts >= (t_last - p.flat_h[s] * 3600.0)[:, None])
    with np.errstate(invalid="ignore"):
        covered = np.nanmin(np.where(present, ts, np.inf), axis=1) <= t_last - p.flat_h[s] * 3600.0
    lo = np.min(np.where(inside, v, np.inf), axis=1)
    hi = np.max(np.where(inside, v, -np.inf), axis=1)
    out[rows] = (inside.sum(axis=1) >= 3) & covered & (hi == lo)
    return out


def status_faults(fields: dict, low_battery_pct: float) -> dict[str, str]:
    """Fault name -> detail for one device status report."""
    out: dict[str, str] = {}
    batt = fields.get("battery_pct")
    if isinstance(batt, (int, float)) and batt < low_battery_pct:
        out["low_battery"] = f"battery {batt:g}% < {low_battery_pct:g}%"
    states = fields.get("sensor_state")
    if isinstance(states, dict):
        for sensor, code in sorted(states.items()):
            if code != 0:
                out[f"sensor_state:{sensor}"] = f"{sensor} state {code}: {SENSOR_STATE.get(code, 'unknown error')}"
    return out


def offline_after(interval_s: float, factor: float) -> float:
    """Silence (s) after which a device counts as offline: `factor` reporting intervals, and
    never less than 15 minutes (a retry cycle of the national protocol's devices)."""
    return max(interval_s * factor, 900.0)
