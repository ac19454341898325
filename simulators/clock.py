"""The simulated clock: epoch seconds that run `speed` times faster than the wall clock, and
never ahead of it.

The service quarantines readings stamped more than 10 minutes in the future, so a fast
simulation must live in the past: `SimClock.for_run(duration_s, speed)` starts at
`now - duration_s * (1 - 1/speed)`, which makes the run end exactly at the wall clock's "now".
A simulation that runs on past its planned duration (or one started at speed 1) is held back to
the wall clock: from then on it runs in real time. `speed=inf` means "as fast as possible"
(the clock jumps from event to event; still never past the wall clock).
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable


class SimClock:
    def __init__(self, start: float, speed: float = 1.0, wall=time.time):
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.start = float(start)
        self.speed = float(speed)
        self._wall = wall
        self._lock = threading.Lock()
        self._anchor_sim = self.start  # sim time at the anchor
        self._anchor_wall = wall()  # wall time at the anchor
        self._jumped = self.start  # speed=inf: where the last advance left us

    @classmethod
    def for_run(cls, duration_s: float, speed: float = 1.0, wall=time.time) -> "SimClock":
        """A clock whose run of `duration_s` simulated seconds ends at the wall clock's now."""
        lag = duration_s if math.isinf(speed) else duration_s * (1.0 - 1.0 / speed)
        return cls(wall() - max(0.0, lag), speed, wall)

    def now(self) -> float:
        """Simulated epoch seconds: never later than the wall clock."""
        wall = self._wall()
        with self._lock:
            if math.isinf(self.speed):
                return min(self._jumped, wall)
            return min(self._anchor_sim + (wall - self._anchor_wall) * self.speed, wall)

    def elapsed(self) -> float:
        """Simulated seconds since start."""
        return self.now() - self.start

    def wall_delay(self, sim_ts: float) -> float:
        """Wall seconds until the simulated clock reaches `sim_ts` (0 when it already has)."""
        wall = self._wall()
        if math.isinf(self.speed):
            return max(0.0, sim_ts - wall)  # only the wall-clock cap can make us wait
        with self._lock:
            sim_now = self._anchor_sim + (wall - self._anchor_wall) * self.speed
        # wait for the faster clock to get there, and for the wall clock (the cap) too
        return max(0.0, (sim_ts - sim_now) / self.speed, sim_ts - wall)

    def advance_to(self, sim_ts: float, stop: threading.Event | None = None,
                   wake: threading.Event | None = None) -> bool:
        """Block until the simulated clock reaches `sim_ts`. Returns False when `stop` or `wake`
        was set first (the caller decides what to do; `wake` is cleared)."""
        while True:
            delay = self.wall_delay(sim_ts)
            if delay <= 0:
                if math.isinf(self.speed):
                    with self._lock:
                        self._jumped = max(self._jumped, sim_ts)
                return True
            for ev in (stop, wake):
                if ev is not None and ev.is_set():
                    if ev is wake:
                        wake.clear()
                    return False
            step = min(delay, 0.25)
            if wake is not None:
                if wake.wait(step):
                    wake.clear()
                    return False
            elif stop is not None:
                if stop.wait(step):
                    return False
            else:
                time.sleep(step)

    def set_speed(self, speed: float) -> None:
        """Change speed from now on without a jump in simulated time."""
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        now = self.now()
        with self._lock:
            self._anchor_sim, self._anchor_wall = now, self._wall()
            self._jumped = now
            self.speed = float(speed)


def following_data(last_seen: Callable[[], Iterable[float]], start: float,
                   cap: Callable[[], float] = time.time) -> Callable[[], float]:
    """A service clock for fast simulations: the newest reading's time (`last_seen`: the newest
    reading ts of each site; `start` before any), never past `cap`. Deadman checks and repeats then
    follow the data, so a simulation whose publishing lags its own clock for a moment does not
    look like a network gone silent."""

    def now() -> float:
        return min(cap(), max(last_seen(), default=start))

    return now
