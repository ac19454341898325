"""Warm-up after a restart: 30 days of the default 80-site network in the journal, then
`Core(...).warm(journal)` timed, as `geowarn run` does before it takes any message. Same-run
baseline: only reading those journal rows back, page by page, with no detector work.

    python bench/bench_warm.py [--days 30]

Prints one JSON object. Goal: warm-up ≤ 5 s.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from geowarn.daemon.config import load_config
from geowarn.daemon.core import Core
from geowarn.daemon.journal import Entry, Journal
from geowarn.daemon.rules import rules_for_config
from geowarn.drivers.base import Reading
from geowarn.simulators.network_readings import network_readings

PAGE = 50_000  # Core.warm's own page size


def fill_journal(journal: Journal, cfg, days: float) -> int:
    """The network's readings, written as the intake would: time order, batches of 2,000."""
    nr = network_readings(cfg.registry, days, t0=time.time() - days * 86400)
    pairs = [(Reading(nr.device[s], nr.kind[s], nr.channel[s], t, v), nr.site[s])
             for s, t, v in zip(nr.series.tolist(), nr.ts.tolist(), nr.value.tolist())]
    for i in range(0, len(pairs), 2000):
        journal.write(Entry(readings=pairs[i:i + 2000]))
    return len(pairs)


def read_only(journal: Journal) -> float:
    t = time.perf_counter()
    rowid = 0
    while rows := journal.readings_after(rowid, PAGE):
        rowid = rows[-1][0]
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=30.0)
    args = ap.parse_args()
    cfg = load_config()
    rules = rules_for_config(cfg)
    with tempfile.TemporaryDirectory(prefix="geowarn-bench-warm-") as tmp:
        with Journal(Path(tmp) / "journal.sqlite", "normal") as journal:
            n = fill_journal(journal, cfg, args.days)
        with Journal(Path(tmp) / "journal.sqlite") as journal:  # a fresh connection, as after a restart
            read_s = read_only(journal)
            t = time.perf_counter()
            core = Core(cfg.registry, rules)
            last = core.warm(journal)
            warm_s = time.perf_counter() - t
        assert last == n, (last, n)
    print(json.dumps({
        "benchmark": "warm",
        "days": args.days, "sites": len(cfg.registry.sites), "series": len(core.series), "readings": n,
        "warm_s": round(warm_s, 3), "read_only_s": round(read_s, 3), "ratio_warm_to_read": round(warm_s / read_s, 2),
        "readings_per_s": round(n / warm_s), "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
        "goal_s": 5.0, "goal_met": warm_s <= 5.0,
    }, indent=2))


if __name__ == "__main__":
    sys.exit(main())
