"""Trend family: velocity, the improved tangent angle (Xu Qiang et al. 2009) and the inverse
velocity method (Fukuzono 1985; Carlà et al. 2017 on smoothing and gating).

Tangent angle: with v the constant-velocity-stage rate, T(i) = S(i)/v turns displacement into
time, and α = arctan(ΔT/Δt) = arctan(v_now/v). v comes from the rule, or from a baseline window
of daily bins that ends `baseline_lag_days` ago (so the current acceleration does not hide in
its own baseline).

Inverse velocity: over the accelerating phase 1/v falls linearly to zero at failure (Voight's
α = 2). Velocities come from block means of hourly bins (smoothing as Carlà et al. advise),
the fit is ordinary least squares of 1/v on t, and it counts only when 1/v is falling, the fit
is good (r²) and the slope is moving faster than `v_min`; the root of the fit is the predicted
failure time, its standard error from the fit's covariance."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...model.slots import TREND_SLOTS, Slot
from ..buffers import DAY_S, Windows
from ..params import Params
from .stats import level_of, linfit, rowmedian, threshold_at
from .threshold import SIGNIFICANCE, rate_per_day, windowed_rate

# result columns, in the order of TREND_SLOTS
TANGENT, INVVEL = Slot.TANGENT - TREND_SLOTS.start, Slot.INVERSE_VELOCITY - TREND_SLOTS.start
STEPS = np.arange(1, 5, dtype=np.int8)


@dataclass
class Trend:
    level: np.ndarray  # [n, 2] int8: tangent, inverse velocity
    value: np.ndarray  # [n, 2]: alpha (deg), remaining time (s)
    threshold: np.ndarray  # [n, 2]: alpha threshold (deg), horizon (s)
    v_now: np.ndarray  # units/day
    accel: np.ndarray  # units/day², NaN for a still slope
    v_ref: np.ndarray  # units/day used for the angle
    tf: np.ndarray  # predicted failure time (epoch s), NaN when no valid fit
    r2: np.ndarray
    sigma: np.ndarray  # standard error of tf (s)
    strong: np.ndarray  # bool: a good fit inside the orange horizon

    @staticmethod
    def joined(n: int, parts: tuple[tuple[np.ndarray, Trend], ...]) -> Trend:
        """One result for n rows from parts judged separately (rows, result)."""
        first = parts[0][1]
        out = {}
        for name, a in vars(first).items():
            full = np.zeros((n, *a.shape[1:]), a.dtype)
            for rows, part in parts:
                full[rows] = getattr(part, name)
            out[name] = full
        return Trend(**out)


def evaluate(win: Windows, p: Params, sid: np.ndarray, sigma: np.ndarray, v_ref_state: np.ndarray,
             prev_level: np.ndarray, rate: tuple[np.ndarray, np.ndarray] | None = None) -> Trend:
    """v_ref_state: per-series constant-velocity rate estimated so far (updated in place while
    the slope is steady, frozen once it accelerates so the acceleration cannot become its own
    reference); prev_level: each row's tangent level at the previous evaluation; rate: the
    threshold family's (rate, standard error), reused where the two windows are the same."""
    n = len(sid)
    level = np.zeros((n, 2), np.int8)
    value = np.full((n, 2), np.nan)
    thr = np.full((n, 2), np.nan)
    t_now = win.last_ts[sid]

    # --- improved tangent angle ----------------------------------------------------------
    same = rate is not None and bool((p.vel_win_h[sid] == p.rate_win_h[sid]).all())
    if same:
        v_now, v_se = rate
    else:
        v_now, v_se, _ = windowed_rate(win, sid, p.vel_win_h[sid], sigma)
    v_ref = p.v_ref[sid].copy()
    # a still slope has no angle to judge; nor has a velocity the noise could explain
    moving = (np.abs(v_now) >= p.tan_v_min[sid]) & (np.abs(v_now) >= SIGNIFICANCE * v_se)
    need = np.isnan(v_ref) & p.tan_on[sid] & moving
    if need.any():
        rows = np.flatnonzero(need)
        s = sid[rows]
        lag, base = p.lag_days[s], p.base_days[s]
        nd = int(np.ceil((lag + base).max())) + 1
        end = np.floor(t_now[rows] / DAY_S).astype(np.int64)
        dsum, dcnt, dt = win.bins("day", s, end, nd)
        age_d = np.arange(nd - 1, -1, -1)[None, :]
        keep = (age_d >= lag[:, None]) & (age_d < (lag + base)[:, None]) & (dcnt > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            dx = dsum / dcnt
        est, _, _ = rate_per_day(dt, dx, keep, 7)
        # a baseline needs half its window in data, or it is no baseline (a new installation)
        est[keep.sum(axis=1) < np.maximum(3, base / 2)] = np.nan
        state = v_ref_state[s]
        steady = (prev_level[rows] < 2) | np.isnan(state)
        state = np.where(steady & ~np.isnan(est), est, state)
        v_ref_state[s] = state
        v_ref[rows] = state
    # acceleration of a moving slope: the recent half-window's rate against the whole window's
    # (for a steadily changing velocity they sit W/4 apart in time)
    accel = np.full(n, np.nan)
    if moving.any():
        rows = np.flatnonzero(moving)
        half = p.vel_win_h[sid[rows]] / 2
        v_half, _, _ = windowed_rate(win, sid[rows], half, sigma[rows])
        accel[rows] = (v_half - v_now[rows]) / (p.vel_win_h[sid[rows]] / 4 / 24)
    tab, v_eff = tangent_angle(p, sid, v_now, v_ref, moving, level, value)
    thr[:, TANGENT] = threshold_at(level[:, TANGENT], tab)

    # --- inverse velocity ----------------------------------------------------------------
    tf = np.full(n, np.nan)
    r2 = np.full(n, np.nan)
    sigma = np.full(n, np.nan)
    # only a slope moving measurably (beyond the noise, and at half of v_min over the velocity
    # window, which lags an acceleration) can be heading for failure; the rest skip the fit
    on = p.iv_on[sid] & (np.abs(v_now) >= 0.5 * p.iv_v_min[sid]) & (np.abs(v_now) >= SIGNIFICANCE * v_se)
    combos = sorted(set(zip(p.iv_win_h[sid][on].tolist(), p.iv_smooth_h[sid][on].tolist())))
    for win_h, smooth_h in combos:
        rows = np.flatnonzero(on & (p.iv_win_h[sid] == win_h) & (p.iv_smooth_h[sid] == smooth_h))
        s = sid[rows]
        nb = int(min(win.mid_sum.shape[1], win_h + smooth_h + 1))
        ssum, cnt, tm = win.bins("mid", s, win.mid_bin(s, t_now[rows]), nb)
        with np.errstate(invalid="ignore", divide="ignore"):
            xm = np.where(cnt > 0, ssum / cnt, np.nan)
        f, fr2, sg = _fit(tm, xm, cnt, win_h, smooth_h, p, s)
        # within half a smoothing span of the forecast failure the blocks are too coarse to
        # follow: refit the recent days with a quarter of the span (velocities are high then,
        # and with accelerated sampling the data dense)
        near = np.flatnonzero(f - t_now[rows] < smooth_h / 2 * 3600)
        if len(near) and smooth_h >= 8:
            short = min(win_h, 4 * smooth_h)
            k = tm.shape[1] - int(short + smooth_h / 4)
            f2, r22, sg2 = _fit(tm[near, k:], xm[near, k:], cnt[near, k:], short, smooth_h / 4, p, s[near])
            # only dense (accelerated) sampling, two readings an hour or more, can carry it
            dense = cnt[near, -24:].sum(axis=1) >= 48
            ok2 = ~np.isnan(f2) & dense
            f[near[ok2]], fr2[near[ok2]], sg[near[ok2]] = f2[ok2], r22[ok2], sg2[ok2]
        tf[rows], r2[rows], sigma[rows] = f, fr2, sg
    # tangent red stands only with a valid inverse-velocity fit (rule red_needs_forecast)
    unconfirmed = (level[:, TANGENT] == 4) & p.tan_red_iv[sid] & np.isnan(tf)
    level[unconfirmed, TANGENT] = 3
    thr[unconfirmed, TANGENT] = tab[unconfirmed, 2]
    remaining = tf - t_now
    htab = p.horizon_tab[sid]
    with np.errstate(invalid="ignore"):
        hit = remaining[:, None] <= htab
    level[:, INVVEL] = (hit * STEPS).max(axis=1)
    value[:, INVVEL] = remaining
    thr[:, INVVEL] = threshold_at(level[:, INVVEL], htab)
    strong = (level[:, INVVEL] >= 3) & (r2 >= p.iv_strong_r2[sid])
    return Trend(level, value, thr, v_now, accel, v_eff, tf, r2, sigma, strong)


def tangent_angle(p: Params, sid: np.ndarray, v_now: np.ndarray, v_ref: np.ndarray, moving: np.ndarray,
                  level: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """α = arctan(v_now / v) into value[:, TANGENT] and its level into level[:, TANGENT];
    returns the rows' angle thresholds and the v used."""
    known = ~np.isnan(v_ref)  # no baseline yet (a new installation): no angle to judge
    v_eff = np.fmax(np.abs(v_ref), p.v_ref_min[sid])
    # along the slope's established direction; a reversal (or noise) is no acceleration
    along = np.where(np.abs(v_ref) >= p.v_ref_min[sid], v_now * np.sign(v_ref), np.abs(v_now))
    with np.errstate(invalid="ignore"):
        alpha = np.degrees(np.arctan2(along, v_eff))
    tab = p.alpha_tab[sid]
    value[:, TANGENT] = alpha
    level[:, TANGENT] = np.where(p.tan_on[sid] & moving & known, level_of(alpha, tab), 0)
    return tab, v_eff


def _fit(t_mid: np.ndarray, x_mid: np.ndarray, n_mid: np.ndarray, win_h: float, smooth_h: float, p: Params,
         s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse-velocity fit of each row: failure time, r² and its standard error (NaN where the
    fit does not count: too few points, 1/v not falling, poor fit, or too slow)."""
    # blocks of a quarter of the smoothing span (means over readings, not bins); velocity =
    # difference across 4 blocks
    step = max(1, int(round(smooth_h / 4)))
    nb = min(int(win_h + smooth_h), t_mid.shape[1])
    nblocks = max(6, nb // step)
    cols = slice(t_mid.shape[1] - nblocks * step, None)
    cnt = np.where(np.isnan(x_mid[:, cols]), 0.0, n_mid[:, cols]).reshape(len(s), nblocks, step)
    nblk = cnt.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        bx = (np.nan_to_num(x_mid[:, cols]).reshape(cnt.shape) * cnt).sum(axis=2) / nblk
        bt = (np.nan_to_num(t_mid[:, cols]).reshape(cnt.shape) * cnt).sum(axis=2) / nblk
    with np.errstate(invalid="ignore", divide="ignore"):
        v = (bx[:, 4:] - bx[:, :-4]) / (bt[:, 4:] - bt[:, :-4])
        tv = 0.5 * (bt[:, 4:] + bt[:, :-4])
        vd = v * np.sign(rowmedian(v))[:, None]
        inv = np.where(vd > 0, 1.0 / vd, np.nan)
    # var(1/v) grows as 1/v⁴: weight by v⁴ so slow, noisy early velocities do not drown the
    # fast, well-measured ones (error propagation; Carlà et al. 2017 smooth for the same reason)
    # ...and by how many readings the two block means hold (accelerated sampling counts more)
    with np.errstate(invalid="ignore", divide="ignore"):
        wts = np.where(vd > 0, vd, 0.0) ** 4 / (1.0 / nblk[:, 4:] + 1.0 / nblk[:, :-4])
    a, b, r2, npts, var_a, var_b, cov = linfit(tv, inv, wts)
    # A mean velocity over [t1, t2] dates to its midpoint only while failure is far off. Under
    # alpha = 2 it equals the velocity at tf - L/ln(1 + L/tau) (tau = tf - t2): re-date each
    # velocity with the current forecast and refit, which removes the lag near failure.
    t2, span = bt[:, 4:], bt[:, 4:] - bt[:, :-4]
    for _ in range(2):
        with np.errstate(invalid="ignore", divide="ignore"):
            f = -a / b
            tau = f[:, None] - t2
            t_eff = np.where((b[:, None] < 0) & (tau > 0), f[:, None] - span / np.log1p(span / tau), tv)
        a, b, r2, npts, var_a, var_b, cov = linfit(t_eff, inv, wts)
    okv = ~np.isnan(vd)
    last = vd[np.arange(len(s)), np.where(okv.any(axis=1), vd.shape[1] - 1 - np.argmax(okv[:, ::-1], axis=1), 0)]
    valid = (npts >= p.iv_min_pts[s]) & (b < 0) & (r2 >= p.iv_min_r2[s]) & (last * DAY_S >= p.iv_v_min[s])
    with np.errstate(invalid="ignore", divide="ignore"):
        f = -a / b
        sg = np.sqrt(np.clip((var_a + f * f * var_b + 2 * f * cov) / (b * b), 0, None))
    nan = np.full(len(s), np.nan)
    return np.where(valid, f, nan), np.where(valid, r2, nan), np.where(valid, sg, nan)
