"""Configuration sections `notify:`, `sirens:` and `sampling:` (what engineers tune, as data)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..model.levels import WarningLevelName

# registry roles plus the escalation tiers' own roles, which only `notify.contacts` supplies
Role = str


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelPolicy(_Section):
    roles: tuple[Role, ...]
    # repeat to the same people until someone acknowledges; None: say it once
    repeat_s: float | None = Field(None, gt=0)
    # notify the escalation tiers when nobody acknowledges in time
    escalate: bool = False


class Tier(_Section):
    """A next tier: notified when an alert stays unacknowledged `after_s` at its level."""

    name: str
    after_s: float = Field(gt=0)
    roles: tuple[Role, ...]


class ExtraContact(_Section):
    """A contact beyond the registry's per-site lists (township head, county duty office …).
    Applies to the sites it names, else to the sites of its township/county, else to all."""

    name: str
    role: Role
    url: str  # an apprise URL; `${ENV_NAME}` is replaced from the environment at send time
    lang: Literal["zh", "en"] = "zh"
    county: str | None = None
    township: str | None = None
    sites: tuple[str, ...] = ()


class RetrySettings(_Section):
    # exponential backoff between delivery attempts of one outbox row
    base_s: float = Field(5.0, gt=0)
    max_s: float = Field(300.0, gt=0)
    # after this many failed attempts a contact is reported to technicians (still retried)
    report_failing_after: int = Field(5, ge=1)


def _default_levels() -> dict[str, LevelPolicy]:
    return {
        "blue": LevelPolicy(roles=("monitor", "duty_officer")),
        "yellow": LevelPolicy(roles=("monitor", "duty_officer", "official")),
        "orange": LevelPolicy(roles=("monitor", "duty_officer", "official", "household"),
                              repeat_s=1800, escalate=True),
        "red": LevelPolicy(roles=("monitor", "duty_officer", "official", "household"),
                           repeat_s=600, escalate=True),
    }


class NotifySettings(_Section):
    levels: dict[WarningLevelName, LevelPolicy] = Field(default_factory=_default_levels)
    # device faults: per fault name, else `default`; households are refused here
    fault_roles: dict[str, tuple[Role, ...]] = {"default": ("technician",),
                                                "siren_failed": ("monitor", "technician")}
    escalation: tuple[Tier, ...] = (Tier(name="乡镇（街道）主要负责人", after_s=900, roles=("township_head",)),
                                    Tier(name="县（区）地质灾害防治值班室", after_s=1800, roles=("county_duty_office",)))
    # how a registry contact with a phone and no URL is reached, e.g.
    # "smpp://${SMPP_USER}:${SMPP_PASSWORD}@smsc.example:2775/10690000/{phone}";
    # placeholders {phone} {site} {role} {county}; ${ENV} resolved at send time
    phone_url: str | None = None
    # per role, overriding phone_url: e.g. households by SMS (smpp://), monitors by another gateway
    phone_url_by_role: dict[Role, str] = {}
    contacts: tuple[ExtraContact, ...] = ()
    # an apprise configuration file (YAML or TEXT); its URLs are selected by tags:
    # a role tag plus the site id, township, county or `all`
    apprise_config: str | None = None
    templates_dir: str | None = None  # overrides of the built-in message templates
    timezone: str = "Asia/Shanghai"
    ack_url: str | None = None  # shown in messages, `{id}` replaced, e.g. https://host/alerts/{id}
    retry: RetrySettings = RetrySettings()
    # acknowledgements over MQTT, `{"alert": "A12", "by": "王霞"}`; who may publish here is the
    # broker's ACL to decide (field handsets, the alarm units' buttons); None: off
    mqtt_ack_topic: str | None = "geowarn/v1/ack"

    @field_validator("fault_roles")
    @classmethod
    def _no_households_for_faults(cls, v: dict[str, tuple[Role, ...]]) -> dict[str, tuple[Role, ...]]:
        for fault, roles in v.items():
            if "household" in roles:
                raise ValueError(f"device faults never go to households (fault_roles.{fault})")
        if "default" not in v:
            raise ValueError("fault_roles needs a `default` entry")
        return v

    @field_validator("levels", mode="before")
    @classmethod
    def _levels_over_defaults(cls, v: object) -> object:
        # a configuration names only the levels it changes; the others keep their defaults
        if isinstance(v, dict):
            return {**_default_levels(), **v}
        return v


class SiteSirens(_Section):
    levels: tuple[WarningLevelName, ...] | None = None
    enabled: bool = True


class SirenSettings(_Section):
    levels: tuple[WarningLevelName, ...] = ("red",)
    drills: bool = True  # drills sound the alarms too (the broadcast says 演练)
    alarm_type: str = "L1_LF"  # national `type=`: the sensor code the alarm refers to
    broadcast: bool = True
    broadcast_repeat: int = Field(3, ge=1, le=99)
    reply_timeout_s: float = Field(15.0, gt=0)
    retries: int = Field(2, ge=0)  # re-sends after the first attempt before "siren_failed"
    sites: dict[str, SiteSirens] = {}

    def levels_for(self, site: str) -> tuple[str, ...]:
        over = self.sites.get(site)
        if over is not None and not over.enabled:
            return ()
        return over.levels if over is not None and over.levels is not None else self.levels


class DeviceCommand(_Section):
    """One command; params may use {sensor_id} {interval_s} {accelerated_interval_s}."""

    name: str
    params: dict[str, str | int | float] = {}


class CommandSet(_Section):
    accelerate: tuple[DeviceCommand, ...]
    restore: tuple[DeviceCommand, ...]


class SamplingSettings(_Section):
    accelerate_at: WarningLevelName | None = "yellow"  # None: never change the devices' reporting
    reply_timeout_s: float = Field(30.0, gt=0)
    retries: int = Field(2, ge=0)
    national: CommandSet = CommandSet(
        accelerate=(DeviceCommand(name="setworkmode", params={"mode": 2}),),
        restore=(DeviceCommand(name="setworkmode", params={"mode": 0}),
                 DeviceCommand(name="setsensortime", params={"sensor_id": "{sensor_id}",
                                                             "sample_intv": "{interval_s}",
                                                             "upload_intv": "{interval_s}"})))
    native: CommandSet = CommandSet(
        accelerate=(DeviceCommand(name="setsensortime", params={"sample_intv": "{accelerated_interval_s}",
                                                                "upload_intv": "{accelerated_interval_s}"}),),
        restore=(DeviceCommand(name="setsensortime", params={"sample_intv": "{interval_s}",
                                                             "upload_intv": "{interval_s}"}),))
