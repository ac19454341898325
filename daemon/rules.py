"""Alert rules: which detectors judge which sensor kinds, with what thresholds.

Rules live in YAML in a rules directory (by default the packaged `alert_rules/`):
`defaults.yaml` holds the site-fusion settings and one rule per sensor kind, and may carry
`sites:` and `devices:` override sections; `sites/<SITE>.yaml` files override one site
(`site:`, `kinds:`, `devices:`). Overrides are deep-merged over the defaults (a mapping merges,
anything else replaces; `null` switches a detector off). Every error names file, line and key.
Parameters, units and sources are documented in alert_rules/README.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .config import ConfigError, _read_yaml, _validate
from .model.levels import Level, LevelName
from .model.slots import RAIN_WINDOWS_H


class _R(BaseModel):
    # a NaN threshold compares false with everything: it would silently never fire
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Levels(_R):
    """Thresholds of the four levels (a level left out is never raised by this test)."""

    blue: float | None = None
    yellow: float | None = None
    orange: float | None = None
    red: float | None = None

    @model_validator(mode="after")
    def _ascending(self) -> "Levels":
        vals = [v for v in (self.blue, self.yellow, self.orange, self.red) if v is not None]
        if any(b <= a for a, b in zip(vals, vals[1:])):
            raise ValueError("thresholds must increase from blue to red")
        return self

    def table(self) -> np.ndarray:
        """[blue, yellow, orange, red]; NaN where a level is not used."""
        return np.array([np.nan if v is None else v for v in (self.blue, self.yellow, self.orange, self.red)])


class Horizon(_R):
    """Forecast horizons (hours): a predicted failure closer than a horizon raises its level."""

    yellow: float | None = Field(168.0, gt=0)
    orange: float | None = Field(72.0, gt=0)
    red: float | None = Field(24.0, gt=0)

    @model_validator(mode="after")
    def _descending(self) -> "Horizon":
        vals = [v for v in (self.yellow, self.orange, self.red) if v is not None]
        if any(b >= a for a, b in zip(vals, vals[1:])):
            raise ValueError("horizons must shrink from yellow to red")
        return self

    def table(self) -> np.ndarray:
        """[blue, yellow, orange, red] horizons in seconds (blue unused)."""
        return np.array([np.nan] + [np.nan if v is None else v * 3600.0 for v in (self.yellow, self.orange, self.red)])


class ThresholdRule(_R):
    enabled: bool = True
    absolute: Levels | None = None
    change: Levels | None = None
    change_window_h: float = Field(720.0, gt=0, le=720)
    rate: Levels | None = None
    rate_window_h: float = Field(72.0, ge=2, le=720)
    rate_min_points: int = Field(4, ge=3, le=64)


class TangentRule(_R):
    enabled: bool = True
    v_ref: float | None = Field(None, gt=0)
    baseline_days: float = Field(14.0, ge=2, le=170)
    baseline_lag_days: float = Field(7.0, ge=0, le=60)
    v_ref_min: float = Field(0.2, gt=0)
    v_min: float = Field(1.0, ge=0)
    velocity_window_h: float = Field(72.0, ge=6, le=240)
    alpha: Levels = Levels(yellow=55.0, orange=80.0, red=85.0)
    # red (imminent failure) only while an inverse-velocity fit confirms steady acceleration:
    # a lone burst of a slope that stood still (tiny v) gives any angle near 90 degrees
    red_needs_forecast: bool = True


class InverseVelocityRule(_R):
    enabled: bool = True
    window_h: float = Field(336.0, ge=24, le=696)
    smooth_h: float = Field(24.0, ge=4, le=72)
    min_points: int = Field(8, ge=4)
    min_r2: float = Field(0.8, gt=0, le=1)
    strong_r2: float = Field(0.9, gt=0, le=1)
    v_min: float = Field(2.0, ge=0)
    horizon_h: Horizon = Horizon()


class TrendRule(_R):
    enabled: bool = True
    tangent: TangentRule = TangentRule()
    inverse_velocity: InverseVelocityRule = InverseVelocityRule()


class AntecedentRule(_R):
    k: float = Field(0.84, gt=0, lt=1)
    days: int = Field(15, ge=1, le=120)
    levels: Levels | None = None


class IntensityDurationRule(_R):
    a: float = Field(14.82, gt=0)
    b: float = Field(0.39, ge=0)
    durations_h: tuple[float, ...] = RAIN_WINDOWS_H
    level: LevelName = "blue"

    @model_validator(mode="after")
    def _durations(self) -> "IntensityDurationRule":
        bad = [d for d in self.durations_h if d not in RAIN_WINDOWS_H]
        if bad:
            raise ValueError(f"durations_h must be among {list(RAIN_WINDOWS_H)}, got {bad[0]}")
        return self


class RainfallRule(_R):
    enabled: bool = True
    totals_mm: dict[Literal[1, 3, 6, 12, 24, 72], Levels | None] = {}
    antecedent: AntecedentRule | None = AntecedentRule()
    intensity_duration: IntensityDurationRule | None = IntensityDurationRule()


class QualityRule(_R):
    hampel_window: int = Field(16, ge=5, le=64)
    hampel_k: float = Field(5.0, gt=0)
    spike_floor: float = Field(1.0, ge=0)
    jump: float | None = Field(None, gt=0)
    jump_step: float | None = Field(None, gt=0)
    flatline_h: float | None = Field(None, gt=0)
    range: dict[str, tuple[float, float]] = {}
    offline_factor: float = Field(3.0, ge=1)
    low_battery_pct: float = Field(20.0, ge=0, le=100)


class KindRule(_R):
    channels: tuple[str, ...] = ()  # channels judged for warnings; others get quality checks only
    threshold: ThresholdRule | None = None
    trend: TrendRule | None = None
    rainfall: RainfallRule | None = None
    quality: QualityRule = QualityRule()


_EMPTY_KIND = KindRule()  # a kind without rules: quality defaults only


class SiteRule(_R):
    corroboration: bool = True
    single_max: LevelName = "yellow"  # the highest level one instrument alone may set
    corroborate_min: LevelName = "blue"  # what a second instrument or rain must reach to agree
    strong_forecast_corroborates: bool = True
    hold_h: float = Field(24.0, ge=0)
    hold_red_h: float = Field(48.0, ge=0)

    @property
    def single_max_i(self) -> int:
        return Level.of(self.single_max)

    @property
    def corroborate_min_i(self) -> int:
        return Level.of(self.corroborate_min)


class MarkerRule(_R):
    """Crack markers read by monitors (Dynaslope surficial practice): movement per hour between
    two readings; the middle level and above need a trend (the interval before also moving)."""

    rate_mm_h: Levels = Levels(blue=0.5, yellow=1.0, orange=2.5, red=18.0)
    trend_check_from: LevelName = "orange"
    trend_min: LevelName = "blue"  # what the interval before must reach to confirm a trend
    min_interval_h: float = Field(0.25, gt=0)  # closer readings are one reading re-taken
    min_displacement_mm: float = Field(10.0, ge=0)  # Dynaslope: less between two readings is tape error
    max_step_mm: float = Field(2000.0, gt=0)  # more between two readings: a misread or re-set pegs


class ObservationRule(_R):
    level: LevelName
    zh: str
    en: str


class FieldRule(_R):
    markers: MarkerRule = MarkerRule()
    observations: dict[str, ObservationRule] = {}
    observation_valid_h: float = Field(24.0, gt=0)  # an observation stands this long
    auto_register_markers: bool = True  # a site without declared markers takes new marker names
    max_markers_per_site: int = Field(20, ge=1)
    marker_pattern: str = r"^[A-Za-z0-9]{1,8}$"


class WeatherRule(_R):
    """Meteorological geohazard risk warnings: only corroborate, never warn on their own."""

    levels: dict[str, LevelName] = {"blue": "blue", "yellow": "yellow", "orange": "orange", "red": "red"}
    accelerate_from: str = "yellow"  # warning level from which the area's devices report faster
    patrol_from: str = "yellow"  # ...and monitors are sent to patrol
    reminder_h: float = Field(2.0, gt=0)  # no field report from the site this long after: remind


class RuleDefaults(_R):
    site: SiteRule = SiteRule()
    field: FieldRule = FieldRule()
    weather: WeatherRule = WeatherRule()
    kinds: dict[str, KindRule] = {}
    sites: dict[str, dict[str, Any]] = {}
    devices: dict[str, dict[str, Any]] = {}


@dataclass
class _Override:
    source: str
    node: yaml.Node | None
    prefix: list  # where the override sits inside its file
    doc: dict


@dataclass
class Rules:
    """Resolved rules. `for_device` and `for_site` merge overrides once and cache the result."""

    source: str
    site_default: SiteRule
    kinds: dict[str, KindRule]
    _raw_kinds: dict[str, dict] = field(repr=False)
    _raw_site: dict = field(repr=False)
    site_overrides: dict[str, list[_Override]] = field(default_factory=dict, repr=False)
    device_overrides: dict[str, list[_Override]] = field(default_factory=dict, repr=False)
    kind_overrides: dict[str, dict[str, list[_Override]]] = field(default_factory=dict, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)
    field_rule: FieldRule = field(default_factory=FieldRule)
    weather: WeatherRule = field(default_factory=WeatherRule)

    def for_site(self, site: str) -> SiteRule:
        key = ("site", site)
        if key not in self._cache:
            raw, rule = self._raw_site, self.site_default
            for ov in self.site_overrides.get(site, []):
                raw = deep_merge(raw, ov.doc)
                rule = _checked(SiteRule, raw, ov)
            self._cache[key] = rule
        return self._cache[key]

    def for_device(self, kind: str, site: str = "", device: str = "") -> KindRule:
        key = (kind, site, device)
        if key not in self._cache:
            raw = self._raw_kinds.get(kind, {})
            rule = self.kinds.get(kind) or _EMPTY_KIND
            for ov in [*self.kind_overrides.get(site, {}).get(kind, []), *self.device_overrides.get(device, [])]:
                raw = deep_merge(raw, ov.doc)
                rule = _checked(KindRule, raw, ov)
            self._cache[key] = rule
        return self._cache[key]

    def check_all(self, pairs: list[tuple[str, str, str]]) -> None:
        """Resolve every (kind, site, device) and every overridden site now, so errors surface
        at `geowarn check` and at start, not on the first reading."""
        for kind, site, device in pairs:
            self.for_device(kind, site, device)
        for site in self.site_overrides:
            self.for_site(site)
        for site, kinds in self.kind_overrides.items():
            for kind in kinds:
                self.for_device(kind, site, "")
        for ovs in self.device_overrides.values():
            for ov in ovs:  # a device override for an unknown device is still checked against its doc
                _checked(KindRule, ov.doc, ov)


def deep_merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = deep_merge(base.get(k), v) if k in base else v
        return out
    return over


def _checked(model: type[BaseModel], doc: Any, ov: _Override):
    node = _node_at(ov.node, ov.prefix)
    if not isinstance(doc, dict):
        raise ConfigError(ov.source, _place(ov.prefix), "must be a mapping", node.start_mark.line + 1 if node else None)
    try:
        return _validate(model, doc, ov.source, node)
    except ConfigError as e:
        place = ".".join(str(p) for p in ov.prefix) + ("." + e.place.replace(".[key]", "") if e.place else "")
        raise ConfigError(e.file, place, e.problem, e.line) from None


def _place(prefix: list) -> str:
    return ".".join(str(p) for p in prefix)


def _node_at(node: yaml.Node | None, path: list) -> yaml.Node | None:
    for p in path:
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((v for k, v in node.value if str(k.value) == str(p)), None)
    return node


def default_rules_dir() -> Path:
    return Path(str(resources.files("geowarn.alert_rules")))


def load_rules(directory: str | Path | None = None) -> Rules:
    """Load and validate a rules directory; raises ConfigError naming file, line and key."""
    base = Path(directory) if directory is not None else default_rules_dir()
    path = base / "defaults.yaml"
    doc, text = _read_yaml(path)
    root = text.root  # rule files are small: their node tree locates errors in overrides too
    if not isinstance(doc, dict):
        raise ConfigError(str(path), "", "the top level must be a mapping")
    defaults = _validate(RuleDefaults, doc, str(path), root)
    rules = Rules(source=str(base), site_default=defaults.site, kinds=dict(defaults.kinds),
                  _raw_kinds={k: dict(v) for k, v in (doc.get("kinds") or {}).items()},
                  _raw_site=dict(doc.get("site") or {}), field_rule=defaults.field, weather=defaults.weather)
    _collect(rules, doc.get("sites") or {}, doc.get("devices"), str(path), root, ["sites"], ["devices"])
    site_dir = base / "sites"
    for f in sorted(site_dir.glob("*.yaml")) if site_dir.is_dir() else []:
        sdoc, stext = _read_yaml(f)
        snode = stext.root
        if sdoc is None:
            continue
        if not isinstance(sdoc, dict):
            raise ConfigError(str(f), "", "the top level must be a mapping")
        unknown = set(sdoc) - {"site", "kinds", "devices"}
        if unknown:
            key = sorted(unknown)[0]
            kn = _node_at(snode, [key])
            raise ConfigError(str(f), key, "unknown section; expected site, kinds or devices",
                              kn.start_mark.line + 1 if kn else None)
        _collect(rules, {f.stem: {k: v for k, v in sdoc.items() if k != "devices"}}, sdoc.get("devices"),
                 str(f), snode, [], ["devices"], file_is_site=True)
    rules.check_all([])
    return rules


def _collect(rules: Rules, sites: dict, devices: dict, source: str, root, site_prefix: list, dev_prefix: list,
             file_is_site: bool = False) -> None:
    for site, sdoc in sites.items():
        prefix = [] if file_is_site else [*site_prefix, site]
        if not isinstance(sdoc, dict):
            raise ConfigError(source, _place(prefix) or str(site), "must be a mapping")
        extra = set(sdoc) - {"site", "kinds"}
        if extra:
            raise ConfigError(source, _place([*prefix, sorted(extra)[0]]), "unknown key; expected site or kinds")
        if sdoc.get("site") is not None:
            rules.site_overrides.setdefault(str(site), []).append(
                _Override(source, root, [*prefix, "site"], sdoc["site"]))
        kinds = _mapping(sdoc.get("kinds"), source, root, [*prefix, "kinds"])
        for kind, kdoc in kinds.items():
            rules.kind_overrides.setdefault(str(site), {}).setdefault(str(kind), []).append(
                _Override(source, root, [*prefix, "kinds", kind], kdoc))
    for dev, ddoc in _mapping(devices, source, root, dev_prefix).items():
        rules.device_overrides.setdefault(str(dev), []).append(_Override(source, root, [*dev_prefix, dev], ddoc))


def _mapping(doc: Any, source: str, root, prefix: list) -> dict:
    """An override section: absent, or a mapping (a list here is an easy indentation slip)."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        node = _node_at(root, prefix)
        raise ConfigError(source, _place(prefix), "must be a mapping", node.start_mark.line + 1 if node else None)
    return doc


def rules_for_config(cfg) -> Rules:
    """The rules a configuration names (settings `rules:`), checked against its registry."""
    directory = None
    if cfg.settings.rules is not None:
        directory = (Path(cfg.source).parent / cfg.settings.rules).resolve()
        if not (directory / "defaults.yaml").is_file():
            raise ConfigError(cfg.source, "rules", f"no defaults.yaml in rules directory {directory}")
    rules = load_rules(directory)
    rules.check_all([(d.kind, d.site, d.id) for d in cfg.registry.devices])
    return rules
