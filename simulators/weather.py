"""Rain over the network, hour by hour: scenario storms plus (optionally) light background
showers. Rain is uniform within an hour, so any interval's amount is an exact integral and
the gauges' reports add up to the stated storm totals."""
from __future__ import annotations

import math
import random
from collections import defaultdict

from geowarn.daemon.registry import Registry

from .scenario import Storm

HOUR = 3600.0
# background showers: a county has one on ~30 % of days, 2-12 mm over 2-5 h —
# far below the lowest (blue) threshold of 35 mm/h, 100 mm/24 h
SHOWER_CHANCE = 0.3


class Weather:
    def __init__(self, registry: Registry, start: float, storms: tuple[Storm, ...] = (),
                 background: bool = True, seed: int = 1, horizon_h: float = 24 * 30):
        self.start = start
        self._hourly: dict[str, dict[int, float]] = defaultdict(dict)  # site -> hour index -> mm
        by_county: dict[str, list[str]] = defaultdict(list)
        for s in registry.sites:
            by_county[s.county].append(s.id)
        if background:
            for county, sites in sorted(by_county.items()):
                rnd = random.Random(f"showers-{seed}-{county}")  # a longer horizon only adds days
                for day in range(int(math.ceil(horizon_h / 24))):
                    if rnd.random() < SHOWER_CHANCE:
                        hours = rnd.randint(2, 5)
                        total = rnd.uniform(2.0, 12.0)
                        first = day * 24 + rnd.randint(0, 24 - hours)
                        for site in sites:
                            k = rnd.uniform(0.5, 1.0)
                            for h in range(hours):
                                self._add(site, first + h, k * total * _bell(h, hours))
        rnd = random.Random(f"storms-{seed}")
        for storm in storms:
            targets = list(storm.sites) + [s.id for s in registry.sites if storm.county and s.county == storm.county]
            amounts = (storm.hourly_mm if storm.hourly_mm is not None
                       else _bell_amounts(storm.total_mm, storm.duration_h))
            for site in dict.fromkeys(targets):
                k = 1.0 - rnd.uniform(0.0, storm.spread)
                for h, mm in enumerate(amounts):
                    self._add_at(site, storm.start_h + h, k * mm)

    def _add(self, site: str, hour: int, mm: float) -> None:
        self._hourly[site][hour] = self._hourly[site].get(hour, 0.0) + mm

    def _add_at(self, site: str, hour_f: float, mm: float) -> None:
        """An hour of rain starting at a fractional hour: split over the two buckets it covers."""
        h = math.floor(hour_f)
        frac = hour_f - h
        self._add(site, h, mm * (1.0 - frac))
        if frac:
            self._add(site, h + 1, mm * frac)

    def amount(self, site: str, t0: float, t1: float) -> float:
        """Rain (mm) at a site between two instants."""
        if t1 <= t0:
            return 0.0
        hours = self._hourly.get(site)
        if not hours:
            return 0.0
        a, b = (t0 - self.start) / HOUR, (t1 - self.start) / HOUR
        total = 0.0
        for h in range(math.floor(a), math.ceil(b)):
            mm = hours.get(h)
            if mm:
                total += mm * (min(b, h + 1) - max(a, h))
        return total

    def raining(self, site: str, t: float) -> bool:
        return self._hourly.get(site, {}).get(math.floor((t - self.start) / HOUR), 0.0) > 0.0

    def hourly(self, site: str) -> dict[int, float]:
        """Hour index (from start) -> mm: the ground truth, for tests and reports."""
        return dict(self._hourly.get(site, {}))


def _bell(h: int, n: int) -> float:
    """Share of a storm's total falling in hour h of n (sin², sums to 1)."""
    weights = [math.sin(math.pi * (i + 0.5) / n) ** 2 for i in range(n)]
    return weights[h] / sum(weights)


def _bell_amounts(total: float, duration_h: float) -> list[float]:
    n = max(1, int(round(duration_h)))
    return [total * _bell(h, n) for h in range(n)]
