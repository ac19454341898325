"""Benchmark of the streaming detector core (`make bench-core`).

Readings already in memory (no parsing, no MQTT, no journal), the full default detector set:
* 30 days of the 80-site example network (the default registry), fed in batches of one UTC
  day of data, as replay and warm-up do (the median of five runs, and the fastest), and in
  batches of one hour, closer to the service;
* one day of a 10,000-site synthetic network (4 instruments a site), in one-day batches;
* the same detectors as a plain per-reading Python loop (bench/loop_core.py) on the same
  80-site readings, in the same run; the ratio;
* memory per series.
Prints one JSON object.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loop_core import LoopCore

from geowarn.daemon.config import load_config
from geowarn.daemon.core import Core
from geowarn.daemon.core.buffers import Windows
from geowarn.daemon.rules import load_rules
from geowarn.simulators.network_readings import network_readings, synthetic_registry


def run_core(registry, nr, batch_s: float, repeats: int = 5) -> dict:
    """`repeats` runs on fresh cores: the median run's figures (the machine may be shared, and
    its speed drifts), with the fastest run's rate beside them."""
    runs = []
    for _ in range(repeats):
        core = Core(registry)
        ids = np.array([core.intern(*k) for k in zip(nr.site, nr.device, nr.kind, nr.channel)])
        sid = ids[nr.series]
        b = np.floor(nr.ts / batch_s)
        cuts = [0, *(np.flatnonzero(np.diff(b)) + 1).tolist(), len(sid)]
        events = 0
        t, c = time.perf_counter(), time.process_time()
        for lo, hi in zip(cuts, cuts[1:]):
            events += len(core.process(sid[lo:hi], nr.ts[lo:hi], nr.value[lo:hi]).level_changes)
        el, cpu = time.perf_counter() - t, time.process_time() - c
        runs.append({"readings": int(len(sid)), "series": len(core.series), "batches": len(cuts) - 1,
                     "seconds": round(el, 3), "readings_per_s": round(len(sid) / el),
                     "readings_per_cpu_s": round(len(sid) / cpu),
                     "level_changes": events, "memory_per_series_bytes": core.memory_per_series(),
                     "window_bytes_allocated": int(sum(a.nbytes for a in vars(core.win).values()
                                                       if isinstance(a, np.ndarray)))})
    runs.sort(key=lambda r: r["seconds"])
    median = dict(runs[(len(runs) - 1) // 2])
    median["runs"] = len(runs)
    median["best_readings_per_s"] = runs[0]["readings_per_s"]
    return median


def run_loop(nr) -> dict:
    loop = LoopCore(load_rules())
    keys = list(zip(nr.site, nr.device, nr.kind, nr.channel))
    t, c = time.perf_counter(), time.process_time()
    for s, ts, v in zip(nr.series.tolist(), nr.ts.tolist(), nr.value.tolist()):
        k = keys[s]
        loop.reading(k[0], k[1], k[2], k[3], ts, v)
    el, cpu = time.perf_counter() - t, time.process_time() - c
    return {"readings": len(nr.ts), "seconds": round(el, 3), "readings_per_s": round(len(nr.ts) / el),
            "readings_per_cpu_s": round(len(nr.ts) / cpu),
            "level_changes": loop.events}


def main() -> None:
    cfg = load_config()
    net80 = network_readings(cfg.registry, 30)
    out: dict = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
                 "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0]}
    out["core_80_sites_30_days_daily_batches"] = run_core(cfg.registry, net80, 86400.0)
    out["core_80_sites_30_days_hourly_batches"] = run_core(cfg.registry, net80, 3600.0, repeats=1)
    big = synthetic_registry(10_000)
    net10k = network_readings(big, 1)
    out["core_10000_sites_1_day"] = run_core(big, net10k, 86400.0, repeats=1)
    out["loop_80_sites_30_days"] = run_loop(net80)
    core_rate = out["core_80_sites_30_days_daily_batches"]["readings_per_s"]
    out["ratio_core_to_loop"] = round(core_rate / out["loop_80_sites_30_days"]["readings_per_s"], 1)
    out["memory_per_series_bytes"] = Core(cfg.registry).memory_per_series()
    out["window_bytes_per_series"] = Windows().bytes_per_row()
    out["goals"] = {"readings_per_s_80_sites": 1_000_000, "ratio_to_loop": 10, "bytes_per_series": 64 * 1024}
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
