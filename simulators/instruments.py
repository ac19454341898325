"""What each kind of instrument reads at an instant: the slope's movement seen through the
instrument, a daily thermal cycle, and instrument noise (GNSS ~2.5 mm horizontal and ~6 mm
vertical per solution; crack meter 0.02 mm; tiltmeter 0.001°). Rain gauges are tipping
buckets of 0.2 mm: they report whole tips, and their counters add up exactly."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .motion import SlopeMotion

DAY = 86400.0
CST = 8 * 3600.0
TIP_MM = 0.2
GNSS_NOISE_H_MM = 2.5
GNSS_NOISE_V_MM = 6.0


def thermal(t: float) -> float:
    """-1..1, warmest mid-afternoon local time (15:00 CST)."""
    return math.cos(2 * math.pi * (((t + CST) % DAY) / DAY - 15.0 / 24.0))


@dataclass
class Instrument:
    """One device's view of its site's movement, through the scenario's gains."""

    kind: str
    motion: SlopeMotion
    rnd: random.Random
    azimuth_deg: float = 135.0
    dip_deg: float = 30.0
    crack_gain: float = 0.8
    tilt_deg_per_mm: float = 0.002
    pressure_kpa_per_mm: float = 0.3
    noise: bool = True
    base: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        r = self.rnd
        # each installation starts somewhere of its own
        self.base = {"width": round(r.uniform(3.0, 25.0), 2), "x": r.uniform(-0.3, 0.3),
                     "y": r.uniform(-0.3, 0.3), "kpa": r.uniform(80.0, 220.0),
                     "thermal_mm": r.uniform(0.03, 0.08)}

    def _n(self, sigma: float) -> float:
        return self.rnd.gauss(0.0, sigma) if self.noise else 0.0

    def read(self, t: float) -> dict[str, float]:
        u = self.motion.displacement(t)
        daily = thermal(t)
        if self.kind == "gnss":
            az, dip = math.radians(self.azimuth_deg), math.radians(self.dip_deg)
            h = u * math.cos(dip)
            return {"dx": round(h * math.sin(az) + self._n(GNSS_NOISE_H_MM), 2),
                    "dy": round(h * math.cos(az) + self._n(GNSS_NOISE_H_MM), 2),
                    "dz": round(-u * math.sin(dip) + self._n(GNSS_NOISE_V_MM), 2)}
        if self.kind == "crack":
            return {"width": round(self.base["width"] + self.crack_gain * u + self.base["thermal_mm"] * daily
                                   + self._n(0.02), 3)}
        if self.kind == "tilt":
            tilt = self.tilt_deg_per_mm * u
            az = math.radians(self.azimuth_deg)
            return {"x": round(self.base["x"] + tilt * math.sin(az) + 0.004 * daily + self._n(0.001), 4),
                    "y": round(self.base["y"] + tilt * math.cos(az) + 0.003 * daily + self._n(0.001), 4)}
        if self.kind == "pressure":
            return {"kpa": round(self.base["kpa"] + self.pressure_kpa_per_mm * u + 1.5 * daily + self._n(0.4), 2)}
        if self.kind == "accel":
            return {"gx": round(self._n(0.002), 4), "gy": round(self._n(0.002), 4),
                    "gz": round(1.0 + self._n(0.002), 4)}
        raise ValueError(f"{self.kind} devices send no readings")


@dataclass
class RainGauge:
    """A tipping bucket: `mm` is whole tips since the last report, `total` the device counter."""

    counter_mm: float = 0.0
    _tips_reported: int = 0
    _rain_so_far: float = 0.0

    def read(self, rain_mm_since_last: float) -> dict[str, float]:
        self._rain_so_far += rain_mm_since_last
        tips = int(self._rain_so_far / TIP_MM + 1e-9)
        mm = (tips - self._tips_reported) * TIP_MM
        self._tips_reported = tips
        return {"mm": round(mm, 1), "total": round(self.counter_mm + tips * TIP_MM, 1)}
