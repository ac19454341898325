"""Scenarios: what happens to the network (storms, a slope accelerating to failure, device
faults) and what the warning chain is expected to do about it. Written in YAML under
`simulators/scenarios/`, validated here; every problem names the file, the line and the key.

Times are hours from the start of the simulation (`*_h`). The expectation schema (`expect:`)
is what a drill runner checks the service against; the simulator itself only plays the world.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from geowarn.daemon.config import ConfigError, _line_of, _read_yaml, _validate, place
from geowarn.daemon.model.levels import LevelName
from geowarn.daemon.registry import ROLES, Registry
from geowarn.drivers.kinds import KINDS

Role = Literal[ROLES]  # type: ignore[valid-type]
FaultType = Literal["offline", "spike", "flatline", "jump", "broken_siren", "no_solar"]
# what a technician should be told about a device; the detector side names these
DeviceFaultName = Literal["offline", "spike", "flatline", "jump", "siren_failed", "low_battery"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Storm(_Strict):
    """Rain over some sites: either an explicit hyetograph (`hourly_mm`, one value per hour from
    `start_h`) or a total spread over `duration_h` in a bell shape. Each site gets between
    (1 - spread) and 1 times the stated amounts, so the numbers written here are the maximum."""

    sites: tuple[str, ...] = ()
    county: str | None = None  # every site of the county (rain falls on sites without a gauge too)
    start_h: float = Field(ge=0)
    hourly_mm: tuple[float, ...] | None = None
    total_mm: float | None = Field(None, gt=0)
    duration_h: float | None = Field(None, gt=0)
    spread: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _one_shape(self) -> "Storm":
        if not self.sites and not self.county:
            raise ValueError("a storm needs `sites:` or `county:`")
        if (self.hourly_mm is None) == (self.total_mm is None):
            raise ValueError("give either hourly_mm or total_mm with duration_h")
        if self.total_mm is not None and self.duration_h is None:
            raise ValueError("total_mm needs duration_h")
        if self.hourly_mm is not None and any(v < 0 or v > 300 for v in self.hourly_mm):
            raise ValueError("hourly_mm values must be within 0..300 mm")
        return self

    @property
    def length_h(self) -> float:
        return float(len(self.hourly_mm)) if self.hourly_mm is not None else float(self.duration_h or 0)


class Acceleration(_Strict):
    """A slope creeping at `creep_mm_per_day`, accelerating from `onset_h` to failure at
    `failure_h` after Voight's law: 1/v falls as (t_f - t)^(1/(α-1)), linearly for α = 2.
    Displacement is along the slope (azimuth, dip); each instrument sees it through its gain."""

    site: str
    creep_mm_per_day: float = Field(1.0, gt=0, le=1000)
    onset_h: float = Field(ge=0)
    failure_h: float = Field(gt=0)
    alpha: float = Field(2.0, ge=1.5, le=3.0)
    roughness: float = Field(0.0, ge=0, le=1.0)  # hour-to-hour scatter of the movement (σ, log-normal)
    azimuth_deg: float = Field(135.0, ge=0, lt=360)
    dip_deg: float = Field(30.0, ge=0, le=90)
    crack_gain: float = Field(0.8, ge=0)  # crack opening per mm of slope movement
    tilt_deg_per_mm: float = Field(0.002, ge=0)
    pressure_kpa_per_mm: float = Field(0.3, ge=0)

    @model_validator(mode="after")
    def _order(self) -> "Acceleration":
        if self.failure_h <= self.onset_h:
            raise ValueError(f"failure_h ({self.failure_h}) must come after onset_h ({self.onset_h})")
        return self


class Fault(_Strict):
    """A device misbehaving from `start_h` (until `end_h`, or the end)."""

    device: str
    type: FaultType
    start_h: float = Field(0.0, ge=0)
    end_h: float | None = None
    magnitude: float | None = None  # spike / jump size, in the channel's unit (mm, °); a jump lasts until end_h
    every_h: float | None = Field(None, gt=0)  # spike: repeat this often inside the window
    channels: tuple[str, ...] = ()  # default: every channel of the device
    reply: Literal["fail", "none"] = "none"  # broken_siren: answer fail, or not at all

    @model_validator(mode="after")
    def _needs(self) -> "Fault":
        if self.type in ("spike", "jump") and self.magnitude is None:
            raise ValueError(f"a {self.type} fault needs `magnitude`")
        if self.end_h is not None and self.end_h <= self.start_h:
            raise ValueError("end_h must come after start_h")
        return self

    def active(self, hours: float) -> bool:
        return hours >= self.start_h and (self.end_h is None or hours < self.end_h)


class DeviceFaultExpectation(_Strict):
    device: str
    fault: DeviceFaultName


class Expect(_Strict):
    """What the warning chain should do. Sites named in neither `levels` nor `max_levels` must
    stay at or below `others_max_level`."""

    levels: dict[str, LevelName] = {}  # highest level each site must reach
    max_levels: dict[str, LevelName] = {}  # sites that may rise, but no higher than this
    others_max_level: LevelName = "normal"  # every site named in neither
    notified: dict[str, tuple[Role, ...]] = {}  # site -> roles that must get a warning
    not_notified: dict[str, tuple[Role, ...]] = {}  # site -> roles that must not
    device_faults: tuple[DeviceFaultExpectation, ...] = ()  # raised to technicians
    no_household_warning: bool = False  # nothing at all may reach a household
    min_lead_time_h: float | None = Field(None, ge=0)  # first warning at >= lead_level before t_f
    lead_level: LevelName = "yellow"
    sirens: dict[str, Literal["succ", "fail", "none"]] = {}  # alarm device -> its reply
    accelerated_sites: tuple[str, ...] = ()  # sites told to report faster (yellow and above)

    @model_validator(mode="after")
    def _consistent(self) -> "Expect":
        both = sorted(set(self.levels) & set(self.max_levels))
        if both:
            raise ValueError(f"site {both[0]} is in both levels and max_levels")
        if self.no_household_warning:
            for site, roles in self.notified.items():
                if "household" in roles:
                    raise ValueError(f"no_household_warning contradicts notified.{site} naming household")
        return self


class Scenario(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    description: str = ""
    duration_h: float = Field(gt=0, le=60 * 24)
    speed: float = Field(3600.0, gt=0)  # a sensible speed for drills
    seed: int = 1
    background_rain: bool = True  # light random showers everywhere (never near a threshold)
    storms: tuple[Storm, ...] = ()
    accelerations: tuple[Acceleration, ...] = ()
    faults: tuple[Fault, ...] = ()
    expect: Expect

    @model_validator(mode="after")
    def _within(self) -> "Scenario":
        for i, a in enumerate(self.accelerations):
            if a.failure_h > self.duration_h:
                raise ValueError(f"accelerations[{i}].failure_h {a.failure_h} is after duration_h {self.duration_h}")
        if self.expect.min_lead_time_h is not None and not self.accelerations:
            raise ValueError("expect.min_lead_time_h needs a failure: add `accelerations:`")
        return self

    @property
    def failures_h(self) -> dict[str, float]:
        return {a.site: a.failure_h for a in self.accelerations}


def scenarios_dir() -> Path:
    return Path(str(resources.files("geowarn.simulators") / "scenarios"))


def list_scenarios() -> list[str]:
    return sorted(p.stem for p in scenarios_dir().glob("*.yaml"))


def load_scenario(name_or_path: str | Path, registry: Registry | None = None) -> Scenario:
    """A shipped scenario by name, or any scenario file by path. With a registry, every site,
    county and device it names must exist there. Raises ConfigError (file:line: key: problem)."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = scenarios_dir() / f"{name_or_path}.yaml"
        if not path.exists():
            raise ConfigError(str(name_or_path), "", f"no such scenario; shipped: {', '.join(list_scenarios())}")
    doc, node = _read_yaml(path)
    if not isinstance(doc, dict):
        raise ConfigError(str(path), "", "the top level must be a mapping")
    scenario = _validate(Scenario, doc, str(path), node)
    if scenario.name != path.stem:
        raise ConfigError(str(path), "name", f"{scenario.name!r} must match the file name {path.stem!r}",
                          _key_line(node, "name"))
    if registry is not None:
        check_references(scenario, registry, str(path), node)
    return scenario


