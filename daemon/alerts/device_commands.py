"""Commands to a site's devices, in each device's own wire format: sound the alarms (and
speak the broadcast text) at siren levels; accelerate reporting at yellow and above, restore it
on all-clear. They become outbox rows like every message."""
from __future__ import annotations

from typing import Any

from geowarn.drivers.formats import format_classes

from ..model.levels import Level
from ..registry import ACTUATOR_KINDS, HUMAN_KINDS, Device, Registry, Site
from .messages import Renderer
from .outbox import OutCommand, msgid_for
from .settings import DeviceCommand, SamplingSettings, SirenSettings

PRIORITY_ALARM, PRIORITY_BROADCAST, PRIORITY_SAMPLING = 0, 1, 5


class CommandPlanner:
    def __init__(self, registry: Registry, sirens: SirenSettings, sampling: SamplingSettings, renderer: Renderer):
        self.sirens = sirens
        self.sampling = sampling
        self.renderer = renderer
        self.formats = {name: cls(registry) for name, cls in format_classes().items()}

    def command(self, alert_id: int | None, key: str, site: Site, device: Device, name: str, params: dict[str, Any],
                 purpose: str, priority: int, drill: bool) -> OutCommand:
        fmt = self.formats[device.protocol]
        msgid = msgid_for(key)
        timeout, retries = ((self.sirens.reply_timeout_s, self.sirens.retries) if purpose == "siren"
                            else (self.sampling.reply_timeout_s, self.sampling.retries))
        return OutCommand(key=key, alert_id=alert_id, site=site.id, device=device.id,
                          topic=fmt.command_topic(device.id, site.id),
                          payload=fmt.encode_command(name, params, msgid), command=name, msgid=msgid,
                          purpose=purpose, priority=priority, max_attempts=retries + 1, reply_timeout_s=timeout,
                          drill=drill)

    def reporting_commands(self, dev: Device, accelerate: bool) -> list[tuple[str, dict[str, Any]]]:
        """The configured commands (name, params) that accelerate or restore a device's reporting."""
        commands: tuple[DeviceCommand, ...] = getattr(getattr(self.sampling, dev.protocol),
                                                      "accelerate" if accelerate else "restore")
        return [(cmd.name, {k: _param(v, dev) for k, v in cmd.params.items()}) for cmd in commands]

    def siren_levels(self, site: Site, drill: bool) -> tuple[str, ...]:
        if drill and not self.sirens.drills:
            return ()
        return self.sirens.levels_for(site.id)

    def siren(self, alert_id: int, round_: int, site: Site, level: str, drill: bool) -> list[OutCommand]:
        out = []
        text = self.renderer.broadcast(site=site, level=level, drill=drill)
        for dev in site.devices:
            if dev.kind != "alarm":
                continue
            base = f"a{alert_id}:{round_}:siren:{level}:{dev.id}"
            out.append(self.command(alert_id, base + ":alarm", site, dev, "alarm",
                                    {"type": self.sirens.alarm_type, "level": Level.of(level).national},
                                    "siren", PRIORITY_ALARM, drill))
            if self.sirens.broadcast:
                size = len(text.encode("gb2312", "replace"))
                out.append(self.command(alert_id, base + ":broadcast", site, dev, "broadcast",
                                        {"b_num": self.sirens.broadcast_repeat, "b_size": size, "b_content": text},
                                        "siren", PRIORITY_BROADCAST, drill))
        return out

    def reporting(self, alert_id: int, site: Site, accelerate: bool, drill: bool) -> list[OutCommand]:
        out = []
        what = "accelerate" if accelerate else "restore"
        for dev in site.devices:
            if dev.kind in ACTUATOR_KINDS or dev.kind in HUMAN_KINDS:
                continue
            for i, (name, params) in enumerate(self.reporting_commands(dev, accelerate)):
                out.append(self.command(alert_id, f"a{alert_id}:sampling:{what}:{dev.id}:{i}", site, dev, name,
                                        params, "sampling", PRIORITY_SAMPLING, drill))
        return out


def _param(value: str | int | float, dev: Device) -> str | int | float:
    if not isinstance(value, str):
        return value
    return (value.replace("{sensor_id}", dev.sensors[0] if dev.sensors else "")
            .replace("{interval_s}", str(dev.interval_s))
            .replace("{accelerated_interval_s}", str(dev.accelerated_interval_s)))
