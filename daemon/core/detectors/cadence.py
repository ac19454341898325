"""Judgement on a series' own cadence: rate, tangent angle and failure forecast for series whose
configured windows (hours, made for 2-hourly automatic stations) hold too few of their readings:
daily survey prisms, manual crack gauges, daily GNSS solutions, weekly readings, 11-day satellite
radar, irregular manual markers.

Such a series is judged on windows of readings instead of hours: each window is the configured
hours or the last MIN_READINGS readings, whichever holds more, with the span they cover. The
noise model stays the series' own (the core's per-reading noise from successive differences),
so a rate counts only when it stands SIGNIFICANCE standard errors out of that noise, as on dense
data.

The failure forecast fits the displacement itself, not differenced velocities (which square the
noise of daily readings): Voight's relation with α = 2 (Fukuzono 1985; Voight 1989), whose
inverse velocity falls linearly to zero at failure t_f, integrates to

    x(t) = a − b·ln(t_f − t),    b > 0 in the direction of movement.

For each candidate t_f on a logarithmic grid the fit is linear in (a, b); the profile of the
residual sum of squares over t_f gives the best t_f and an honest interval: every t_f whose fit
is within 4σ² of the best (a likelihood-ratio interval of about 95 % with the series' own
noise σ, widened when the residuals exceed it). The forecast counts only when

* the acceleration is significant: the fit beats a straight line (steady creep) by at least
  SIGNIFICANCE² σ², as a rate must stand SIGNIFICANCE standard errors out of the noise;
* its interval is bounded: a fit whose interval reaches the end of the grid has not shown that
  the slope is heading for failure at all (a surge that may as well decelerate);
* r², the number of readings and the velocity pass the rule's min_r2, min_points and v_min.

Red, which means evacuate now, needs more than a forecast inside the red horizon: the whole
interval must lie inside it, and a tangent angle at red needs a forecast inside the orange
horizon (a fast surge with a forecast weeks away is no imminent failure). See
alert_rules/README.md for the choice and its sources (Carlà et al. 2017, Intrieri et al. 2019)."""
from __future__ import annotations

import numpy as np

from ..buffers import DAY_S, Windows
from ..params import Params
from .stats import rowmedian, theil_sen, threshold_at
from .threshold import SIGNIFICANCE
from .trend import INVVEL, STEPS, TANGENT, Trend, tangent_angle

MIN_READINGS = 8  # a rate or a velocity needs this many readings: windows grow to hold them
FIT_READINGS = 45  # the displacement fit looks back this many readings (or the IV window if more)
VIEW = 64  # readings read per series: enough for every window above
CADENCE_VIEW = 17  # readings whose median interval is a series' cadence
GRID = np.exp(np.linspace(np.log(600.0), np.log(1000 * DAY_S), 160))  # t_f - now candidates (s)
INTERVAL_SSE = 4.0  # the forecast interval: fits within this many σ² of the best (~95 %)
V_REF_MEMORY = 60 * DAY_S  # how long the learnt constant-velocity rate remembers


def cadence(win: Windows, sid: np.ndarray) -> np.ndarray:
    """Each series' typical interval between readings (s): the median of its last 16."""
    ts, _, _ = win.raw_last(sid, CADENCE_VIEW)
    return rowmedian(np.diff(ts, axis=1))


