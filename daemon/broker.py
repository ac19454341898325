"""One way to build an MQTT client from the `intake:` settings, for every connection the
service opens (intake, device commands): same broker, credentials, TLS and protocol."""
from __future__ import annotations

import paho.mqtt.client as paho

from geowarn.drivers.mqtt import Broker, TLSFiles, make_client, parse_broker_url

from .config import IntakeSettings
from .secrets import secret


def client_for(settings: IntakeSettings, client_id: str, broker_url: str | None = None, *,
               manual_ack: bool = False, persistent: bool = False) -> tuple[paho.Client, dict, Broker]:
    """(client, connect kwargs, broker). `persistent` keeps a session with the broker
    (session expiry from the settings) and bounds in-flight messages by receive_maximum."""
    broker = parse_broker_url(broker_url or settings.broker)
    tls = settings.tls
    client, kwargs = make_client(
        client_id,
        broker=broker,
        manual_ack=manual_ack,
        persistent_session_s=settings.session_expiry_s if persistent else None,
        receive_maximum=settings.receive_maximum if persistent else None,
        username=settings.username,
        password=secret(settings.password_env, settings.password_credential),
        tls=TLSFiles(tls.ca_file, tls.cert_file, tls.key_file, tls.insecure) if tls else None,
        protocol=settings.protocol,
    )
    return client, kwargs, broker
