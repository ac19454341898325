"""Each device speaks its own wire format (`device.protocol`): readings and daily status
frames encoded with the drivers' formats, so the simulator can never drift from what the
intake parses. A broker that cannot carry `$`-topics (the embedded amqtt) forces native."""
from __future__ import annotations

import json
from typing import Any

from geowarn.daemon.registry import Device, Registry
from geowarn.drivers.formats import format_classes
from geowarn.drivers.formats.national import FRAME_STATUS, STATUS_PREFIX, frame
from geowarn.drivers.formats.native import PREFIX as NATIVE_PREFIX
from geowarn.drivers.timestamps import format_ts


class Wire:
    def __init__(self, registry: Registry, force_protocol: str | None = None):
        self.registry = registry
        self.formats = {name: cls(registry) for name, cls in format_classes().items()}
        self.force = force_protocol

    def protocol(self, device: Device) -> str:
        return self.force or device.protocol

    def reading(self, device: Device, ts: float, values: dict[str, float]) -> tuple[str, bytes]:
        return self.formats[self.protocol(device)].encode_readings(device, ts, values)

    def status(self, device: Device, ts: float, fields: dict[str, Any]) -> tuple[str, bytes]:
        if self.protocol(device) == "national":
            body = {device.id: {f"{STATUS_PREFIX}_1": {format_ts(ts): fields}}}
            return "$dp", frame(FRAME_STATUS, json.dumps(body).encode())
        return (f"{NATIVE_PREFIX}{device.site}/{device.id}/status",
                json.dumps({"ts": format_ts(ts), "status": fields}).encode())
