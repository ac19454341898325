"""Weather warnings from the broker: the province's feed (or a bridge) publishes warning JSON on
`geowarn/v1/weather/warning` (on the broker the intake uses); a bad one is logged with its
reason and counted (`geowarn_weather_warnings_refused`), never a crash; the bounds are the HTTP
API's (weather/warning.py, limits.py)."""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from geowarn.drivers.base import Invalid
from geowarn.drivers.payloads import load_json

from ..broker import client_for
from ..config import IntakeSettings

if TYPE_CHECKING:
    from .desk import WeatherDesk

log = logging.getLogger("geowarn.weather.mqtt")
TOPIC = "geowarn/v1/weather/warning"
MAX_WARNING_BYTES = 64 * 1024  # as over HTTP


class WeatherSubscriber:
    def __init__(self, desk: "WeatherDesk", broker_url: str | None, settings: IntakeSettings):
        self.desk = desk
        self.rejected = 0
        self.client, self._kw, self.broker = client_for(settings, f"{settings.client_id}-weather", broker_url)
        self._keepalive = settings.keepalive_s
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p=None: (not rc.is_failure) and c.subscribe(TOPIC, qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message

    def _on_message(self, client, userdata, msg) -> None:
        try:
            try:
                doc = load_json(msg.payload, MAX_WARNING_BYTES, allow_nan=False)
            except Invalid as e:
                raise ValueError(f"not a JSON warning ({e.reason}): {e.detail}"[:300]) from None
            w = self.desk.ingest(doc, "mqtt", time.time())
            log.info("weather warning %s from %s", w.id, msg.topic)
        except ValueError as e:
            self.rejected += 1
            log.warning("weather warning on %s refused: %s", msg.topic, e)
        except Exception:
            self.rejected += 1
            log.exception("weather warning on %s failed", msg.topic)

    def start(self) -> "WeatherSubscriber":
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=self._keepalive, **self._kw)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
