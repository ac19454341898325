"""The service's periodic jobs (deadman checks, weather warnings, retention, alert repeats, …),
each run on its own: one that raises is logged and counted, and never keeps the others from
running. A job that keeps failing is named by /healthz (`degraded`) until it runs clean again."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("geowarn.jobs")

FAILING_AFTER = 3  # failures in a row before a job counts as failing


@dataclass
class JobState:
    runs: int = 0
    failures: int = 0  # in a row; 0 after a clean run
    failing_after: int = FAILING_AFTER
    last_error: str | None = None
    last_failure: float | None = None


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, JobState] = {}
        self._lock = threading.Lock()  # the ticker threads run jobs; /healthz reads

    def run(self, name: str, fn: Callable[[], object], failing_after: int = FAILING_AFTER) -> bool:
        """Run one job; False if it raised (logged with its traceback, counted)."""
        try:
            fn()
        except Exception as e:
            with self._lock:
                st = self._jobs.setdefault(name, JobState())
                st.runs += 1
                st.failures += 1
                st.failing_after = failing_after
                st.last_error = f"{type(e).__name__}: {e}"[:300]
                st.last_failure = time.time()
                n = st.failures
            log.exception("job %r failed (%d in a row)", name, n)
            return False
        with self._lock:
            st = self._jobs.setdefault(name, JobState())
            st.runs += 1
            if st.failures:
                log.info("job %r runs again after %d failures", name, st.failures)
            st.failures = 0
            st.failing_after = failing_after
        return True

    def failing(self) -> list[str]:
        """What /healthz says of each job that keeps failing."""
        with self._lock:
            return [f"job {name!r} failing: {st.failures} times in a row, last {st.last_error}"
                    for name, st in sorted(self._jobs.items()) if st.failures >= st.failing_after]

    def state(self, name: str) -> JobState | None:
        with self._lock:
            st = self._jobs.get(name)
            return None if st is None else JobState(**vars(st))
