"""National universal-type protocol (draft DZ/T 地质灾害监测数据通信技术要求).

Uplink `$dp`: 1 byte frame type, 2 bytes big-endian JSON length, JSON
`{"<deviceId>": {"<SENSOR>_<n>": {"<UTC ISO ts>": value}}}`. Type 1 is device status, type 2
timestamped sensor data; other numbering exists in the field and is quarantined, never fatal.
Downlink `$creq/{deviceId}/cmd`: `$cmd=<name>&k=v…&msgid=<id>`; replies on `$dr`.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from ..base import CommandReply, Decoded, DeviceInfo, DeviceLookup, DeviceStatus, Invalid, Reading, Reason
from ..kinds import kind_for_code
from ..payloads import MAX_PAYLOAD, load_json, preview
from ..status import normalise_status
from ..timestamps import format_ts, parse_ts

FRAME_STATUS = 1
FRAME_DATA = 2
KNOWN_FRAMES = (FRAME_STATUS, FRAME_DATA)
STATUS_PREFIX = "S1_ZT"


def frame(frame_type: int, body: bytes) -> bytes:
    """Build a `$dp` frame (used by simulators and tests)."""
    return bytes([frame_type]) + len(body).to_bytes(2, "big") + body


class Format:
    name = "national"
    subscriptions = ("$dp", "$dr")

    def __init__(self, lookup: DeviceLookup):
        self.lookup = lookup

    def claims(self, topic: str) -> bool:
        return topic in ("$dp", "$dr") or topic.startswith("$dr/")

    def site_subscriptions(self, site_ids: list[str]) -> None:
        return None  # `$dp` and `$dr` name no site: the frame's device id says whose it is

    def topic_site(self, topic: str) -> None:
        return None

    def decode(self, topic: str, payload: bytes) -> Decoded:
        out = Decoded()
        try:
            if topic.startswith("$dr"):
                out.replies.append(parse_reply(payload))
            else:
                self._decode_dp(payload, out)
        except Invalid as e:
            out.reject(e.reason, e.detail)
        return out

    def _decode_dp(self, payload: bytes, out: Decoded) -> None:
        if len(payload) > MAX_PAYLOAD + 3:
            raise Invalid(Reason.OVERSIZE, f"{len(payload)} bytes > {MAX_PAYLOAD}")
        if len(payload) < 3:
            raise Invalid(Reason.BAD_FRAMING, f"{len(payload)}-byte frame is shorter than its 3-byte header")
        frame_type = payload[0]
        length = int.from_bytes(payload[1:3], "big")
        body = payload[3:]
        if length != len(body):
            raise Invalid(Reason.BAD_LENGTH, f"header says {length} bytes, {len(body)} follow")
        if frame_type not in KNOWN_FRAMES:
            raise Invalid(Reason.UNKNOWN_FRAME_TYPE, f"type {frame_type}: {preview(body)}")
        doc = load_json(body)
        if not isinstance(doc, dict) or not doc:
            raise Invalid(Reason.BAD_SCHEMA, "body must be an object keyed by device id")
        for device_id, sensors in doc.items():
            if self.lookup.device(device_id) is None:
                out.reject(Reason.UNKNOWN_DEVICE, f"device {device_id!r} is not in the registry", device_id)
                continue
            if not isinstance(sensors, dict):
                out.reject(Reason.BAD_SCHEMA, f"device {device_id}: sensors must be an object", device_id)
                continue
            if not sensors:  # an empty frame is still a frame: account for it
                out.reject(Reason.MISSING_VALUE, f"device {device_id}: no sensors", device_id)
            for sensor, series in sensors.items():
                self._decode_sensor(device_id, sensor, series, out)

    def _decode_sensor(self, device_id: str, sensor: str, series: Any, out: Decoded) -> None:
        if not isinstance(series, dict):
            out.reject(Reason.BAD_SCHEMA, f"{device_id}.{sensor}: must map timestamps to values", device_id)
            return
        kind = None if sensor.startswith(STATUS_PREFIX) else kind_for_code(sensor)
        if kind is None and not sensor.startswith(STATUS_PREFIX):
            out.reject(Reason.UNKNOWN_SENSOR, f"{device_id}: unknown sensor code {sensor!r}", device_id)
            return
        if not series:
            out.reject(Reason.MISSING_VALUE, f"{device_id}.{sensor}: no timestamps", device_id)
        for raw_ts, raw in series.items():
            try:
                ts = parse_ts(raw_ts)
                if kind is None:
                    if not isinstance(raw, dict):
                        raise Invalid(Reason.BAD_SCHEMA, f"{sensor} must be an object")
                    out.statuses.append(DeviceStatus(device_id, ts, normalise_status(raw)))
                    continue
                for channel, value in kind.decode_national(raw).items():
                    out.readings.append(Reading(device_id, kind.name, channel, ts, value))
            except Invalid as e:
                out.reject(e.reason, f"{device_id}.{sensor}@{str(raw_ts)[:32]}: {e.detail}", device_id)

    def command_topic(self, device_id: str, site_id: str) -> str:
        return f"$creq/{device_id}/cmd"

    def encode_readings(self, device: DeviceInfo, ts: float, values: dict[str, float]) -> tuple[str, bytes]:
        sensor = device.sensors[0]
        raw = kind_for_code(sensor).to_national(values)
        body = json.dumps({device.id: {sensor: {format_ts(ts): raw}}}).encode()
        return "$dp", frame(FRAME_DATA, body)

    def encode_command(self, name: str, params: dict[str, Any], msgid: str) -> bytes:
        # loudspeaker text travels in GB2312, the rest is ASCII
        parts = [f"$cmd={name}".encode()]
        for k, v in params.items():
            value = v.encode("gb2312", "replace") if isinstance(v, str) else str(v).encode()
            parts.append(k.encode() + b"=" + value)
        parts.append(f"msgid={msgid}".encode())
        return b"&".join(parts)


def parse_reply(payload: bytes) -> CommandReply:
    """`$cmd=<name>&result=succ|fail[&msgid=..][&devid=..]`"""
    text = payload.decode("utf-8", "replace").strip()
    if not text.startswith("$cmd="):
        raise Invalid(Reason.BAD_FRAMING, f"reply does not start with $cmd=: {text[:60]!r}")
    fields = dict(parse_qsl(text[1:], keep_blank_values=True))
    return CommandReply(
        device=fields.get("devid") or fields.get("device_id"),
        command=fields.get("cmd", ""),
        ok=fields.get("result") == "succ",
        msgid=fields.get("msgid"),
        raw=text,
    )
