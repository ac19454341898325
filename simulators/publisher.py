"""A device-side MQTT publisher: QoS 1, persistent session, resends what the broker has not
acknowledged after a reconnect (paho keeps un-acknowledged messages). For simulators, tests
and benchmarks."""
from __future__ import annotations

import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from geowarn.drivers.mqtt import parse_broker_url


class Publisher:
    def __init__(self, broker_url: str, client_id: str = "geowarn-sim", max_inflight: int = 100,
                 clean: bool = False, ca_file: str | None = None):
        self.broker = parse_broker_url(broker_url)
        # devices speak MQTT 3.1.1 with cleanSession=0, as the national protocol asks
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=paho.MQTTv311, clean_session=clean)
        if self.broker.username:
            self.client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            self.client.tls_set(ca_certs=ca_file)
        # paho walks its whole outgoing table on every acknowledgement: a huge window is slower
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.2, 2)
        self.client.on_publish = self._on_publish
        self.client.on_connect = self._on_connect
        self.sent = 0
        self.acked = 0
        self._cond = threading.Condition()
        self._connected = threading.Event()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if not reason_code.is_failure:
            self._connected.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._cond:
            self.acked += 1
            self._cond.notify_all()

    def connect(self, timeout: float = 10.0) -> "Publisher":
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(timeout):
            raise TimeoutError(f"publisher could not connect to {self.broker}")
        return self

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        with self._cond:
            self.sent += 1
        self.client.publish(topic, payload, qos=qos)

    def wait_backlog(self, most: int, timeout: float = 60.0) -> bool:
        """Wait until at most `most` messages are unacknowledged: a fast producer's memory stays bounded."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.sent - self.acked > most:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        return True

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until the broker has acknowledged everything sent."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.acked < self.sent:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> "Publisher":
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.close()
