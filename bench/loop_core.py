"""The default detector set written the plain way: one reading at a time, Python lists and
dicts, detectors evaluated after every reading. The benchmark runs it on the same readings as
the vectorised core to show what the columnar design buys. Same rules, same maths (trailing
Hampel with next-reading confirmation, Theil-Sen rates on block means with a noise test,
tangent angle, weighted inverse-velocity fit, rolling rain totals, I-D, antecedent rain,
corroborated site levels with a hold); it is a yardstick, not a second implementation to run.
"""
from __future__ import annotations

import math
from collections import deque
from statistics import median

from geowarn.daemon.model.levels import Level
from geowarn.daemon.model.slots import RAIN_WINDOWS_H
from geowarn.daemon.rules import Rules

DAY = 86400.0


def _theil_sen(pts: list[tuple[float, float]]) -> float | None:
    slopes = [(b[1] - a[1]) / (b[0] - a[0]) for i, a in enumerate(pts) for b in pts[i + 1:] if b[0] > a[0]]
    return median(slopes) if slopes else None


def _blocks(bins: list[tuple[float, float, int]], n: int) -> list[tuple[float, float]]:
    if not bins:
        return []
    size = max(1, math.ceil(len(bins) / n))
    out = []
    for i in range(0, len(bins), size):
        chunk = bins[i:i + size]
        cnt = sum(c for _, _, c in chunk)
        out.append((sum(t * c for t, _, c in chunk) / cnt, sum(x * c for _, x, c in chunk) / cnt))
    return out


def _level(v: float | None, table) -> int:
    if v is None or table is None:
        return 0
    lv = 0
    for i, thr in enumerate((table.blue, table.yellow, table.orange, table.red)):
        if thr is not None and v >= thr:
            lv = i + 1
    return lv


class Series:
    __slots__ = ("kind", "rule", "raw", "hours", "days", "pending", "last_ok", "offset", "level", "site",
                 "device", "total", "v_ref")

    def __init__(self, site, device, kind, rule):
        self.site, self.device, self.kind, self.rule = site, device, kind, rule
        self.raw: deque = deque(maxlen=256)  # (ts, value, ok)
        self.hours: dict[int, list[float]] = {}  # bin -> [sum, n, tsum]
        self.days: dict[int, list[float]] = {}
        self.pending = False
        self.last_ok: float | None = None
        self.offset = 0.0
        self.level = 0
        self.total: float | None = None
        self.v_ref: float | None = None