def check_references(scenario: Scenario, registry: Registry, source: str = "", node=None) -> None:
    """Every site, county, device and channel the scenario names exists in the registry."""
    sites = {s.id for s in registry.sites}
    counties = {s.county for s in registry.sites}

    def fail(loc: list, problem: str):
        raise ConfigError(source or scenario.name, place(loc), problem,
                          _line_of(node.root if node is not None else None, loc))

    for i, s in enumerate(scenario.storms):
        for j, site in enumerate(s.sites):
            if site not in sites:
                fail(["storms", i, "sites", j], f"site {site!r} is not in the registry")
        if s.county and s.county not in counties:
            fail(["storms", i, "county"], f"county {s.county!r} is not in the registry")
    for i, a in enumerate(scenario.accelerations):
        if a.site not in sites:
            fail(["accelerations", i, "site"], f"site {a.site!r} is not in the registry")
    for i, f in enumerate(scenario.faults):
        dev = registry.device(f.device)
        if dev is None:
            fail(["faults", i, "device"], f"device {f.device!r} is not in the registry")
        if f.type == "broken_siren" and dev.kind != "alarm":
            fail(["faults", i, "type"], f"broken_siren needs an alarm device, {f.device} is a {dev.kind}")
        known = KINDS[dev.kind].channels if dev.kind in KINDS else {}
        for j, ch in enumerate(f.channels):
            if ch not in known:
                fail(["faults", i, "channels", j], f"a {dev.kind} has no channel {ch!r}; it has {', '.join(known)}")
    e = scenario.expect
    for key, ids in (("levels", e.levels), ("max_levels", e.max_levels), ("notified", e.notified),
                     ("not_notified", e.not_notified), ("accelerated_sites", e.accelerated_sites)):
        for site in ids:
            if site not in sites:
                fail(["expect", key, site], f"site {site!r} is not in the registry")
    for i, d in enumerate(e.device_faults):
        if registry.device(d.device) is None:
            fail(["expect", "device_faults", i, "device"], f"device {d.device!r} is not in the registry")
    for dev in e.sirens:
        if getattr(registry.device(dev), "kind", None) != "alarm":
            fail(["expect", "sirens", dev], f"device {dev!r} is not an alarm of the registry")


def _key_line(node, key: str) -> int | None:
    return _line_of(node.root if node is not None else None, [key])
