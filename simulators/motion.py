"""Slope movement: steady creep, then Voight's accelerating creep to failure.

Voight (1988): the acceleration follows a = A·v^α. Integrated, the velocity before failure is
v(t) = v0·((t_f − t)/T)^(−1/(α−1)) with T = t_f − t_onset and v0 the creep rate at the onset,
so 1/v is a straight line reaching zero at t_f for α = 2 (Fukuzono's inverse-velocity method
rests on that). Displacement is the exact integral, so a noise-free series differentiates back
to the law.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

DAY = 86400.0


@dataclass(frozen=True)
class SlopeMotion:
    """Displacement along the slope (mm), from `start`."""

    start: float
    creep_mm_per_day: float
    onset: float | None = None  # epoch s; None: creep forever
    failure: float | None = None  # epoch s (t_f)
    alpha: float = 2.0

    def displacement(self, t: float) -> float:
        v0 = self.creep_mm_per_day / DAY
        if self.onset is None or self.failure is None or t <= self.onset:
            return v0 * (t - self.start)
        u_on = v0 * (self.onset - self.start)
        T = self.failure - self.onset
        x = max(self.failure - t, 1e-3) / T  # just before t_f at the latest: the slope is gone after
        if abs(self.alpha - 2.0) < 1e-9:
            return u_on + v0 * T * -math.log(x)
        p = (self.alpha - 2.0) / (self.alpha - 1.0)
        return u_on + v0 * T * (1.0 - x ** p) / p

    def velocity(self, t: float) -> float:
        """mm/s, analytic."""
        v0 = self.creep_mm_per_day / DAY
        if self.onset is None or self.failure is None or t <= self.onset:
            return v0
        x = max(self.failure - t, 1e-3) / (self.failure - self.onset)
        return v0 * x ** (-1.0 / (self.alpha - 1.0))

    def failed(self, t: float) -> bool:
        return self.failure is not None and t >= self.failure
