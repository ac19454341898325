"""MQTT connection details shared by the intake, the command sender and the simulators."""
from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:  # never print the password
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> Broker:
    """`mqtt://[user[:pass]@]host[:port]` or `mqtts://…` (TLS, default port 8883)."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"broker URL scheme must be mqtt:// or mqtts://, got {parts.scheme!r}")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as e:
        raise ValueError(f"broker URL port: {e}") from None
    if not parts.hostname:
        raise ValueError(f"broker URL {url!r} has no host")
    return Broker(parts.hostname, port, tls,
                  unquote(parts.username) if parts.username else None,
                  unquote(parts.password) if parts.password else None)


@dataclass(frozen=True)
class TLSFiles:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False


def make_client(
    client_id: str,
    *,
    broker: Broker,
    manual_ack: bool = False,
    persistent_session_s: int | None = None,
    receive_maximum: int | None = None,
    username: str | None = None,
    password: str | None = None,
    tls: TLSFiles | None = None,
    protocol: str = "5",
) -> tuple[paho.Client, dict]:
    """An MQTT client and the keyword arguments for its `connect`. With `persistent_session_s`
    the broker keeps our subscriptions and queues QoS 1 messages while we are away
    (MQTT 5 clean_start=False with a session expiry; 3.1.1 clean_session=False)."""
    v5 = protocol == "5"
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv5 if v5 else paho.MQTTv311, manual_ack=manual_ack,
                         **({} if v5 else {"clean_session": persistent_session_s is None}))
    user = broker.username or username
    password = broker.password or password
    if user:
        client.username_pw_set(user, password)
    if broker.tls or tls is not None:
        tls = tls or TLSFiles()
        client.tls_set(ca_certs=tls.ca_file, certfile=tls.cert_file, keyfile=tls.key_file,
                       cert_reqs=ssl.CERT_NONE if tls.insecure else ssl.CERT_REQUIRED,
                       tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.tls_insecure_set(tls.insecure)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    if not v5:
        return client, {}
    props = Properties(PacketTypes.CONNECT)
    if persistent_session_s is not None:
        props.SessionExpiryInterval = persistent_session_s
    if receive_maximum is not None:
        props.ReceiveMaximum = receive_maximum
    return client, {"clean_start": persistent_session_s is None, "properties": props}
