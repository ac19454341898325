"""Rainfall family: rolling totals (1/3/6/12/24/72 h), effective antecedent rainfall and the
intensity-duration threshold I = a·D^-b (Caine 1980; Guzzetti et al. 2008).

Totals are judged at every reading, not only at the end of a batch, because a storm's 1-hour
peak passes quickly. They are sums of 10-minute bins, so a window edge is exact to one bin.
Gauges sending a cumulative counter are turned into increments before binning (core)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...model.slots import RAIN_SLOTS, RAIN_WINDOWS_H, Slot
from ..buffers import DAY_S, Windows, ends_of, starts_of
from ..params import Params
from .stats import level_of, row_reduce, threshold_at

RAIN_BIN_S = 600.0
WIN_BINS = np.array([int(h * 3600 / RAIN_BIN_S) for h in RAIN_WINDOWS_H])
NW = len(RAIN_WINDOWS_H)
# result columns, in the order of RAIN_SLOTS: one per window, then these two
ANTECEDENT, ID = Slot.ANTECEDENT - RAIN_SLOTS.start, Slot.INTENSITY_DURATION - RAIN_SLOTS.start


@dataclass
class Rain:
    level: np.ndarray  # [m, NW + 2]
    value: np.ndarray  # mm
    threshold: np.ndarray  # mm
    id_duration_h: np.ndarray  # the duration whose intensity exceeded most (NaN when none)
    peak_ts: np.ndarray  # when each series first reached its highest level of the batch


def totals_at(win: Windows, sid: np.ndarray, last_bin: np.ndarray, width: int,
              rows: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Rolling totals of every window, at reading bins `col` of series rows `rows`."""
    s, _, _ = win.bins("mid", sid, last_bin, width, times=False)
    c = np.concatenate([np.zeros((len(sid), 1)), np.cumsum(s, axis=1)], axis=1)
    hi = c[rows, col + 1]
    lo = c[rows[:, None], np.clip(col[:, None] + 1 - WIN_BINS[None, :], 0, None)]
    return hi[:, None] - lo


def evaluate(win: Windows, p: Params, series: np.ndarray, grp: np.ndarray, ts: np.ndarray) -> Rain:
    """series: distinct rain series; grp: each reading's row in `series` (readings grouped by
    row, in time order); ts: reading times."""
    m = len(series)
    b = np.floor(ts / RAIN_BIN_S).astype(np.int64)
    starts = np.flatnonzero(starts_of(grp))
    first = b[starts]  # readings are grouped by series in time order
    last = b[np.append(starts[1:] - 1, len(b) - 1)]
    width = int(min(win.mid_sum.shape[1], WIN_BINS.max() + (last - first).max() + 1))
    col = b - (last[grp] - width + 1)
    tot = totals_at(win, series, last, width, grp, np.clip(col, 0, width - 1))  # [N, NW]
    # a reading too far back in a long batch for the ring to hold its whole window is not judged
    tot[col[:, None] + 1 - WIN_BINS[None, :] < 0] = np.nan

    s = series[grp]
    lev = np.zeros((len(ts), NW + 2), np.int8)
    lev[:, :NW] = level_of(tot, p.rain_tab[s])  # every window at once
    hours = np.array(RAIN_WINDOWS_H, float)
    id_mm = p.id_a[s, None] * hours[None, :] ** (1.0 - p.id_b[s, None])  # a·D^-b mm/h over D hours
    ratio = np.where(p.id_mask[s], np.nan_to_num(tot / id_mm), 0.0)
    worst = np.argmax(ratio, axis=1)
    exceed = p.id_on[s] & (ratio[np.arange(len(ts)), worst] >= 1.0)
    lev[:, ID] = np.where(exceed, p.id_level[s], 0)

    level = np.zeros((m, NW + 2), np.int8)
    value = np.full((m, NW + 2), np.nan)
    thr = np.full((m, NW + 2), np.nan)
    level[grp[starts]] = np.maximum.reduceat(lev, starts, axis=0)
    per_reading = row_reduce(np.maximum, lev)
    top = np.maximum.reduceat(per_reading, starts)
    at_top = np.flatnonzero(per_reading == top[grp])
    peak_ts = np.full(m, np.nan)
    first_top = at_top[starts_of(grp[at_top])]
    peak_ts[grp[first_top]] = ts[first_top]
    value[grp[starts], :NW] = np.fmax.reduceat(tot, starts, axis=0)
    thr[:, :NW] = threshold_at(level[:, :NW], p.rain_tab[series])  # every window in one take
    # intensity-duration: report the worst exceedance of the batch
    r_idx = np.arange(len(ts))
    worst_ratio = ratio[r_idx, worst]
    best = np.zeros(m, np.int64)
    order = np.lexsort((worst_ratio, grp))
    go = grp[order]
    ends = ends_of(go)  # each group's largest ratio sorts last
    best[go[ends]] = order[ends]
    id_dur = np.where(level[:, ID] > 0, hours[worst[best]], np.nan)
    value[:, ID] = np.where(level[:, ID] > 0, tot[best, worst[best]], np.nan)
    thr[:, ID] = np.where(level[:, ID] > 0, id_mm[best, worst[best]], np.nan)

    # effective antecedent rainfall, daily: sum of k^i R_i, i = 0 today
    on = p.ant_on[series]
    if on.any():
        nd = int(p.ant_days[series].max()) + 1
        end = np.floor(win.last_ts[series] / DAY_S).astype(np.int64)
        dsum, _, _ = win.bins("day", series, end, nd, times=False)
        age = np.arange(nd - 1, -1, -1)[None, :]
        k = p.ant_k[series][:, None]
        weights = np.where(age <= p.ant_days[series][:, None], k ** age, 0.0)
        ear = (dsum * weights).sum(axis=1)
        tab = p.ant_tab[series]
        level[:, ANTECEDENT] = np.where(on, level_of(ear, tab), 0)
        value[:, ANTECEDENT] = ear
        thr[:, ANTECEDENT] = threshold_at(level[:, ANTECEDENT], tab)
    return Rain(level, value, thr, id_dur, peak_ts)


def totals_now(win: Windows, sid: np.ndarray) -> np.ndarray:
    """[n, NW] rolling totals ending at each series' latest reading (mm)."""
    last = np.floor(win.last_ts[sid] / RAIN_BIN_S).astype(np.int64)
    width = int(WIN_BINS.max())
    rows = np.arange(len(sid))
    return totals_at(win, sid, last, width, rows, np.full(len(sid), width - 1))