def sparse(win: Windows, p: Params, sid: np.ndarray, rate_readings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose rate or velocity window, in hours, holds fewer than MIN_READINGS readings at
    the series' cadence (they are judged here, on windows of readings), and the rows' cadence
    (s; NaN where not needed). rate_readings: the readings the rate window holds now; where
    even the shorter window clearly holds enough, the cadence is not looked up (the usual case)."""
    hours = np.fmin(p.rate_win_h[sid], np.where(p.tan_on[sid], p.vel_win_h[sid], np.inf))
    interval = np.full(len(sid), np.nan)
    maybe = np.flatnonzero(~(rate_readings * (hours / p.rate_win_h[sid]) >= 2 * MIN_READINGS))
    if len(maybe):
        interval[maybe] = cadence(win, sid[maybe])
    with np.errstate(invalid="ignore"):
        return hours * 3600.0 < MIN_READINGS * interval, interval


def _window(t: np.ndarray, ok: np.ndarray, t_end: np.ndarray, hours: np.ndarray, n_min: int) -> np.ndarray:
    """Readings (ok cells) up to t_end: those within `hours` of it, or the last n_min if that
    holds more. t, ok: [rows, VIEW] oldest first."""
    upto = ok & (t <= t_end[:, None])
    rank = np.cumsum(upto[:, ::-1], axis=1)[:, ::-1]  # 1 for the latest usable reading, 2 before …
    with np.errstate(invalid="ignore"):
        recent = t >= (t_end - hours * 3600.0)[:, None]
    return upto & (recent | (rank <= n_min))


def _rate(t: np.ndarray, x: np.ndarray, keep: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, ...]:
    """Theil-Sen rate (units/day) of the kept readings, its standard error from the noise σ
    (least squares: σ / √Σ(t - t̄)²), the readings used and the first reading's time."""
    tk, xk = np.where(keep, t, np.nan), np.where(keep, x, np.nan)
    slope, n = theil_sen(tk, xk)
    cnt = keep.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tm = np.where(keep, t, 0.0).sum(axis=1) / cnt
        sxx = np.where(keep, (t - tm[:, None]) ** 2, 0.0).sum(axis=1)
        se = sigma / np.sqrt(sxx) * DAY_S
    rate = np.where(n >= 3, slope * DAY_S, np.nan)
    first = np.where(cnt > 0, np.where(keep, t, np.inf).min(axis=1), np.nan)
    return rate, se, n, first


def voight_fit(t: np.ndarray, x: np.ndarray, keep: np.ndarray, sigma: np.ndarray,
               t_now: np.ndarray) -> tuple[np.ndarray, ...]:
    """x = a − b·ln(t_f − t) by profile least squares over GRID (rows' x already in the
    direction of movement). Returns t_f, its interval (lo, hi), r², b (units), the gain over
    a straight line in σ² (the acceleration's significance) and whether the interval is bounded."""
    rows = len(t)
    tk = np.where(keep, t, np.nan)
    n = keep.sum(axis=1).astype(float)
    tau = t_now[:, None, None] + GRID[None, :, None] - tk[:, None, :]  # [rows, grid, readings]
    with np.errstate(invalid="ignore", divide="ignore"):
        L = np.log(tau)
        xk = np.where(keep, x, np.nan)[:, None, :]
        Lm = np.nanmean(L, axis=2, keepdims=True)
        xm = np.nanmean(xk, axis=2, keepdims=True)
        dL, dx = np.where(keep[:, None, :], L - Lm, 0.0), np.where(keep[:, None, :], xk - xm, 0.0)
        sll = (dL * dL).sum(axis=2)
        slx = (dL * dx).sum(axis=2)
        sst = (dx * dx).sum(axis=2)[:, 0]
        slope = slx / sll  # = −b
        sse = np.clip(sst[:, None] - slope * slx, 0.0, None)
        # the straight line (steady creep) on the same readings
        ts = np.where(keep, t - t_now[:, None], np.nan)
        tmean = np.nanmean(ts, axis=1, keepdims=True)
        dt = np.where(keep, ts - tmean, 0.0)
        dxl = dx[:, 0, :]
        sse_line = np.clip(sst - (dt * dxl).sum(axis=1) ** 2 / (dt * dt).sum(axis=1), 0.0, None)
    sse = np.where(slope < 0, sse, np.inf)  # b > 0: displacement grows towards t_f
    best = np.argmin(sse, axis=1)
    r = np.arange(rows)
    sse_min = sse[r, best]
    with np.errstate(invalid="ignore", divide="ignore"):
        # the series' own noise, widened where the model does not explain the residuals
        s2 = np.fmax(sigma ** 2, sse_min / np.maximum(n - 3, 1))
        inside = sse <= (sse_min + INTERVAL_SSE * s2)[:, None]
        gain = (sse_line - sse_min) / s2
        r2 = 1.0 - sse_min / sst
    lo_i = np.argmax(inside, axis=1)
    hi_i = GRID.size - 1 - np.argmax(inside[:, ::-1], axis=1)
    bounded = (hi_i < GRID.size - 1) & np.isfinite(sse_min)
    tf = t_now + GRID[best]
    return tf, t_now + GRID[lo_i], t_now + GRID[hi_i], r2, -slope[r, best], gain, bounded


def evaluate(win: Windows, p: Params, sid: np.ndarray, sigma: np.ndarray, v_ref_state: np.ndarray,
             prev_level: np.ndarray, interval_s: np.ndarray,
             last_fit: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], Trend]:
    """The rate test's (rate, standard error, readings) and the trend family's results for
    series judged on windows of readings (see `sparse`). v_ref_state and prev_level as in
    trend.evaluate; last_fit: per series the previous fit's failure time, its interval
    half-width and when a fit last lapsed (updated in place)."""
    m = len(sid)
    t, x, _ = win.raw_last(sid, VIEW)
    ok = ~np.isnan(x)
    t_now = win.last_ts[sid]

    # rate, over the rule's rate window or its last MIN_READINGS readings
    keep = _window(t, ok, t_now, p.rate_win_h[sid], MIN_READINGS)
    rate, rate_se, rate_n, _ = _rate(t, x, keep, sigma)

    level = np.zeros((m, 2), np.int8)
    value = np.full((m, 2), np.nan)
    thr = np.full((m, 2), np.nan)
    accel = np.full(m, np.nan)
    tf = np.full(m, np.nan)
    r2 = np.full(m, np.nan)
    sg = np.full(m, np.nan)

    # velocity now, over the velocity window grown likewise
    vkeep = _window(t, ok, t_now, p.vel_win_h[sid], MIN_READINGS)
    v_lin, v_se, _, v_first = _rate(t, x, vkeep, sigma)
    with np.errstate(invalid="ignore"):
        significant = np.abs(v_lin) >= SIGNIFICANCE * v_se

    # the displacement fit (Voight, α = 2), where the slope moves measurably over the fit's window
    fkeep_all = _window(t, ok, t_now, p.iv_win_h[sid], FIT_READINGS)
    f_rate, f_se, _, _ = _rate(t, x, fkeep_all, sigma)
    with np.errstate(invalid="ignore"):
        on = (p.iv_on[sid] | p.tan_on[sid]) & (np.abs(f_rate) >= SIGNIFICANCE * f_se)
    valid = np.zeros(m, bool)
    accelerating = np.zeros(m, bool)
    v_model = np.full(m, np.nan)
    hi = np.full(m, np.nan)
    if on.any():
        rows = np.flatnonzero(on)
        s = sid[rows]
        fkeep = fkeep_all[rows]
        direction = np.sign(f_rate[rows])
        f, f_lo, f_hi, fr2, b, gain, bounded = voight_fit(t[rows], x[rows] * direction[:, None], fkeep,
                                                          sigma[rows], t_now[rows])
        # the model's velocity over the last interval between readings (units/day)
        tt = np.where(fkeep, t[rows], np.nan)
        t_prev = np.nanmax(np.where(tt < t_now[rows, None], tt, np.nan), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            vm = b * np.log((f - t_prev) / (f - t_now[rows])) / (t_now[rows] - t_prev) * DAY_S
            ok_fit = (bounded & (gain >= SIGNIFICANCE ** 2) & (fr2 >= p.iv_min_r2[s])
                      & (fkeep.sum(axis=1) >= p.iv_min_pts[s]) & (vm >= p.iv_v_min[s]))
        # a forecast stands only where the previous fit agreed with it and has not lapsed: a slope
        # that outlived its forecast was not following the model (a surge that does not fail
        # looks like imminent failure for a while, and every day's forecast passes unfulfilled)
        # (for MIN_READINGS readings after a lapse no forecast stands). Readings a cadence apart
        # cannot date a failure finer than that cadence: the interval is never narrower.
        f_lo = np.fmax(t_now[rows], np.fmin(f_lo, f - interval_s[rows]))
        f_hi = np.fmax(f_hi, f + interval_s[rows])
        half = (f_hi - f_lo) / 2.0
        prev_tf, prev_half, lapsed = last_fit[0][s], last_fit[1][s], last_fit[2][s]
        with np.errstate(invalid="ignore"):
            lapsed = np.where(prev_tf <= t_now[rows], t_now[rows], lapsed)
            quiet = ~(t_now[rows] - lapsed <= MIN_READINGS * interval_s[rows])
            confirmed = (prev_tf > t_now[rows]) & (np.abs(f - prev_tf) <= half + prev_half) & quiet
        candidate = bounded & (fr2 > 0)
        last_fit[0][s] = np.where(candidate, f, np.nan)
        last_fit[1][s] = np.where(candidate, half, np.nan)
        last_fit[2][s] = lapsed
        # a failure forecast sooner than the next reading is beyond what the readings can date or
        # confirm: the series stays at the levels it has (orange, evacuation, by then)
        ok_fit &= confirmed & (f - t_now[rows] >= interval_s[rows])
        valid[rows] = ok_fit
        accelerating[rows] = gain >= SIGNIFICANCE ** 2  # no longer a constant-velocity stage
        tf[rows] = np.where(ok_fit, f, np.nan)
        r2[rows] = np.where(ok_fit, fr2, np.nan)
        sg[rows] = np.where(ok_fit, (f_hi - f_lo) / 4.0, np.nan)  # the ~95 % interval is about ±2σ
        hi[rows] = np.where(ok_fit, f_hi, np.nan)
        v_model[rows] = np.where(ok_fit, vm * direction, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            accel[rows] = np.where(ok_fit, vm * vm / b, np.nan)  # dv/dt = v²/b under α = 2 (units/day²)
    # where the acceleration is established, the fitted velocity is the velocity now (a linear
    # rate over the window lags an acceleration by half the window)
    v_now = np.where(valid, v_model, v_lin)

    # --- improved tangent angle: the baseline is the readings before the velocity window ------
    v_ref = p.v_ref[sid].copy()
    moving = (np.abs(v_now) >= p.tan_v_min[sid]) & (significant | valid)
    need = np.isnan(v_ref) & p.tan_on[sid]  # learnt all along, not only once the slope moves
    if need.any():
        rows = np.flatnonzero(need)
        s = sid[rows]
        end = np.fmin(v_first[rows] - 1.0, t_now[rows] - p.lag_days[s] * DAY_S)
        bkeep = _window(t[rows], ok[rows], end, p.base_days[s] * 24.0, MIN_READINGS)
        est, _, nb, _ = _rate(t[rows], x[rows], bkeep, sigma[rows])
        est[nb < MIN_READINGS] = np.nan  # a baseline needs its readings (a new installation has none)
        state = v_ref_state[s]
        # the constant-velocity rate is learnt while the slope is steady: below yellow and with
        # no significant acceleration (else the acceleration becomes its own reference)
        # and it is a long-term rate: a new estimate moves it by its share of V_REF_MEMORY, so a
        # slow start of an acceleration, before it is significant, barely shifts it
        steady = ((prev_level[rows] < 2) & ~accelerating[rows]) | np.isnan(state)
        w = np.where(np.isnan(state), 1.0, np.clip(interval_s[rows] / V_REF_MEMORY, 0.0, 1.0))
        state = np.where(steady & ~np.isnan(est), np.nan_to_num(state) + w * (est - np.nan_to_num(state)), state)
        v_ref_state[s] = state
        v_ref[rows] = state
    tab, v_eff = tangent_angle(p, sid, v_now, v_ref, moving, level, value)

    # --- the forecast's level: yellow and orange by the forecast, red by its whole interval ---
    remaining = tf - t_now
    htab = p.horizon_tab[sid]
    with np.errstate(invalid="ignore"):
        hit = remaining[:, None] <= htab
        hit[:, 3] &= (hi - t_now) <= htab[:, 3]
    level[:, INVVEL] = np.where(p.iv_on[sid], (hit * STEPS).max(axis=1), 0)
    value[:, INVVEL] = remaining
    thr[:, INVVEL] = threshold_at(level[:, INVVEL], htab)
    # a tangent angle at red needs the forecast at red too (its whole interval inside the red
    # horizon): a fast surge at a steep angle is not by itself an imminent failure
    unconfirmed = (level[:, TANGENT] == 4) & p.tan_red_iv[sid] & (level[:, INVVEL] < 4)
    level[unconfirmed, TANGENT] = 3
    thr[:, TANGENT] = threshold_at(level[:, TANGENT], tab)
    strong = (level[:, INVVEL] >= 3) & (r2 >= p.iv_strong_r2[sid])
    return (rate, rate_se, rate_n), Trend(level, value, thr, v_now, accel, v_eff, tf, r2, sg, strong)
