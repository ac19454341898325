"""An in-process MQTT broker (amqtt) for machines without Mosquitto, e.g. `make demo` as a
normal user. amqtt speaks MQTT 3.1.1 only and refuses `$`-topics, so national `$dp` devices
cannot use it: the demo's devices speak native JSON to it, and the intake uses 3.1.1."""
from __future__ import annotations

import asyncio
import logging
import threading

from geowarn.daemon.config import ConfigError

from .local_broker import free_port, wait_port


class EmbeddedBroker:
    protocol = "3.1.1"
    national_ok = False

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "EmbeddedBroker":
        try:
            from amqtt.broker import Broker
        except ImportError:  # an optional extra: the service itself never needs it
            raise ConfigError("--broker", "", "no Mosquitto here and no in-process broker: give --broker "
                              "mqtt://HOST:PORT, install mosquitto, or pip install 'geowarn[demo]'") from None

        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                  "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._broker = Broker(config, loop=self._loop)
            self._loop.run_until_complete(self._broker.start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
        self._thread.start()
        ready.wait(10)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        try:
            fut.result(10)
        except Exception:  # noqa: BLE001  -- shutting down: nothing left to save
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    close = stop

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def best_local_broker(workdir=None):
    """Mosquitto when installed (speaks everything), else the embedded amqtt broker."""
    from .local_broker import Mosquitto

    try:
        return Mosquitto(workdir=workdir)
    except RuntimeError:
        return EmbeddedBroker()
