"""The one way in for what does not arrive on the instruments' MQTT feed: a monitor's marker
readings and observations, a weather warning's signal, a camera's fault. Every call takes the
service's lock itself, so the core and the alert lifecycle see these in order with the intake's
batches and the ticker; the parts that bring them (daemon/field, daemon/weather, daemon/video)
hold this object and nothing else of the service."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from geowarn.drivers.base import Reading

from .alerts.events import DeviceFault
from .core.engine import Core
from .model.results import CoreResult
from .journal import Entry, Journal
from .model.external import External


class Signals:
    def __init__(self, lock: threading.RLock, core: Core, journal: Journal,
                 judge: Callable[[CoreResult], None], handle: Callable[[DeviceFault], int | None]):
        self._lock = lock
        self._core = core
        self._journal = journal
        self._judge = judge  # the core's conclusions to the lifecycle (and its listeners)
        self._handle = handle  # one lifecycle event

    @contextmanager
    def together(self) -> Iterator[None]:
        """Several signals of one report or warning judged as one, with nothing in between."""
        with self._lock:
            yield

    def readings(self, pairs: list[tuple[Reading, str]], now: float) -> None:
        """Readings taken by hand (a monitor's tape on a crack marker): journaled like any reading
        (the core warms from them after a restart), then judged."""
        if not pairs:
            return
        self._journal.write(Entry(readings=pairs), now=now)
        with self._lock:
            self._judge(self._core.process_readings(pairs))

    def external(self, site: str, source: str, signal: External | None, ts: float) -> None:
        """Hold (None: drop) a site's signal under `source` and judge the site now."""
        with self._lock:
            self._judge(self._core.set_external(site, source, signal, ts))

    def hold(self, site: str, source: str, signal: External) -> None:
        """At start, before the core warms from the journal: the signal is held again, judged by
        the warm-up (what it had helped decide was already said)."""
        with self._lock:
            self._core.hold_external(site, source, signal)

    def fault(self, event: DeviceFault) -> int | None:
        """A device fault found outside the core (a camera that does not answer)."""
        with self._lock:
            return self._handle(event)

    def site_levels(self) -> dict[str, str]:
        with self._lock:
            return self._core.site_levels()
