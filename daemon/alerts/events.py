"""What the alert lifecycle takes in: site level changes and device faults.

The detector core emits these; nothing else decides alerts. Levels follow the four-level
national scheme: blue 注意级 < yellow 警示级 < orange 警戒级 < red 警报级.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..model.levels import Level


def _check_ts(name: str, ts: float | None) -> None:
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts)):
        raise ValueError(f"{name} must be finite epoch seconds, got {ts!r}")


@dataclass(frozen=True, slots=True)
class SiteLevelChange:
    """The core's site level moved (corroboration and hysteresis already applied).
    `level == "normal"` is the all-clear after the core's hold time."""

    site: str
    ts: float
    level: str
    previous: str
    reasons: list[str] = field(default_factory=list)
    forecast_failure_ts: float | None = None
    drill: bool = False

    def __post_init__(self) -> None:
        Level.of(self.level)  # ValueError for anything but a level's key
        Level.of(self.previous)
        _check_ts("ts", self.ts)
        _check_ts("forecast_failure_ts", self.forecast_failure_ts)
        if not self.site:
            raise ValueError("site must not be empty")


@dataclass(frozen=True, slots=True)
class DeviceFault:
    """A data-quality or device problem (offline, spike, flatline, low_battery, sensor_state,
    gnss_jump, siren_failed, contact_failing …). `active=False` clears it. For technicians;
    never routed to households."""

    site: str
    device: str
    fault: str
    ts: float
    detail: str = ""
    active: bool = True
    drill: bool = False

    def __post_init__(self) -> None:
        _check_ts("ts", self.ts)
        if not self.site or not self.fault:
            raise ValueError("site and fault must not be empty")
