"""The service's clock: wall time that does not step.

It reads the wall clock once, at start, and from then on advances with the monotonic clock, so
an NTP step or an operator's `date -s` (forward or back) does not shift the intervals the
service measures: device silence (deadman), repeat and escalation timers, outbox backoff. A
step is logged once; the service adopts the stepped wall clock at its next start (the unit
starts after time-sync.target, so the clock it reads at start is the synchronised one).
Readings are screened as "future" against the later of the two clocks: the service's own jump
back never makes a device's correct time look ahead.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("geowarn.clock")

STEP_S = 30.0  # wall and steady time further apart than this: the wall clock was stepped


class SteadyClock:
    def __init__(self, wall: Callable[[], float] = time.time, mono: Callable[[], float] = time.monotonic):
        self._wall, self._mono = wall, mono
        self._offset = wall() - mono()
        self._stepped = 0.0  # the step last logged, so one step is logged once

    def __call__(self) -> float:
        return self._offset + self._mono()

    def latest(self) -> float:
        """The later of wall and steady time: what a reading must not be stamped beyond."""
        now, wall = self(), self._wall()
        step = wall - now
        if abs(step) > STEP_S and abs(step - self._stepped) > STEP_S:
            self._stepped = step
            log.warning("the system clock stepped by %+.0f s; intervals keep the monotonic clock, "
                        "the new wall time is adopted at the next start", step)
        return max(now, wall)
