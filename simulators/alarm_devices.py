"""Device-side sound-and-light alarms (and other devices) answering commands: subscribes to the
national `$creq/+/cmd` and native `geowarn/v1/+/+/cmd` topics, records each command and replies
`$cmd=<name>&result=succ&msgid=…` on `$dr` (native: JSON on `…/cmd/reply`), except for the
devices told to stay silent. For tests, drills and benchmarks."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from geowarn.drivers.mqtt import parse_broker_url


@dataclass(frozen=True, slots=True)
class Heard:
    at: float  # time.perf_counter() on arrival
    device: str
    name: str
    params: dict[str, str]
    msgid: str | None
    raw: bytes


def parse_command(topic: str, payload: bytes) -> tuple[str, str, dict[str, str], str | None]:
    """(device, command name, params, msgid) from either wire format."""
    if topic.startswith("$creq/"):
        device = topic.split("/")[1]
        # GB2312 text in b_content: decode each value on its own
        fields = {}
        for part in payload.split(b"&"):
            k, _, v = part.partition(b"=")
            fields[k.decode("ascii", "replace")] = v.decode("gb2312", "replace")
        name = fields.pop("$cmd", "")
        return device, name, fields, fields.pop("msgid", None)
    device = topic.split("/")[3]
    doc = json.loads(payload)
    return device, doc.get("cmd", ""), {k: str(v) for k, v in doc.get("params", {}).items()}, doc.get("msgid")


class AlarmDevices:
    def __init__(self, broker_url: str, silent: set[str] | None = None, client_id: str = "geowarn-sim-alarms",
                 on_heard=None):
        self.broker = parse_broker_url(broker_url)
        self.on_heard = on_heard  # called with each Heard (benchmarks forward them elsewhere)
        self.silent = set(silent or ())
        self.heard: list[Heard] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        self.client.on_connect = lambda c, *a: c.subscribe([("$creq/+/cmd", 1), ("geowarn/v1/+/+/cmd", 1)])
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message

    def _on_message(self, client, userdata, msg) -> None:
        at = time.perf_counter()
        try:
            device, name, params, msgid = parse_command(msg.topic, msg.payload)
        except (ValueError, IndexError):
            return
        heard = Heard(at, device, name, params, msgid, msg.payload)
        with self._cond:
            self.heard.append(heard)
            self._cond.notify_all()
        if self.on_heard is not None:
            self.on_heard(heard)
        if device in self.silent:
            return
        if msg.topic.startswith("$creq/"):
            reply = f"$cmd={name}&result=succ&msgid={msgid}&devid={device}"
            client.publish("$dr", reply.encode(), qos=1)
        else:
            site = msg.topic.split("/")[2]
            client.publish(f"geowarn/v1/{site}/{device}/cmd/reply",
                           json.dumps({"cmd": name, "result": "succ", "msgid": msgid}), qos=1)

    def start(self, timeout: float = 10.0) -> "AlarmDevices":
        self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            raise TimeoutError("alarm devices could not subscribe")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_for(self, predicate, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.heard):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def __enter__(self) -> "AlarmDevices":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
