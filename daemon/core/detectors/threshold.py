"""Threshold family: absolute value, change from a baseline, robust rate (Theil-Sen, units/day).

All three judge magnitudes (|value|, |change|, |rate|): a slope moves whichever way its
instrument is mounted. Spikes and out-of-range readings are already excluded from the windows
(quality runs first), and GNSS/crack reference jumps are already removed."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...model.slots import THRESHOLD_SLOTS, Slot
from ..buffers import DAY_S, Windows
from ..params import Params
from .stats import (
    block_means,
    level_of,
    row_count,
    rowmedian,
    theil_sen,
    threshold_at,
)

SIGNIFICANCE = 5.0  # standard errors a rate must stand out from the noise (many windows a day)

# result columns, in the order of THRESHOLD_SLOTS
ABS, CHANGE, RATE = (s - THRESHOLD_SLOTS.start for s in (Slot.ABSOLUTE, Slot.CHANGE, Slot.RATE))
RATE_BLOCKS = 12
CHANGE_RECENT = 3  # readings whose median is "now" for the change test


@dataclass
class Judged:
    """Per row: level, the measured value and the threshold it is compared with, per test."""

    level: np.ndarray  # [n, tests] int8
    value: np.ndarray  # [n, tests]
    threshold: np.ndarray  # [n, tests]
    rate: tuple[np.ndarray, np.ndarray]  # signed rate and its standard error, before the tests
    readings: np.ndarray  # readings in the rate window


def rate_per_day(t: np.ndarray, x: np.ndarray, keep: np.ndarray, blocks: int, n: np.ndarray | None = None,
                 sigma: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Theil-Sen slope (units/day) of the kept bins, how many bins had data, and the slope's
    standard error (units/day) from the per-reading noise `sigma` and the reading counts `n`
    (NaN without them). Blocks span only the columns some row keeps."""
    used = np.flatnonzero(keep.any(axis=0))
    nan = np.full(len(t), np.nan)
    if len(used) == 0:
        return nan, np.zeros(len(t), int), nan
    sl = slice(used[0], used[-1] + 1)
    k = keep[:, sl] & ~np.isnan(x[:, sl])
    xs = np.where(k, x[:, sl], np.nan)
    ts = np.where(k, t[:, sl], np.nan)
    bt, bx = block_means(ts, xs, blocks)
    slope, nb = theil_sen(bt, bx)
    # data must fill half the window's blocks: two days are no weekly rate
    rate = np.where(nb >= max(3, bx.shape[1] // 2), slope * DAY_S, np.nan)
    npts = k.sum(axis=1)
    if n is None or sigma is None:
        return rate, npts, nan
    # least-squares slope error for readings spread over the span (Theil-Sen's is ~10 % more)
    readings = np.where(k, n[:, sl], 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        span = np.fmax(np.nanmax(np.where(k, ts, -np.inf), axis=1) - np.nanmin(np.where(k, ts, np.inf), axis=1), 1.0)
        se = sigma * np.sqrt(12.0 / readings) / span * DAY_S
    return rate, npts, se


def windowed_rate(win: Windows, sid: np.ndarray, window_h: np.ndarray, sigma: np.ndarray,
                  blocks: int = RATE_BLOCKS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Theil-Sen rate (units/day) over each row's window of hourly bins, from `blocks` block
    means; its standard error from the per-reading noise; and the readings in the window.
    A rate needs data in half the blocks (two days are no weekly rate)."""
    if len(sid) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    groups = [np.flatnonzero(window_h == w) for w in sorted(set(window_h.tolist()))]
    # rows sharing a window share one gather; then all rows' blocks are judged together
    blocks_of = [win.mid_blocks(sid[rows], int(np.ceil(window_h[rows[0]])), blocks) for rows in groups]
    if len(groups) == 1:
        rows, (bt, bx, bn) = groups[0], blocks_of[0]
    else:
        rows = np.concatenate(groups)
        bt, bx, bn = (np.concatenate(parts) for parts in zip(*blocks_of))
    # a block with far fewer readings than its row's typical block (the ragged edge where
    # data begins, a gap) carries one or two readings' noise at full Theil-Sen weight: out
    thin = bn < 0.5 * _median_nonzero(bn)[:, None]
    bt[thin], bx[thin], bn[thin] = np.nan, np.nan, 0.0
    slope, nb = theil_sen(bt, bx)
    n = bn.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        # least-squares slope error of the block means weighted by their readings
        # (Theil-Sen's is ~10 % more): sigma² / Σ n_b (t_b - t̄)²
        tm = np.nansum(bn * bt, axis=1) / n
        sxx = np.nansum(bn * (bt - tm[:, None]) ** 2, axis=1)
        se_rows = sigma[rows] / np.sqrt(sxx) * DAY_S
    rate, se, readings = np.full(len(sid), np.nan), np.full(len(sid), np.nan), np.zeros(len(sid))
    rate[rows] = np.where(nb >= max(3, blocks // 2), slope * DAY_S, np.nan)
    se[rows] = se_rows
    readings[rows] = n
    return rate, se, readings


def _median_nonzero(counts: np.ndarray) -> np.ndarray:
    """(Lower) median of each row's non-zero counts, 0 for a row without any: empty slots sort
    last as +inf, and the median is read at the middle of the filled ones."""
    s = np.sort(np.where(counts > 0, counts, np.inf), axis=1)
    k = row_count(counts > 0)
    m = s[np.arange(len(s)), np.maximum(k - 1, 0) // 2]
    return np.where(k > 0, m, 0.0)


def evaluate(win: Windows, p: Params, sid: np.ndarray, sigma: np.ndarray) -> Judged:
    """sigma: each series' per-reading noise (the core keeps it from the readings it judges)."""
    n = len(sid)
    level = np.zeros((n, 3), np.int8)
    value = np.full((n, 3), np.nan)
    thr = np.full((n, 3), np.nan)

    cur = win.last_v[sid]
    tab = p.abs_tab[sid]
    value[:, ABS] = np.abs(cur)
    level[:, ABS] = level_of(value[:, ABS], tab)
    thr[:, ABS] = threshold_at(level[:, ABS], tab)

    # change: where the series stands now (the median of its last three usable readings: one
    # reading's scatter or a spike is no change) against the mean of the first full day of the
    # window (daily bins, up to 30 days; a ragged first day of a few readings is no baseline)
    _, recent, _ = win.raw_last(sid, CHANGE_RECENT)
    # the median of three as their sum less the extremes (equal to it up to rounding in the last
    # bit, which rowmedian's exact median does not have); a gap among them: the slow way
    r0, r1, r2 = recent.T  # (columns: per-row reductions over three cells pay per row)
    now = (r0 + r1 + r2) - np.minimum(np.minimum(r0, r1), r2) - np.maximum(np.maximum(r0, r1), r2)
    gaps = np.isnan(now)
    if gaps.any():
        now[gaps] = rowmedian(recent[gaps])
    days = np.ceil(p.change_win_h[sid] / 24.0).astype(int)
    nd = int(days.max()) + 1
    end = np.floor(win.last_ts[sid] / DAY_S).astype(np.int64)
    dsum, dcnt, _ = win.bins("day", sid, end, nd, times=False)
    in_win = np.arange(nd)[None, :] >= (nd - 1 - days)[:, None]
    has = (dcnt > 0) & in_win
    has &= dcnt >= 0.5 * _median_nonzero(np.where(in_win, dcnt, 0.0))[:, None]
    first = np.argmax(has, axis=1)
    rows = np.arange(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        base = dsum[rows, first] / dcnt[rows, first]
    base[~has[rows, first]] = np.nan  # argmax of a row without any is its first column
    tab = p.change_tab[sid]
    value[:, CHANGE] = np.abs(now - base)
    level[:, CHANGE] = level_of(value[:, CHANGE], tab)
    thr[:, CHANGE] = threshold_at(level[:, CHANGE], tab)

    rate, se, npts = windowed_rate(win, sid, p.rate_win_h[sid], sigma)
    judged = Judged(level, value, thr, (rate, se), npts)
    judge_rate(judged, np.arange(n), p, sid, rate, se, npts)
    level[~p.thr_on[sid], :RATE] = 0
    return judged


def judge_rate(j: Judged, rows: np.ndarray, p: Params, sid: np.ndarray, rate: np.ndarray, se: np.ndarray,
               npts: np.ndarray) -> None:
    """Judge the rows' rate (units/day, with its standard error and readings) into `j`; j.rate
    keeps the rate as measured, for the trend family."""
    j.rate[0][rows], j.rate[1][rows] = rate, se
    # too few points, or a rate the scatter could produce, is no rate: a network judges
    # thousands of windows a day, so "significant" must mean many standard errors
    with np.errstate(invalid="ignore"):
        judged = np.where((npts < p.rate_min[sid]) | ~(np.abs(rate) >= SIGNIFICANCE * se), np.nan, rate)
    tab = p.rate_tab[sid]
    j.value[rows, RATE] = np.abs(judged)
    lv = level_of(j.value[rows, RATE], tab)
    j.threshold[rows, RATE] = threshold_at(lv, tab)
    j.level[rows, RATE] = np.where(p.thr_on[sid], lv, 0)
