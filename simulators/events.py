"""What a running simulation tells its driver (a drill runner, the CLI): a typed event stream
with listeners, a recorded timeline and blocking waits.

Kinds: `started`, `hour` (each simulated hour: counts so far), `storm_start`, `storm_end`,
`onset` (a slope starts accelerating), `failure` (its failure time t_f is reached),
`fault_start`, `fault_end`, `command` (a downlink command arrived), `reply` (the device
answered; `detail.result` succ/fail/none), `finished`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("geowarn.simulators")


@dataclass(frozen=True)
class SimEvent:
    kind: str
    ts: float  # simulated epoch seconds
    wall: float  # wall-clock epoch seconds when it happened
    site: str | None = None
    device: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[SimEvent], None]


class EventBus:
    def __init__(self) -> None:
        self.timeline: list[SimEvent] = []
        self._listeners: list[tuple[str | None, Listener]] = []
        self._cond = threading.Condition()

    def on(self, kind: str | None, listener: Listener) -> None:
        """Call `listener` for every event of `kind` (None: every event), from the simulator's thread."""
        self._listeners.append((kind, listener))

    def emit(self, event: SimEvent) -> None:
        with self._cond:
            self.timeline.append(event)
            self._cond.notify_all()
        for kind, listener in list(self._listeners):
            if kind is None or kind == event.kind:
                try:
                    listener(event)
                except Exception:  # a driver's bug must not stop the world
                    log.exception("simulator event listener failed on %s", event.kind)

    def wait(self, kind: str, timeout: float | None = None,
             where: Callable[[SimEvent], bool] = lambda e: True) -> SimEvent | None:
        """The first event of `kind` (already happened or still to come) matching `where`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                for e in self.timeline[seen:]:
                    if e.kind == kind and where(e):
                        return e
                seen = len(self.timeline)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)

    def of(self, kind: str) -> list[SimEvent]:
        with self._cond:
            return [e for e in self.timeline if e.kind == kind]
