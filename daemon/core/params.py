"""Rules compiled to per-series numpy columns, so detectors read thresholds with one gather
whatever mix of kinds, sites and overrides a batch touches."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model.levels import Level
from ..model.slots import RAIN_WINDOWS_H
from ..rules import KindRule, Levels
from .columns import Columns, column

NAN4 = np.full(4, np.nan)
NW = len(RAIN_WINDOWS_H)

# series roles
OTHER, DEFORM, RAIN_MM, RAIN_TOTAL = 0, 1, 2, 3


@dataclass(eq=False)
class Params(Columns):
    """One row per series: the parameters of its rule. Level tables are [blue, yellow,
    orange, red] (NaN: the level is not used); times in hours unless named _s."""

    role: np.ndarray = column(np.int8, OTHER)
    judged: np.ndarray = column(bool, False)
    # threshold family
    thr_on: np.ndarray = column(bool, False)
    abs_tab: np.ndarray = column(float, np.nan, 4)
    change_tab: np.ndarray = column(float, np.nan, 4)
    rate_tab: np.ndarray = column(float, np.nan, 4)
    change_win_h: np.ndarray = column(float, 720.0)
    rate_win_h: np.ndarray = column(float, 72.0)
    rate_min: np.ndarray = column(np.int32, 4)
    # improved tangent angle
    tan_on: np.ndarray = column(bool, False)
    v_ref: np.ndarray = column(float, np.nan)  # a fixed constant-velocity rate (NaN: estimated)
    base_days: np.ndarray = column(float, 14.0)
    lag_days: np.ndarray = column(float, 7.0)
    v_ref_min: np.ndarray = column(float, 0.2)
    tan_v_min: np.ndarray = column(float, 1.0)
    tan_red_iv: np.ndarray = column(bool, True)
    vel_win_h: np.ndarray = column(float, 72.0)
    alpha_tab: np.ndarray = column(float, np.nan, 4)
    # inverse velocity
    iv_on: np.ndarray = column(bool, False)
    iv_win_h: np.ndarray = column(float, 336.0)
    iv_smooth_h: np.ndarray = column(float, 24.0)
    iv_min_pts: np.ndarray = column(np.int32, 8)
    iv_min_r2: np.ndarray = column(float, 0.8)
    iv_strong_r2: np.ndarray = column(float, 0.9)
    iv_v_min: np.ndarray = column(float, 2.0)
    horizon_tab: np.ndarray = column(float, np.nan, 4)  # seconds
    # rainfall
    rain_tab: np.ndarray = column(float, np.nan, NW, 4)  # per window of RAIN_WINDOWS_H
    ant_on: np.ndarray = column(bool, False)
    ant_k: np.ndarray = column(float, 0.84)
    ant_days: np.ndarray = column(np.int32, 15)
    ant_tab: np.ndarray = column(float, np.nan, 4)
    id_on: np.ndarray = column(bool, False)
    id_a: np.ndarray = column(float, 14.82)
    id_b: np.ndarray = column(float, 0.39)
    id_level: np.ndarray = column(np.int8, 1)
    id_mask: np.ndarray = column(bool, False, NW)  # the windows the I-D curve judges
    # data quality
    hampel_w: np.ndarray = column(np.int32, 16)
    hampel_k: np.ndarray = column(float, 5.0)
    floor: np.ndarray = column(float, 1.0)
    jump: np.ndarray = column(float, np.inf)
    jump_step: np.ndarray = column(float, np.inf)
    flat_h: np.ndarray = column(float, np.nan)
    lo: np.ndarray = column(float, -np.inf)
    hi: np.ndarray = column(float, np.inf)
    offline_factor: np.ndarray = column(float, 3.0)
    # compiled rows by (kind, channel, rule): the rule is kept so its id stays unique
    _rows: dict[tuple, tuple[KindRule, dict[str, Any]]] = field(default_factory=dict, repr=False)

    def bytes_per_series(self) -> int:
        return self.bytes_per_row()

    def set(self, sid: int, kind: str, channel: str, rule: KindRule) -> None:
        """Compile the rule for one series. Rules resolve to shared objects, so a row is
        compiled once per (kind, channel, rule) and copied for every further series."""
        self.ensure(sid + 1)
        key = (kind, channel, id(rule))
        row = self._rows.get(key)
        if row is None:
            scratch = Params()
            scratch._compile(0, kind, channel, rule)
            row = self._rows[key] = (rule, {n: getattr(scratch, n)[0].copy() for n in self.column_names()})
        for name, value in row[1].items():
            getattr(self, name)[sid] = value

    def _compile(self, sid: int, kind: str, channel: str, rule: KindRule) -> None:
        self.ensure(sid + 1)
        judged = channel in rule.channels
        role = RAIN_TOTAL if kind == "rain" and channel == "total" else RAIN_MM if kind == "rain" else \
            DEFORM if judged else OTHER
        self.role[sid], self.judged[sid] = role, judged
        q = rule.quality
        self.hampel_w[sid], self.hampel_k[sid], self.floor[sid] = q.hampel_window, q.hampel_k, q.spike_floor
        self.jump[sid] = q.jump if q.jump is not None else np.inf
        self.jump_step[sid] = q.jump_step if q.jump_step is not None else np.inf
        self.flat_h[sid] = q.flatline_h if q.flatline_h is not None else np.nan
        self.lo[sid], self.hi[sid] = q.range.get(channel, (-np.inf, np.inf))
        self.offline_factor[sid] = q.offline_factor
        t = rule.threshold
        self.thr_on[sid] = bool(judged and t is not None and t.enabled)
        if t is not None:
            self.abs_tab[sid], self.change_tab[sid], self.rate_tab[sid] = _table(t.absolute), _table(t.change), \
                _table(t.rate)
            self.change_win_h[sid], self.rate_win_h[sid], self.rate_min[sid] = \
                t.change_window_h, t.rate_window_h, t.rate_min_points
        tr = rule.trend
        on = bool(judged and tr is not None and tr.enabled)
        self.tan_on[sid] = on and tr is not None and tr.tangent.enabled
        self.iv_on[sid] = on and tr is not None and tr.inverse_velocity.enabled
        if tr is not None:
            tg, iv = tr.tangent, tr.inverse_velocity
            self.v_ref[sid] = tg.v_ref if tg.v_ref is not None else np.nan
            self.base_days[sid], self.lag_days[sid], self.v_ref_min[sid] = tg.baseline_days, tg.baseline_lag_days, tg.v_ref_min
            self.tan_v_min[sid], self.vel_win_h[sid], self.alpha_tab[sid] = tg.v_min, tg.velocity_window_h, tg.alpha.table()
            self.tan_red_iv[sid] = tg.red_needs_forecast
            self.iv_win_h[sid], self.iv_smooth_h[sid], self.iv_min_pts[sid] = iv.window_h, iv.smooth_h, iv.min_points
            self.iv_min_r2[sid], self.iv_strong_r2[sid], self.iv_v_min[sid] = iv.min_r2, iv.strong_r2, iv.v_min
            self.horizon_tab[sid] = iv.horizon_h.table()
        rf = rule.rainfall
        rain_on = bool(kind == "rain" and judged and rf is not None and rf.enabled)
        self.rain_tab[sid] = np.nan
        self.ant_on[sid] = self.id_on[sid] = False
        if rain_on and rf is not None:
            for j, w in enumerate(RAIN_WINDOWS_H):
                self.rain_tab[sid, j] = _table(rf.totals_mm.get(w))  # type: ignore[call-overload]  # w is one of the Literal keys
            if rf.antecedent is not None:
                self.ant_on[sid] = rf.antecedent.levels is not None
                self.ant_k[sid], self.ant_days[sid] = rf.antecedent.k, rf.antecedent.days
                self.ant_tab[sid] = _table(rf.antecedent.levels)
            if rf.intensity_duration is not None:
                idr = rf.intensity_duration
                self.id_on[sid] = True
                self.id_a[sid], self.id_b[sid], self.id_level[sid] = idr.a, idr.b, Level.of(idr.level)
                self.id_mask[sid] = [w in idr.durations_h for w in RAIN_WINDOWS_H]
        if not rain_on and kind == "rain":
            self.judged[sid] = False


def _table(levels: Levels | None) -> np.ndarray:
    return levels.table() if levels is not None else NAN4
