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

from ..core.buffers import DAY_S, Windows
from ..core.params import Params
from .stats import block_means, level_of, linfit, rowmedian, threshold_at
from .threshold import rate_per_day

TANGENT, INVVEL = 0, 1
_STEPS = np.arange(1, 5, dtype=np.int8)


@dataclass
class Trend:
    level: np.ndarray  # [n, 2] int8: tangent, inverse velocity
    value: np.ndarray  # [n, 2]: alpha (deg), remaining time (s)
    threshold: np.ndarray  # [n, 2]: alpha threshold (deg), horizon (s)
    v_now: np.ndarray  # units/day
    v_ref: np.ndarray  # units/day used for the angle
    tf: np.ndarray  # predicted failure time (epoch s), NaN when no valid fit
    r2: np.ndarray
    sigma: np.ndarray  # standard error of tf (s)
    strong: np.ndarray  # bool: a good fit inside the orange horizon


def evaluate(win: Windows, p: Params, sid: np.ndarray, t_mid: np.ndarray, x_mid: np.ndarray,
             age_h: np.ndarray) -> Trend:
    n = len(sid)
    level = np.zeros((n, 2), np.int8)
    value = np.full((n, 2), np.nan)
    thr = np.full((n, 2), np.nan)
    t_now = win.last_ts[sid]

    # --- improved tangent angle ----------------------------------------------------------
    v_now, _ = rate_per_day(t_mid, x_mid, age_h < p.vel_win_h[sid][:, None], 6)
    v_ref = p.v_ref[sid].copy()
    need = np.isnan(v_ref) & p.tan_on[sid]
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
        est, _ = rate_per_day(dt, dx, keep, 7)
        v_ref[rows] = est
    v_eff = np.fmax(np.abs(v_ref), p.v_ref_min[sid])
    alpha = np.degrees(np.arctan(np.abs(v_now) / v_eff))
    tab = p.alpha_tab[sid]
    value[:, TANGENT] = alpha
    level[:, TANGENT] = np.where(p.tan_on[sid] & (np.abs(v_now) >= p.tan_v_min[sid]), level_of(alpha, tab), 0)
    thr[:, TANGENT] = threshold_at(level[:, TANGENT], tab)

    # --- inverse velocity ----------------------------------------------------------------
    tf = np.full(n, np.nan)
    r2 = np.full(n, np.nan)
    sigma = np.full(n, np.nan)
    on = p.iv_on[sid]
    combos = sorted(set(zip(p.iv_win_h[sid][on].tolist(), p.iv_smooth_h[sid][on].tolist())))
    for win_h, smooth_h in combos:
        rows = np.flatnonzero(on & (p.iv_win_h[sid] == win_h) & (p.iv_smooth_h[sid] == smooth_h))
        step = max(1, int(round(smooth_h / 2)))
        nb = min(int(win_h + smooth_h), t_mid.shape[1])
        nblocks = max(3, nb // step)
        bt, bx = block_means(t_mid[rows, -nblocks * step:], x_mid[rows, -nblocks * step:], nblocks)
        dtb = bt[:, 2:] - bt[:, :-2]
        with np.errstate(invalid="ignore", divide="ignore"):
            v = (bx[:, 2:] - bx[:, :-2]) / dtb
        tv = 0.5 * (bt[:, 2:] + bt[:, :-2])
        direction = np.sign(rowmedian(v))
        vd = v * direction[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            inv = np.where(vd > 0, 1.0 / vd, np.nan)
        a, b, fr2, npts, var_a, var_b, cov = linfit(tv, inv)
        okv = ~np.isnan(vd)
        last = vd[np.arange(len(rows)), np.where(okv.any(axis=1), vd.shape[1] - 1 - np.argmax(okv[:, ::-1], axis=1), 0)]
        s = sid[rows]
        valid = (npts >= p.iv_min_pts[s]) & (b < 0) & (fr2 >= p.iv_min_r2[s]) & (last * DAY_S >= p.iv_v_min[s])
        with np.errstate(invalid="ignore", divide="ignore"):
            f = -a / b
            sg = np.sqrt(np.clip((var_a + f * f * var_b + 2 * f * cov) / (b * b), 0, None))
        tf[rows] = np.where(valid, f, np.nan)
        r2[rows] = np.where(valid, fr2, np.nan)
        sigma[rows] = np.where(valid, sg, np.nan)
    remaining = tf - t_now
    htab = p.horizon_tab[sid]
    with np.errstate(invalid="ignore"):
        hit = remaining[:, None] <= htab
    level[:, INVVEL] = (hit * _STEPS).max(axis=1)
    value[:, INVVEL] = remaining
    thr[:, INVVEL] = threshold_at(level[:, INVVEL], htab)
    strong = (level[:, INVVEL] >= 3) & (r2 >= p.iv_strong_r2[sid])
    return Trend(level, value, thr, v_now, v_eff, tf, r2, sigma, strong)
