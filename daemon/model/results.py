"""What the core hands back: signals, site level changes, device faults, failure forecasts.
Plain frozen records; the alert lifecycle and the replay report turn them into messages."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Signal:
    """One series' level changed (the strongest of its detectors)."""

    ts: float
    site: str
    device: str
    kind: str
    channel: str
    level: str
    previous: str
    detector: str
    value: float
    threshold: float
    unit: str
    reason_zh: str
    reason_en: str


@dataclass(frozen=True, slots=True)
class LevelChange:
    ts: float
    site: str
    level: str
    previous: str
    reasons_zh: tuple[str, ...]
    reasons_en: tuple[str, ...]
    evidence: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Fault:
    """A device fault for technicians (active=False: it cleared). Never a household warning."""

    ts: float
    site: str
    device: str
    channel: str | None
    fault: str
    detail: str
    active: bool = True


@dataclass(frozen=True, slots=True)
class Forecast:
    ts: float
    site: str
    device: str
    channel: str
    failure_time: float
    fit_r2: float
    sigma_s: float
    velocity: float  # units/day at the forecast


@dataclass
class CoreResult:
    readings: int = 0
    stale: int = 0  # not newer than what the series already holds (duplicates, late arrivals)
    signals: list[Signal] = field(default_factory=list)
    level_changes: list[LevelChange] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    forecasts: list[Forecast] = field(default_factory=list)

    def extend(self, other: "CoreResult") -> None:
        self.readings += other.readings
        self.stale += other.stale
        self.signals += other.signals
        self.level_changes += other.level_changes
        self.faults += other.faults
        self.forecasts += other.forecasts

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
