"""What every paced publisher (the fleet simulator, the CSV replay) shares: one MQTT
connection, a simulated clock, an event bus, and a loop on a thread with start/stop/join."""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from .clock import SimClock
from .events import EventBus, SimEvent
from .publisher import Publisher

log = logging.getLogger("geowarn.simulators")
HOUR = 3600.0
MAX_BACKLOG = 5000  # unacknowledged messages a runner may have out


class PacedRunner:
    def __init__(self, broker_url: str, clock: SimClock, client_id: str):
        self.clock = clock
        self.events = EventBus()
        self.counts: Counter = Counter()
        self.error: BaseException | None = None
        self._publisher = Publisher(broker_url, client_id)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def published(self) -> int:
        """Messages handed to the broker so far."""
        return self._publisher.sent

    def _loop(self) -> None:  # the subclass's work
        raise NotImplementedError

    def _connect(self) -> None:
        self._publisher.connect()

    def start(self) -> "PacedRunner":
        """Connect, then run on a thread; returns at once."""
        self._connect()
        self._thread = threading.Thread(target=self._guarded_run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        """Connect and run in this thread until the end or `stop()`."""
        self._connect()
        try:
            self._loop()
        finally:
            self._disconnect()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def speed(self) -> float:
        return self.clock.speed

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def __enter__(self) -> "PacedRunner":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _guarded_run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # kept for the driver: a thread must not die silently
            self.error = e
            log.exception("%s stopped by an error", type(self).__name__)
        finally:
            self._disconnect()

    def _disconnect(self) -> None:
        self._publisher.flush(60)
        self._publisher.close()

    def _send(self, topic: str, payload: bytes) -> None:
        """Publish; past MAX_BACKLOG unacknowledged messages wait for the broker (a broker that is
        down or slow holds a fast run back instead of filling memory)."""
        self._publisher.publish(topic, payload)
        if self._publisher.sent - self._publisher.acked > MAX_BACKLOG:
            while not self._publisher.wait_backlog(MAX_BACKLOG // 2, 0.5) and not self.stopping:
                pass

    def _emit(self, kind: str, ts: float, **kw) -> None:
        self.events.emit(SimEvent(kind, ts, time.time(), **kw))

    def _hour(self, hour_ts: float) -> None:
        self._emit("hour", hour_ts, detail={"hour": round((hour_ts - self.clock.start) / HOUR), **dict(self.counts)})

    def _finish(self) -> None:
        """Everything sent is acknowledged by the broker before `finished` is announced."""
        self._publisher.flush(60)
        self._emit("finished", self.clock.now(), detail=dict(self.counts))
