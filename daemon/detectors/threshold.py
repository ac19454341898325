"""Threshold family: absolute value, change from a baseline, robust rate (Theil-Sen, units/day).

All three judge magnitudes (|value|, |change|, |rate|): a slope moves whichever way its
instrument is mounted. Spikes and out-of-range readings are already excluded from the windows
(quality runs first), and GNSS/crack reference jumps are already removed."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.buffers import DAY_S, Windows
from ..core.params import Params
from .stats import block_means, level_of, rowmedian, theil_sen, threshold_at

MAD_SCALE = 1.4826

ABS, CHANGE, RATE = 0, 1, 2
RATE_BLOCKS = 12


@dataclass
class Judged:
    """Per row: level, the measured value and the threshold it is compared with, per test."""

    level: np.ndarray  # [n, tests] int8
    value: np.ndarray  # [n, tests]
    threshold: np.ndarray  # [n, tests]


def rate_per_day(t: np.ndarray, x: np.ndarray, keep: np.ndarray, blocks: int,
                 with_se: bool = False) -> tuple[np.ndarray, ...]:
    """Theil-Sen slope (units/day) of the kept bins, how many bins had data, and (with_se)
    the slope's standard error from the robust scatter of the block means about the line.
    Blocks span only the columns some row keeps, so a short window is not diluted."""
    used = np.flatnonzero(keep.any(axis=0))
    if len(used) == 0:
        nan = np.full(len(t), np.nan)
        return (nan, np.zeros(len(t), int), nan) if with_se else (nan, np.zeros(len(t), int))
    sl = slice(used[0], used[-1] + 1)
    xs = np.where(keep[:, sl], x[:, sl], np.nan)
    ts = np.where(keep[:, sl], t[:, sl], np.nan)
    bt, bx = block_means(ts, xs, blocks)
    slope, nb = theil_sen(bt, bx)
    rate = np.where(nb >= 3, slope * DAY_S, np.nan)
    npts = np.sum(~np.isnan(xs), axis=1)
    if not with_se:
        return rate, npts
    resid = bx - slope[:, None] * bt
    resid -= rowmedian(resid)[:, None]
    sigma = MAD_SCALE * rowmedian(np.abs(resid))
    with np.errstate(invalid="ignore", divide="ignore"):
        has = ~np.isnan(bx)
        tm = np.where(has, bt, 0.0).sum(axis=1) / has.sum(axis=1)
        sxx = np.where(has, (bt - tm[:, None]) ** 2, 0.0).sum(axis=1)
        se = sigma / np.sqrt(sxx) * DAY_S
    return rate, npts, se


def evaluate(win: Windows, p: Params, sid: np.ndarray, t_mid: np.ndarray, x_mid: np.ndarray,
             age_h: np.ndarray) -> Judged:
    """t_mid/x_mid: mean time and mean value of the series' hourly bins, oldest first;
    age_h: each bin's age in hours relative to the current bin (0 = current)."""
    n = len(sid)
    level = np.zeros((n, 3), np.int8)
    value = np.full((n, 3), np.nan)
    thr = np.full((n, 3), np.nan)

    cur = win.last_v[sid]
    tab = p.abs_tab[sid]
    value[:, ABS] = np.abs(cur)
    level[:, ABS] = level_of(value[:, ABS], tab)
    thr[:, ABS] = threshold_at(level[:, ABS], tab)

    # change: the latest value against the first data of the window (daily bins, up to 30 days)
    days = np.ceil(p.change_win_h[sid] / 24.0).astype(int)
    nd = int(days.max()) + 1
    end = np.floor(win.last_ts[sid] / DAY_S).astype(np.int64)
    dsum, dcnt, _ = win.bins("day", sid, end, nd)
    in_win = np.arange(nd)[None, :] >= (nd - 1 - days)[:, None]
    has = (dcnt > 0) & in_win
    first = np.argmax(has, axis=1)
    rows = np.arange(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        base = dsum[rows, first] / dcnt[rows, first]
    base[~has.any(axis=1)] = np.nan
    tab = p.change_tab[sid]
    value[:, CHANGE] = np.abs(cur - base)
    level[:, CHANGE] = level_of(value[:, CHANGE], tab)
    thr[:, CHANGE] = threshold_at(level[:, CHANGE], tab)

    rate, npts = rate_per_day(t_mid, x_mid, age_h < p.rate_win_h[sid][:, None], RATE_BLOCKS)
    rate[npts < p.rate_min[sid]] = np.nan
    tab = p.rate_tab[sid]
    value[:, RATE] = np.abs(rate)
    level[:, RATE] = level_of(value[:, RATE], tab)
    thr[:, RATE] = threshold_at(level[:, RATE], tab)

    level[~p.thr_on[sid]] = 0
    return Judged(level, value, thr)
