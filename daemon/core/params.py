"""Rules compiled to per-series numpy columns, so detectors read thresholds with one gather
whatever mix of kinds, sites and overrides a batch touches."""
from __future__ import annotations

import numpy as np

from ..levels.names import LEVEL_INDEX
from ..rules import RAIN_WINDOWS_H, KindRule
from .buffers import grown

NAN4 = np.full(4, np.nan)

# series roles
OTHER, DEFORM, RAIN_MM, RAIN_TOTAL = 0, 1, 2, 3


class Params:
    _cols_1d = {
        "role": (np.int8, OTHER), "judged": (bool, False),
        "thr_on": (bool, False), "change_win_h": (float, 720.0), "rate_win_h": (float, 72.0),
        "rate_min": (np.int32, 4),
        "tan_on": (bool, False), "v_ref": (float, np.nan), "base_days": (float, 14.0), "lag_days": (float, 7.0),
        "v_ref_min": (float, 0.2), "tan_v_min": (float, 1.0), "tan_red_iv": (bool, True), "vel_win_h": (float, 72.0),
        "iv_on": (bool, False), "iv_win_h": (float, 336.0), "iv_smooth_h": (float, 24.0), "iv_min_pts": (np.int32, 8),
        "iv_min_r2": (float, 0.8), "iv_strong_r2": (float, 0.9), "iv_v_min": (float, 2.0),
        "ant_on": (bool, False), "ant_k": (float, 0.84), "ant_days": (np.int32, 15),
        "id_on": (bool, False), "id_a": (float, 14.82), "id_b": (float, 0.39), "id_level": (np.int8, 1),
        "hampel_w": (np.int32, 16), "hampel_k": (float, 5.0), "floor": (float, 1.0), "jump": (float, np.inf),
        "jump_step": (float, np.inf),
        "flat_h": (float, np.nan), "lo": (float, -np.inf), "hi": (float, np.inf), "offline_factor": (float, 3.0),
    }
    _cols_tab = ("abs_tab", "change_tab", "rate_tab", "alpha_tab", "horizon_tab", "ant_tab")

    def __init__(self) -> None:
        self.cap = 0
        self._rows: dict[tuple, tuple[KindRule, dict]] = {}  # the rule is kept so its id stays unique
        for name, (dt, _fill) in self._cols_1d.items():
            setattr(self, name, np.zeros(0, dt))
        for name in self._cols_tab:
            setattr(self, name, np.zeros((0, 4)))
        self.rain_tab = np.zeros((0, len(RAIN_WINDOWS_H), 4))
        self.id_mask = np.zeros((0, len(RAIN_WINDOWS_H)), bool)

    def ensure(self, n: int) -> None:
        if n <= self.cap:
            return
        cap = max(n, 2 * self.cap, 64)
        for name, (_dt, fill) in self._cols_1d.items():
            setattr(self, name, grown(getattr(self, name), cap, fill))
        for name in (*self._cols_tab, "rain_tab", "id_mask"):
            a = getattr(self, name)
            setattr(self, name, grown(a, cap, False if a.dtype == bool else np.nan))
        self.cap = cap

    def bytes_per_series(self) -> int:
        return sum(getattr(self, name).itemsize * int(np.prod(getattr(self, name).shape[1:]))
                   for name in (*self._cols_1d, *self._cols_tab, "rain_tab", "id_mask"))

    def set(self, sid: int, kind: str, channel: str, rule: KindRule) -> None:
        """Compile the rule for one series. Rules resolve to shared objects, so a row is
        compiled once per (kind, channel, rule) and copied for every further series."""
        self.ensure(sid + 1)
        key = (kind, channel, id(rule))
        row = self._rows.get(key)
        if row is None:
            scratch = Params()
            scratch._compile(0, kind, channel, rule)
            row = self._rows[key] = (rule, {n: getattr(scratch, n)[0].copy() for n in self._names()})
        for name, value in row[1].items():
            getattr(self, name)[sid] = value

    def _names(self) -> tuple[str, ...]:
        return (*self._cols_1d, *self._cols_tab, "rain_tab", "id_mask")

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
            for name, lv in (("abs_tab", t.absolute), ("change_tab", t.change), ("rate_tab", t.rate)):
                getattr(self, name)[sid] = lv.table() if lv is not None else NAN4
            self.change_win_h[sid], self.rate_win_h[sid], self.rate_min[sid] = \
                t.change_window_h, t.rate_window_h, t.rate_min_points
        tr = rule.trend
        on = bool(judged and tr is not None and tr.enabled)
        self.tan_on[sid] = on and tr.tangent.enabled
        self.iv_on[sid] = on and tr.inverse_velocity.enabled
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
        if rain_on:
            for j, w in enumerate(RAIN_WINDOWS_H):
                lv = rf.totals_mm.get(w)
                self.rain_tab[sid, j] = lv.table() if lv is not None else NAN4
            if rf.antecedent is not None:
                self.ant_on[sid] = rf.antecedent.levels is not None
                self.ant_k[sid], self.ant_days[sid] = rf.antecedent.k, rf.antecedent.days
                self.ant_tab[sid] = rf.antecedent.levels.table() if rf.antecedent.levels else NAN4
            if rf.intensity_duration is not None:
                idr = rf.intensity_duration
                self.id_on[sid] = True
                self.id_a[sid], self.id_b[sid], self.id_level[sid] = idr.a, idr.b, LEVEL_INDEX[idr.level]
                self.id_mask[sid] = [w in idr.durations_h for w in RAIN_WINDOWS_H]
        if not rain_on and kind == "rain":
            self.judged[sid] = False
