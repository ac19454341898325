"""Native JSON (simulators, custom gateways).

`geowarn/v1/{site}/{device}/reading`: `{"ts": RFC 3339 | epoch s, "seq": int?, "values": {channel: number}}`
`geowarn/v1/{site}/{device}/status`: `{"ts": …, "status": {…}}`
commands on `geowarn/v1/{site}/{device}/cmd`, replies on `…/cmd/reply` as `{"cmd", "result", "msgid"}`.
"""
from __future__ import annotations

import json
from typing import Any

from ..base import CommandReply, Decoded, DeviceInfo, DeviceLookup, DeviceStatus, Invalid, Reading, Reason
from ..kinds import KINDS
from ..payloads import load_json
from ..status import normalise_status
from ..timestamps import format_ts, parse_ts

PREFIX = "geowarn/v1/"


class Format:
    name = "native"
    subscriptions = (PREFIX + "+/+/reading", PREFIX + "+/+/status", PREFIX + "+/+/cmd/reply")

    def __init__(self, lookup: DeviceLookup):
        self.lookup = lookup

    def claims(self, topic: str) -> bool:
        return topic.startswith(PREFIX)

    def site_subscriptions(self, site_ids: list[str]) -> tuple[str, ...]:
        return tuple(f"{PREFIX}{site}/+/{what}" for site in site_ids for what in ("reading", "status", "cmd/reply"))

    def topic_site(self, topic: str) -> str | None:
        parts = topic[len(PREFIX):].split("/") if topic.startswith(PREFIX) else []
        return parts[0] if len(parts) >= 3 and parts[0] else None

    def decode(self, topic: str, payload: bytes) -> Decoded:
        out = Decoded()
        parts = topic[len(PREFIX):].split("/")
        if len(parts) < 3 or parts[2:] not in (["reading"], ["status"], ["cmd", "reply"]):
            out.reject(Reason.UNKNOWN_TOPIC, topic[:120])
            return out
        site, device_id, what = parts[0], parts[1], "/".join(parts[2:])
        try:
            self._decode(site, device_id, what, load_json(payload), out)
        except Invalid as e:
            out.reject(e.reason, f"{device_id}: {e.detail}", device_id)
        return out

    def _decode(self, site: str, device_id: str, what: str, doc: Any, out: Decoded) -> None:
        if not isinstance(doc, dict):
            raise Invalid(Reason.BAD_SCHEMA, "payload must be a JSON object")
        if what == "cmd/reply":
            out.replies.append(
                CommandReply(device_id, str(doc.get("cmd", "")), doc.get("result") == "succ",
                             None if doc.get("msgid") is None else str(doc["msgid"]), json.dumps(doc)[:500])
            )
            return
        dev = self.lookup.device(device_id)
        if dev is None:
            raise Invalid(Reason.UNKNOWN_DEVICE, f"device {device_id!r} is not in the registry")
        ts = parse_ts(doc.get("ts"))
        if what == "status":
            status = doc.get("status", doc.get("values"))
            if not isinstance(status, dict):
                raise Invalid(Reason.BAD_SCHEMA, "status must be an object")
            out.statuses.append(DeviceStatus(device_id, ts, normalise_status(status), site))
            return
        values = doc.get("values")
        if not isinstance(values, dict) or not values:
            raise Invalid(Reason.MISSING_VALUE, "values must be a non-empty object")
        seq = doc.get("seq")
        if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
            raise Invalid(Reason.BAD_SCHEMA, f"seq must be an integer, got {seq!r}"[:120])
        kind = KINDS.get(dev.kind)
        if kind is None:
            raise Invalid(Reason.UNKNOWN_SENSOR, f"a {dev.kind} device sends no readings")
        for channel, value in kind.decode_native(values).items():
            out.readings.append(Reading(device_id, kind.name, channel, ts, value, seq, site))

    def command_topic(self, device_id: str, site_id: str) -> str:
        return f"{PREFIX}{site_id}/{device_id}/cmd"

    def encode_readings(self, device: DeviceInfo, ts: float, values: dict[str, float],
                        seq: int | None = None) -> tuple[str, bytes]:
        doc = {"ts": format_ts(ts), "values": values, **({"seq": seq} if seq is not None else {})}
        return f"{PREFIX}{device.site}/{device.id}/reading", json.dumps(doc).encode()

    def encode_command(self, name: str, params: dict[str, Any], msgid: str) -> bytes:
        return json.dumps({"cmd": name, "params": params, "msgid": msgid}, ensure_ascii=False).encode()
