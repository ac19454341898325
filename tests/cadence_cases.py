"""Synthetic slopes read once a day (survey prisms, daily GNSS solutions), fed to the core
in-process in daily batches, as replay does: the acceptance cases of judgement on a series' own
cadence (docs/backtest.md, "Daily and sparse series")."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geowarn.daemon.core import Core
from geowarn.daemon.model.levels import Level
from geowarn.daemon.registry import Registry

D = 86400.0
T0 = 1_700_000_000.0 + 8 * 3600  # readings at 08:00 UTC


def registry(site: str, devices: list[str], interval_s: float = D) -> Registry:
    return Registry.from_dict({"sites": [
        {"id": site, "name": site, "county": "test", "hazard": "landslide", "lon": 112.0, "lat": 27.5,
         "devices": [{"id": d, "kind": "gnss", "interval_s": int(interval_s)} for d in devices]}]})


def voight(days: np.ndarray, creep_days: float = 60.0, accel_days: float = 30.0, v0: float = 0.5) -> np.ndarray:
    """Steady creep at v0 mm/day, then Voight's law with α = 2 to failure at creep + accel days:
    v = v0 · accel_days / (days left)."""
    tf = creep_days + accel_days
    return np.where(days < creep_days, v0 * days,
                    v0 * creep_days + v0 * accel_days * np.log(accel_days / np.maximum(tf - days, 1e-6)))


def surge(days: np.ndarray, base: float = 0.2, peak: float = 8.0, start: float = 60.0, ramp: float = 30.0) -> np.ndarray:
    """Steady base mm/day; from `start` a month accelerating smoothly to `peak` mm/day and a
    month decelerating back (a wet season on a reservoir slope); no failure."""
    grid = np.arange(0.0, float(days.max()) + 1.0, 0.01)
    u = grid - start
    v = np.where((u < 0) | (u >= 2 * ramp), base,
                 base + (peak - base) * (1 - np.cos(np.pi * np.clip(u, 0, 2 * ramp) / ramp)) / 2)
    x = np.concatenate([[0.0], np.cumsum(v[:-1] * 0.01)])
    return np.interp(days, grid, x)


@dataclass
class Run:
    tf: float | None  # true failure time (epoch s), None for a slope that does not fail
    levels: list[tuple[float, str]] = field(default_factory=list)  # site level changes
    forecasts: list[tuple[float, float, float]] = field(default_factory=list)  # (ts, failure time, sigma s)
    daily_level: list[int] = field(default_factory=list)  # the site's level after each day
    core: Core | None = None

    def first(self, level: str) -> float | None:
        """When the site first reached `level` or higher."""
        return next((ts for ts, lv in self.levels if Level.of(lv) >= Level.of(level)), None)

    def lead_h(self, level: str) -> float | None:
        t = self.first(level)
        return None if t is None or self.tf is None else (self.tf - t) / 3600.0

    def forecast_error_h(self, hours_before: float) -> float | None:
        """The latest forecast reported by `hours_before` failure, minus the true failure (h)."""
        assert self.tf is not None
        before = [f for f in self.forecasts if f[0] <= self.tf - hours_before * 3600.0]
        return None if not before else (before[-1][1] - self.tf) / 3600.0

    def days_at(self, level: str) -> int:
        return sum(1 for lv in self.daily_level if lv == Level.of(level))


def run(displacement, days: float, seed: int, sigma: float, *, tf_day: float | None = None, spikes: int = 3,
        every_s: float = D, devices: tuple[str, ...] = ("p1", "p2")) -> Run:
    """Two instruments on one slope following `displacement` (mm, of days since T0), each with
    its own Gaussian noise σ and a few 30–60 mm spikes, read every `every_s` (both 10 minutes
    apart) until failure; fed in daily batches."""
    rng = np.random.default_rng(seed)
    core = Core(registry("SLOPE", list(devices), every_s))
    core.expect_accelerated = False  # survey rounds do not speed up when the site rises
    end = T0 + (tf_day if tf_day is not None else days) * D
    parts = []
    for i, dev in enumerate(devices):
        sid = core.intern("SLOPE", dev, "gnss", "dh")
        t = np.arange(T0, end, every_s) + 600.0 * i
        t = t[t < end]
        x = displacement((t - T0) / D) + rng.normal(0.0, sigma, len(t))
        k = rng.choice(np.arange(20, len(t) - 5), spikes, replace=False)
        x[k] += rng.choice([-1.0, 1.0], spikes) * rng.uniform(30.0, 60.0, spikes)
        parts.append((np.full(len(t), sid), t, x))
    sid, ts, xs = (np.concatenate(c) for c in zip(*parts))
    order = np.argsort(ts, kind="stable")
    sid, ts, xs = sid[order], ts[order], xs[order]
    day = np.floor((ts - T0) / D)
    cuts = [0, *(np.flatnonzero(np.diff(day)) + 1).tolist(), len(ts)]
    out = Run(tf=end if tf_day is not None else None, core=core)
    for a, b in zip(cuts, cuts[1:]):
        r = core.process(sid[a:b], ts[a:b], xs[a:b])
        out.levels += [(e.ts, e.level) for e in r.level_changes]
        out.forecasts += [(f.ts, f.failure_time, f.sigma_s) for f in r.forecasts]
        out.daily_level.append(int(core.sites.level[core.series.site_ix["SLOPE"]]))
    return out


def failing(seed: int, sigma: float, every_s: float = D) -> Run:
    """The acceptance slope: 60 days of creep at 0.5 mm/day, then acceleration to failure 30.5
    days later (at 20:00: a failure keeps no survey schedule)."""
    return run(lambda d: voight(d, 60.0, 30.5), 90.5, seed, sigma, tf_day=90.5, every_s=every_s)


def steady(seed: int, sigma: float) -> Run:
    """0.5 mm/day for two years, never accelerating."""
    return run(lambda d: 0.5 * d, 730.0, seed, sigma)


def surging(seed: int, sigma: float = 3.0) -> Run:
    return run(surge, 180.0, seed, sigma)
