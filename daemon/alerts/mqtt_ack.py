"""Acknowledgements over MQTT: `{"alert": "A12", "by": "王霞", "site": "XTX005"}` on
`notify.mqtt_ack_topic` (QoS 1). The broker's ACL decides who may publish there. A malformed
message is logged and dropped, never fatal; the outcome is in the alert's audit trail (`acked`,
via mqtt).

`site` is optional for one instance. Sharded instances (docs/scale-out.md) number their alerts
each on their own, so every one of them hears `A12`: there an acknowledgement must name its
site, and only the instance owning that site takes it. A named site that is not the alert's
acknowledges nothing, sharded or not."""
from __future__ import annotations

import logging
import threading

from geowarn.drivers.base import Invalid
from geowarn.drivers.payloads import load_json

from .. import limits
from ..broker import client_for
from ..config import IntakeSettings
from .manager import AlertManager, parse_alert_id
from .store import AlertClosed, AlertNotFound

log = logging.getLogger("geowarn.alerts.mqtt_ack")
MAX_ACK_BYTES = 4096  # an acknowledgement is a few dozen bytes


def parse_ack(payload: bytes) -> tuple[int, str, str | None]:
    """(alert id, who, site or None) or ValueError with the reason (limits.py's bounds)."""
    try:
        doc = load_json(payload, MAX_ACK_BYTES)
    except Invalid as e:
        raise ValueError(f"not JSON ({e.reason})") from None
    alert = doc.get("alert") if isinstance(doc, dict) else None
    if isinstance(alert, bool) or not isinstance(alert, (str, int)) or alert == "":
        raise ValueError('expected {"alert": "A12", "by": "name"}')
    who = limits.text(doc.get("by"), "by", limits.NAME_MAX_CHARS, required=True)
    site = limits.text(doc.get("site"), "site", limits.NAME_MAX_CHARS) or None
    return parse_alert_id(alert), who, site


class AckListener:
    def __init__(self, manager: AlertManager, topic: str, broker_url: str | None = None,
                 settings: IntakeSettings | None = None, sharded: bool = False):
        settings = settings or IntakeSettings()
        self.manager = manager
        self.sharded = sharded
        self.refused = 0  # acknowledgements that were not taken (malformed, unknown, closed)
        self.topic = topic
        self.client, self._connect_kwargs, self.broker = client_for(settings, f"{settings.client_id}-acks", broker_url)
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, *a: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self._keepalive = settings.keepalive_s

    def start(self) -> "AckListener":
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=self._keepalive,
                                  **self._connect_kwargs)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client, userdata, msg) -> None:
        try:
            alert, who, site = parse_ack(msg.payload)
            if site is None and self.sharded:
                raise ValueError('sharded: an acknowledgement must name its site ({"site": "XTX005", ...})')
            if site is not None and self.manager.get(alert)[0].site != site:
                log.debug("MQTT acknowledgement of %s at %s: not this instance's alert", alert, site)
                return
            acked = self.manager.ack(alert, who, via="mqtt")
            log.info("A%d acknowledged over MQTT by %s", acked.id, acked.acked_by)
        except (ValueError, AlertNotFound, AlertClosed) as e:
            self.refused += 1
            log.warning("MQTT acknowledgement on %s ignored: %s (%r)", msg.topic, e, msg.payload[:120])
        except Exception:  # the journal failing must not end the listener
            log.exception("MQTT acknowledgement on %s failed", msg.topic)
