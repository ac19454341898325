"""A field device's power: a 12 V battery drained by the logger and each transmission, charged
by a solar panel in daylight (China Standard Time, UTC+8), less under rain. A healthy station
stays near full; one with a broken panel (`no_solar`) is flat in about six days."""
from __future__ import annotations

import math
from dataclasses import dataclass

HOUR = 3600.0
CST = 8 * HOUR  # Hunan's local time, for sunrise and sunset
DRAIN_PCT_PER_H = 0.6
TX_PCT = 0.02  # one uplink transmission
SOLAR_PEAK_PCT_PER_H = 4.0


def sun(t: float) -> float:
    """0 at night, up to 1 at local noon (06:00-18:00 CST)."""
    hour = ((t + CST) % 86400.0) / HOUR
    return max(0.0, math.sin(math.pi * (hour - 6.0) / 12.0)) if 6.0 <= hour <= 18.0 else 0.0


@dataclass
class Battery:
    pct: float = 95.0
    t: float = 0.0

    def advance(self, t: float, solar_ok: bool = True, rain: bool = False) -> None:
        """Integrate charge and drain up to t, in steps of at most an hour (midpoint sun)."""
        while self.t < t:
            dt = min(t - self.t, HOUR)
            mid = self.t + dt / 2
            charge = SOLAR_PEAK_PCT_PER_H * sun(mid) * (0.25 if rain else 1.0) if solar_ok else 0.0
            self.pct = min(100.0, max(0.0, self.pct + (charge - DRAIN_PCT_PER_H) * dt / HOUR))
            self.t += dt

    def transmit(self) -> None:
        self.pct = max(0.0, self.pct - TX_PCT)

    def volts(self) -> float:
        return 11.4 + 1.6 * self.pct / 100.0

    def solar_volts(self, t: float, solar_ok: bool = True) -> float:
        return 18.5 * sun(t) if solar_ok else 0.0
