"""Device side of the downlink: parse the commands the service sends, build the replies.

National: `$creq/{deviceId}/cmd`, text `$cmd=<name>&k=v…&msgid=<id>` (broadcast text in
GB2312); reply on `$dr` as `$cmd=<name>&result=succ|fail&msgid=<id>&devid=<deviceId>`.
Native: `geowarn/v1/{site}/{device}/cmd`, JSON `{"cmd", "params", "msgid"}`; reply on
`…/cmd/reply` as `{"cmd", "result", "msgid"}`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from geowarn.daemon.registry import Device

SUBSCRIPTIONS = {"national": "$creq/+/cmd", "native": "geowarn/v1/+/+/cmd"}
NATIVE_PREFIX = "geowarn/v1/"


@dataclass(frozen=True)
class Command:
    device: str
    name: str
    params: dict[str, str]
    msgid: str | None


class BadCommand(ValueError):
    pass


def parse_command(topic: str, payload: bytes) -> Command:
    """A command from its topic and payload; raises BadCommand for anything else."""
    if topic.startswith("$creq/") and topic.endswith("/cmd"):
        device = topic[len("$creq/"):-len("/cmd")]
        return _parse_national(device, payload)
    parts = topic.split("/")
    if topic.startswith(NATIVE_PREFIX) and len(parts) == 5 and parts[4] == "cmd":
        try:
            doc = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadCommand(f"{topic}: not JSON ({e})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("cmd"), str):
            raise BadCommand(f"{topic}: needs a JSON object with a `cmd` string")
        params = doc.get("params") or {}
        if not isinstance(params, dict):
            raise BadCommand(f"{topic}: params must be an object")
        msgid = doc.get("msgid")
        return Command(parts[3], doc["cmd"], {str(k): str(v) for k, v in params.items()},
                       None if msgid is None else str(msgid))
    raise BadCommand(f"not a command topic: {topic[:120]}")


def _parse_national(device: str, payload: bytes) -> Command:
    if not payload.startswith(b"$cmd="):
        raise BadCommand(f"$creq/{device}/cmd: payload does not start with $cmd=")
    fields: dict[str, str] = {}
    # split the raw bytes first: only the loudspeaker text is GB2312, the rest ASCII
    for part in payload[1:].split(b"&"):
        key, _, value = part.partition(b"=")
        k = key.decode("ascii", "replace")
        fields[k] = value.decode("gb2312", "replace") if k == "b_content" else value.decode("utf-8", "replace")
    name = fields.pop("cmd", "")
    msgid = fields.pop("msgid", None)
    return Command(device, name, fields, msgid)


def encode_reply(device: Device, command: Command, ok: bool, protocol: str | None = None) -> tuple[str, bytes]:
    """The reply a device sends for a command, in its own wire format (or `protocol`)."""
    result = "succ" if ok else "fail"
    if (protocol or device.protocol) == "national":
        text = f"$cmd={command.name}&result={result}"
        if command.msgid is not None:
            text += f"&msgid={command.msgid}"
        return "$dr", f"{text}&devid={device.id}".encode()
    doc = {"cmd": command.name, "result": result, "msgid": command.msgid}
    return f"{NATIVE_PREFIX}{device.site}/{device.id}/cmd/reply", json.dumps(doc).encode()
