"""The network registry: sites, their devices and contacts. Loaded from configuration
(see config.py); read-only at run time, replaced whole on reload."""
from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from geowarn.drivers.kinds import KINDS, kind_for_code

# kinds of device that send no readings of their own, only status and command replies
ACTUATOR_KINDS = ("alarm", "video")
# kinds read by people (field reports): no reporting interval, nothing to command
HUMAN_KINDS = ("marker",)
DEVICE_KINDS = (*sorted(KINDS), *ACTUATOR_KINDS)
HAZARDS = ("landslide", "collapse", "debris_flow", "subsidence")
ROLES = ("household", "monitor", "official", "technician", "duty_officer")
DEFAULT_SENSORS = {"gnss": "L1_GP_1", "crack": "L1_LF_1", "tilt": "L1_QJ_1", "rain": "L3_YL_1",
                   "pressure": "L2_YL_1", "accel": "L1_JS_1"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Strict):
    name: str
    role: str = ""
    phone: str | None = None
    # an apprise URL, or a name of a secret resolved from the environment at send time
    url: str | None = None
    lang: Literal["zh", "en"] = "zh"
    tags: tuple[str, ...] = ()


class Device(_Strict):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    kind: str
    site: str = ""  # filled from the enclosing site
    protocol: Literal["national", "native"] = "national"
    sensors: tuple[str, ...] = ()
    interval_s: int = Field(7200, gt=0, le=7 * 86400)
    accelerated_interval_s: int = Field(60, gt=0, le=86400)
    model: str | None = None
    # video units: the camera's still over HTTP (may hold ${ENV} for credentials, resolved at fetch time)
    snapshot_url: str | None = Field(None, pattern=r"^https?://")

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in DEVICE_KINDS:
            raise ValueError(f"unknown device kind {v!r}; expected one of {', '.join(DEVICE_KINDS)}")
        return v

    @field_validator("sensors")
    @classmethod
    def _sensors(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for code in v:
            if kind_for_code(code) is None:
                raise ValueError(f"unknown national sensor code {code!r}")
        return v

    @model_validator(mode="after")
    def _default_sensors(self) -> "Device":
        if not self.sensors and self.kind in DEFAULT_SENSORS:
            object.__setattr__(self, "sensors", (DEFAULT_SENSORS[self.kind],))
        return self


class Site(_Strict):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str
    county: str
    township: str = ""
    # administrative division code of the county (GB/T 2260, 6 digits) or township (9 digits):
    # the geocode of the site's public warnings (CAP)
    division_code: str | None = Field(None, pattern=r"^\d{6}(\d{3})?$")
    hazard: Literal[HAZARDS]  # type: ignore[valid-type]
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    households: int = Field(0, ge=0)
    people: int = Field(0, ge=0)
    contacts: dict[Literal[ROLES], tuple[Contact, ...]] = {}  # type: ignore[valid-type]
    devices: tuple[Device, ...] = ()

    @model_validator(mode="after")
    def _own_devices(self) -> "Site":
        devices = tuple(d.model_copy(update={"site": self.id}) for d in self.devices)
        object.__setattr__(self, "devices", devices)
        return self


class RegistryDoc(BaseModel):
    """The registry as written in configuration, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "geowarn network"
    example: bool = False
    note: str = ""
    sites: tuple[Site, ...]

    @model_validator(mode="after")
    def _unique(self) -> "RegistryDoc":
        for what, ids in (("site", [s.id for s in self.sites]),
                          ("device", [d.id for s in self.sites for d in s.devices])):
            dup = [i for i, n in Counter(ids).items() if n > 1]
            if dup:
                raise ValueError(f"duplicate {what} id {dup[0]!r}")
        return self


class Registry:
    """The registry at run time: plain dict lookups, cheap on the hot path."""

    def __init__(self, doc: RegistryDoc):
        self.doc = doc
        self.name, self.example, self.note = doc.name, doc.example, doc.note
        self.sites: tuple[Site, ...] = doc.sites
        self._sites = {s.id: s for s in doc.sites}
        self._devices = {d.id: d for s in doc.sites for d in s.devices}

    @classmethod
    def from_dict(cls, doc: dict) -> "Registry":
        return cls(RegistryDoc.model_validate(doc))

    def device(self, device_id: str) -> Device | None:
        return self._devices.get(device_id)

    def site(self, site_id: str) -> Site | None:
        return self._sites.get(site_id)

    @property
    def devices(self) -> list[Device]:
        return list(self._devices.values())

    def summary(self) -> dict:
        kinds = Counter(d.kind for d in self._devices.values())
        return {
            "name": self.name,
            "example": self.example,
            "sites": len(self.sites),
            "devices": {k: kinds.get(k, 0) for k in DEVICE_KINDS if kinds.get(k, 0) or k != "accel"},
            "device_total": len(self._devices),
            "counties": dict(Counter(s.county for s in self.sites)),
            "households": sum(s.households for s in self.sites),
            "people": sum(s.people for s in self.sites),
        }
