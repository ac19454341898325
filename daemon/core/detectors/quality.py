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

from ..buffers import Windows, windows_of
from ..params import Params
from .stats import MAD_SCALE, median_and_mad, row_count, row_reduce

SENSOR_STATE = {-1: "power error / 供电故障", -2: "data error / 数据异常", -3: "no data / 无数据"}


@dataclass
class Judgement:
    accept: np.ndarray  # usable now
    spike: np.ndarray  # departed from the past and the next reading did not follow
    pending: np.ndarray  # departed from the past, no next reading yet: held back until it comes
    step: np.ndarray  # departed from the past and the next reading stayed out there too: a level
    # change, by this much (the two readings' mean against the window median; NaN: no step)
    median: np.ndarray  # of the window; NaN where not computed (a cell within the floor of all of it)
    tol: np.ndarray


def hampel(seq: np.ndarray, row: np.ndarray, col: np.ndarray, end: np.ndarray, w: np.ndarray,
           k: np.ndarray, floor: np.ndarray) -> Judgement:
    """Judge the cells (row, col) of `seq` (one row per series, oldest first, NaN = unusable or
    absent) against the up to w[row] cells before them: departing by more than
    max(k·1.4826·MAD, floor) from their median is suspect. The next cell of the row (before
    `end`) decides whether a suspect is a spike or the first reading of a real step. The
    trailing median lags a steady trend by w/2 samples while the MAD of a trending window is
    about w/4 samples' worth, so with k >= 2 a trend alone is never suspect."""
    W = int(w.max())
    # the W cells before each judged cell, each a slice of its row (callers keep at least W
    # cells before every judged cell)
    win = windows_of(np.ascontiguousarray(seq), W)[row, col - W]
    if (w != W).any():  # rules with shorter windows: blank their older cells
        win = np.where(np.arange(W)[None, :] >= (W - w)[:, None], win, np.nan)
    x = seq[row, col]
    # a cell within `floor` of every cell of its window cannot depart from their median by more
    # than the tolerance: only the others need the median and MAD (on a quiet network, few)
    with np.errstate(invalid="ignore"):
        span = np.fmax(row_reduce(np.fmax, win), x) - np.fmin(row_reduce(np.fmin, win), x)
    med, mad = np.full(len(x), np.nan), np.full(len(x), np.nan)
    need = np.flatnonzero(~(span <= floor))
    if len(need):
        med[need], mad[need] = median_and_mad(win[need])
    tol = np.fmax(k * MAD_SCALE * mad, floor)
    gaps = np.isnan(win)
    enough = W - row_count(gaps) >= 5 if gaps.any() else np.full(len(x), W >= 5)
    with np.errstate(invalid="ignore"):
        dev = enough & (np.abs(x - med) > tol)
        has_next = col + 1 < end
        nxt = seq[row, np.minimum(col + 1, seq.shape[1] - 1)]
        has_next &= ~np.isnan(nxt)
        follows = dev & has_next & (np.abs(nxt - x) <= tol)
        # a level change: the next reading also stands beyond the tolerance, on the same side
        step = follows & (np.abs(nxt - med) > tol) & (np.sign(nxt - med) == np.sign(x - med))
    spike = dev & has_next & ~follows
    pending = dev & ~has_next
    accept = ~np.isnan(x) & ~spike & ~pending
    size = np.where(step, 0.5 * (x + nxt) - med, np.nan)
    return Judgement(accept, spike, pending, size, med, tol)


def flatline(win: Windows, p: Params, sid: np.ndarray) -> np.ndarray:
    """True where a series has repeated exactly the same value for at least flatline_h over
    three readings or more (the run is tracked as readings arrive)."""
    with np.errstate(invalid="ignore"):
        return (win.last_ts[sid] - win.run_start[sid] >= p.flat_h[sid] * 3600.0) & (win.run_n[sid] >= 3)


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
