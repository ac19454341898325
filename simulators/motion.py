"""Slope movement: steady creep, then Voight's accelerating creep to failure.

Voight (1988): the acceleration follows a = A·v^α. Integrated, the velocity before failure is
v(t) = v0·((t_f − t)/T)^(−1/(α−1)) with T = t_f − t_onset and v0 the creep rate at the onset,
so 1/v is a straight line reaching zero at t_f for α = 2 (Fukuzono's inverse-velocity method
rests on that). Displacement is the exact integral, so a noise-free series differentiates back
to the law.

Real slopes do not follow the law smoothly: `roughness` (σ of a log-normal factor, hour by hour,
correlated over a few hours) scales each hour's movement up or down. The displacement stays
monotonic and the law holds on average.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

DAY = 86400.0
HOUR = 3600.0
CORRELATION_H = 3.0  # how long a fast or slow spell lasts


@dataclass(frozen=True)
class SlopeMotion:
    """Displacement along the slope (mm), from `start`."""

    start: float
    creep_mm_per_day: float
    onset: float | None = None  # epoch s; None: creep forever
    failure: float | None = None  # epoch s (t_f)
    alpha: float = 2.0
    roughness: float = 0.0
    seed: int = 1
    _factors: list[float] = field(default_factory=list, init=False, repr=False, compare=False)
    _cumulative: list[float] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.roughness <= 0 or self.onset is None or self.failure is None:
            return
        rnd = random.Random(f"motion-{self.seed}")
        keep = math.exp(-1.0 / CORRELATION_H)
        x = 0.0
        n = math.ceil((self.failure - self.onset) / HOUR)
        for _ in range(n):  # an AR(1) process with unit variance, exponentiated
            x = keep * x + math.sqrt(1 - keep * keep) * rnd.gauss(0.0, 1.0)
            self._factors.append(math.exp(self.roughness * x - self.roughness ** 2 / 2))
        total = 0.0
        self._cumulative.append(0.0)
        for k, f in enumerate(self._factors):  # movement up to the end of each rough hour
            total += f * (self._smooth(self._hour_edge(k + 1)) - self._smooth(self._hour_edge(k)))
            self._cumulative.append(total)

    def _hour_edge(self, k: int) -> float:
        return min(self.onset + k * HOUR, self.failure)

    def _smooth(self, t: float) -> float:
        """Voight's displacement since the onset, without roughness."""
        v0 = self.creep_mm_per_day / DAY
        T = self.failure - self.onset
        x = max(self.failure - t, 1e-3) / T  # just before t_f at the latest: the slope is gone after
        if abs(self.alpha - 2.0) < 1e-9:
            return v0 * T * -math.log(x)
        p = (self.alpha - 2.0) / (self.alpha - 1.0)
        return v0 * T * (1.0 - x ** p) / p

    def displacement(self, t: float) -> float:
        v0 = self.creep_mm_per_day / DAY
        if self.onset is None or self.failure is None or t <= self.onset:
            return v0 * (t - self.start)
        u_on = v0 * (self.onset - self.start)
        if not self._factors:
            return u_on + self._smooth(t)
        k = min(int((t - self.onset) // HOUR), len(self._factors) - 1)
        edge = self._hour_edge(k)
        return u_on + self._cumulative[k] + self._factors[k] * (self._smooth(t) - self._smooth(edge))

    def velocity(self, t: float) -> float:
        """mm/s, analytic (without roughness)."""
        v0 = self.creep_mm_per_day / DAY
        if self.onset is None or self.failure is None or t <= self.onset:
            return v0
        x = max(self.failure - t, 1e-3) / (self.failure - self.onset)
        return v0 * x ** (-1.0 / (self.alpha - 1.0))

    def failed(self, t: float) -> bool:
        return self.failure is not None and t >= self.failure