class LoopCore:
    def __init__(self, rules: Rules):
        self.rules = rules
        self.series: dict[tuple[str, str, str], Series] = {}
        self.by_site: dict[str, list[Series]] = {}
        self.site_level: dict[str, int] = {}
        self.below: dict[str, float] = {}
        self.events = 0

    def reading(self, site: str, device: str, kind: str, channel: str, ts: float, value: float) -> None:
        key = (site, device, channel)
        s = self.series.get(key)
        if s is None:
            rule = self.rules.for_device(kind, site, device)
            s = self.series[key] = Series(site, device, kind, rule)
            self.by_site.setdefault(site, []).append(s)
        rule = s.rule
        lo, hi = rule.quality.range.get(channel, (-math.inf, math.inf))
        if not lo <= value <= hi:
            s.raw.append((ts, value, False))
            return
        if channel not in rule.channels:
            s.raw.append((ts, value, True))
            return
        if kind == "rain":
            self._rain(s, channel, ts, value)
        else:
            self._deform(s, ts, value - s.offset)
        self._fuse(site, ts)

    # --- deformation ---------------------------------------------------------------------

    def _bin(self, s: Series, ts: float, x: float, width: float) -> None:
        b = int(ts // width)
        cell = s.hours.setdefault(b, [0.0, 0, 0.0])
        cell[0] += x
        cell[1] += 1
        cell[2] += ts
        if len(s.hours) > 720:
            del s.hours[min(s.hours)]
        d = s.days.setdefault(int(ts // DAY), [0.0, 0])
        d[0] += x
        d[1] += 1
        if len(s.days) > 180:
            del s.days[min(s.days)]

    def _deform(self, s: Series, ts: float, x: float) -> None:
        q = s.rule.quality
        usable = [v for _, v, ok in list(s.raw)[-q.hampel_window:] if ok]
        ok = True
        if len(usable) >= 5:
            med = median(usable)
            tol = max(q.hampel_k * 1.4826 * median(abs(v - med) for v in usable), q.spike_floor)
            if s.pending:  # the previous reading departed: this one decides
                pt, pv, _ = s.raw[-1]
                if abs(x - pv) <= tol:
                    s.raw[-1] = (pt, pv, True)
                    self._bin(s, pt, pv, 3600.0)
                s.pending = False
            if abs(x - med) > tol:
                ok = False
                s.pending = True
        if ok and s.last_ok is not None and q.jump is not None and abs(x - s.last_ok) >= q.jump:
            s.offset += x - s.last_ok
            x = s.last_ok
        s.raw.append((ts, x, ok))
        if not ok:
            return
        s.last_ok = x
        self._bin(s, ts, x, 3600.0)
        s.level = self._judge(s, ts, x)

    def _window(self, s: Series, ts: float, hours: float) -> list[tuple[float, float, int]]:
        b_now = int(ts // 3600)
        return [(c[2] / c[1], c[0] / c[1], c[1]) for b, c in sorted(s.hours.items()) if b > b_now - hours]

    def _rate(self, s: Series, ts: float, hours: float, blocks: int, sigma: float) -> float | None:
        w = self._window(s, ts, hours)
        pts = _blocks(w, blocks)
        if len(pts) < max(3, blocks // 2):
            return None
        slope = _theil_sen(pts)
        n = sum(c for *_, c in w)
        span = max(w[-1][0] - w[0][0], 1.0)
        se = sigma * math.sqrt(12.0 / n) / span * DAY
        if slope is None or abs(slope * DAY) < 5.0 * se:
            return None
        return slope * DAY

    def _judge(self, s: Series, ts: float, x: float) -> int:
        th, tr = s.rule.threshold, s.rule.trend
        vals = [v for _, v, ok in list(s.raw)[-64:] if ok]
        diffs = [b - a for a, b in zip(vals, vals[1:])]
        sigma = 1.4826 * median(abs(d - median(diffs)) for d in diffs) / math.sqrt(2) if len(diffs) > 2 else 0.0
        level = 0
        if th is not None and th.enabled:
            level = max(level, _level(abs(x), th.absolute))
            d_now = int(ts // DAY)
            base = [c for d, c in sorted(s.days.items()) if d > d_now - th.change_window_h / 24 - 1]
            if base:
                level = max(level, _level(abs(x - base[0][0] / base[0][1]), th.change))
            r = self._rate(s, ts, th.rate_window_h, 12, sigma)
            if r is not None and len(self._window(s, ts, th.rate_window_h)) >= th.rate_min_points:
                level = max(level, _level(abs(r), th.rate))
        if tr is not None and tr.enabled:
            tg = tr.tangent
            v = self._rate(s, ts, tg.velocity_window_h, 12, sigma)
            if v is not None and abs(v) >= tg.v_min:
                d_now = int(ts // DAY)
                days = [((d + 0.5) * DAY, c[0] / c[1], 1) for d, c in sorted(s.days.items())
                        if tg.baseline_lag_days <= d_now - d < tg.baseline_lag_days + tg.baseline_days]
                if len(days) >= max(3, tg.baseline_days / 2):
                    pts = _blocks(days, 7)
                    est = _theil_sen(pts) if len(pts) >= 3 else None
                    if est is not None and (s.level < 2 or s.v_ref is None):
                        s.v_ref = est * DAY
                if s.v_ref is not None:
                    alpha = math.degrees(math.atan2(abs(v), max(abs(s.v_ref), tg.v_ref_min)))
                    level = max(level, min(_level(alpha, tg.alpha), 3))
            iv = tr.inverse_velocity
            if v is not None and abs(v) >= 0.25 * iv.v_min:
                level = max(level, self._inverse_velocity(s, ts, iv))
        return level

    def _inverse_velocity(self, s: Series, ts: float, iv) -> int:
        w = self._window(s, ts, iv.window_h + iv.smooth_h)
        step = max(1, round(iv.smooth_h / 4))
        blocks = []
        for i in range(0, len(w), step):
            chunk = w[i:i + step]
            n = sum(c for *_, c in chunk)
            blocks.append((sum(t * c for t, _, c in chunk) / n, sum(x * c for _, x, c in chunk) / n, n))
        pts = []
        for (t1, x1, n1), (t2, x2, n2) in zip(blocks, blocks[4:]):
            v = (x2 - x1) / (t2 - t1)
            pts.append((0.5 * (t1 + t2), v, 1.0 / n1 + 1.0 / n2, t2, t2 - t1))
        if len(pts) < iv.min_points:
            return 0
        sign = 1.0 if median(p[1] for p in pts) >= 0 else -1.0
        data = [(t, 1.0 / (v * sign), (v * sign) ** 4 / var, t2, span) for t, v, var, t2, span in pts if v * sign > 0]
        if len(data) < iv.min_points:
            return 0
        tf = None
        times = [d[0] for d in data]
        for _ in range(3):
            sw = sum(d[2] for d in data)
            tm = sum(d[2] * t for d, t in zip(data, times)) / sw
            ym = sum(d[2] * d[1] for d in data) / sw
            sxx = sum(d[2] * (t - tm) ** 2 for d, t in zip(data, times))
            sxy = sum(d[2] * (t - tm) * (d[1] - ym) for d, t in zip(data, times))
            syy = sum(d[2] * (d[1] - ym) ** 2 for d in data)
            if sxx <= 0 or syy <= 0:
                return 0
            b = sxy / sxx
            if b >= 0:
                return 0
            tf = tm - ym / b
            times = [tf - d[4] / math.log1p(d[4] / (tf - d[3])) if tf > d[3] else t for d, t in zip(data, times)]
        r2 = 1 - (syy - b * sxy) / syy
        if r2 < iv.min_r2 or data[-1][1] <= 0 or (1 / data[-1][1]) * DAY < iv.v_min:
            return 0
        remaining = tf - ts
        h = iv.horizon_h
        return max([0] + [lv for lv, hz in ((2, h.yellow), (3, h.orange), (4, h.red)) if hz is not None and remaining <= hz * 3600])

    # --- rain ----------------------------------------------------------------------------

    def _rain(self, s: Series, channel: str, ts: float, value: float) -> None:
        inc = value
        if channel == "total":
            inc = 0.0 if s.total is None else (value if value < s.total else value - s.total)
            s.total = value
        s.raw.append((ts, value, True))
        b = int(ts // 600)
        cell = s.hours.setdefault(b, [0.0, 0, 0.0])
        cell[0] += inc
        if len(s.hours) > 720:
            del s.hours[min(s.hours)]
        d = s.days.setdefault(int(ts // DAY), [0.0, 0])
        d[0] += inc
        rf = s.rule.rainfall
        if rf is None or not rf.enabled:
            return
        level = 0
        for h in RAIN_WINDOWS_H:
            total = sum(c[0] for k, c in s.hours.items() if k > b - h * 6)
            level = max(level, _level(total, rf.totals_mm.get(h)))
            idr = rf.intensity_duration
            if idr is not None and h in idr.durations_h and total / h >= idr.a * h ** -idr.b:
                level = max(level, Level.of(idr.level))
        ant = rf.antecedent
        if ant is not None and ant.levels is not None:
            day = int(ts // DAY)
            ear = sum(c[0] * ant.k ** (day - k) for k, c in s.days.items() if day - k <= ant.days)
            level = max(level, _level(ear, ant.levels))
        s.level = level

    # --- site ----------------------------------------------------------------------------

    def _fuse(self, site: str, ts: float) -> None:
        rule = self.rules.for_site(site)
        dev: dict[str, int] = {}
        for s in self.by_site[site]:
            dev[s.device] = max(dev.get(s.device, 0), s.level)
        top = max(dev.values(), default=0)
        agree = sum(1 for v in dev.values() if v >= max(rule.corroborate_min_i, 1))
        cand = min(top, rule.single_max_i) if rule.corroboration and top > rule.single_max_i and agree < 2 else top
        cur = self.site_level.get(site, 0)
        if cand > cur:
            self.site_level[site] = cand
            self.below.pop(site, None)
            self.events += 1
        elif cand < cur:
            since = self.below.setdefault(site, ts)
            if ts - since >= (rule.hold_red_h if cur == 4 else rule.hold_h) * 3600:
                self.site_level[site] = cand
                self.below.pop(site, None)
                self.events += 1
        else:
            self.below.pop(site, None)
