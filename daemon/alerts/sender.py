"""Device commands over MQTT, QoS 1: `publish` returns once the broker has the command."""
from __future__ import annotations

import logging
import threading

import paho.mqtt.client as paho

from geowarn.drivers.mqtt import Broker, TLSFiles, make_client, parse_broker_url

from ..config import IntakeSettings

log = logging.getLogger("geowarn.alerts.sender")


def client_from_settings(settings: IntakeSettings, broker: Broker, client_id: str):
    """An MQTT client with the intake's credentials, TLS and protocol (clean session)."""
    tls = settings.tls
    return make_client(client_id, broker=broker, username=settings.username, password_env=settings.password_env,
                       tls=TLSFiles(tls.ca_file, tls.cert_file, tls.key_file, tls.insecure) if tls else None,
                       protocol=settings.protocol)


class CommandSender:
    def __init__(self, broker_url: str | None = None, settings: IntakeSettings | None = None,
                 client_id: str | None = None):
        settings = settings or IntakeSettings()
        self.broker = parse_broker_url(broker_url or settings.broker)
        self.client, self._connect_kwargs = client_from_settings(settings, self.broker,
                                                                 client_id or f"{settings.client_id}-commands")
        self.client.max_queued_messages_set(0)
        self._connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self._connected.clear()
        self._keepalive = settings.keepalive_s

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the command sender: %s", reason_code)
            return
        self._connected.set()

    def start(self) -> "CommandSender":
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=self._keepalive,
                                  **self._connect_kwargs)
        self.client.loop_start()
        return self

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self._connected.wait(timeout)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, timeout: float = 5.0) -> tuple[bool, str]:
        """(True, detail) once the broker acknowledged the QoS 1 publish."""
        if not self._connected.is_set():
            return False, f"not connected to {self.broker}"
        info = self.client.publish(topic, payload, qos=1)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            return False, f"publish failed: {paho.error_string(info.rc)}"
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as e:
            return False, f"publish failed: {e}"
        if not info.is_published():
            return False, f"broker did not acknowledge within {timeout:g} s"
        return True, f"published to {topic} (mid {info.mid})"
