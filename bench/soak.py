"""The 30-day soak: the default 80-site network for 30 simulated days through a real Mosquitto,
the service in a process of its own on the simulated clock, journal retention 7 days. Runner and
checks: simulators/soak.py (the CI-sized run of the same code: tests/test_soak.py).

    python bench/soak.py [--days 30] [--wall-s 600] [--retention-days 7]

Progress on stderr; one JSON object on stdout; exits 1 when a property fails (memory flat,
journal plateau, no lost readings, every deadman alert raised once, load ≥ 10× the network's
accelerated rate).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from geowarn.simulators.soak import SoakPlan, run_soak


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=float, default=30.0, help="simulated days")
    p.add_argument("--wall-s", type=float, default=600.0, help="wall seconds the simulated days should take")
    p.add_argument("--retention-days", type=float, default=7.0)
    p.add_argument("--sample-s", type=float, default=2.0, help="wall seconds between samples")
    args = p.parse_args()
    plan = SoakPlan(days=args.days, wall_s=args.wall_s, retention_days=args.retention_days, sample_s=args.sample_s)
    report = run_soak(plan, echo=lambda line: print(line, file=sys.stderr, flush=True))
    report = {"benchmark": "soak", "cpus": os.cpu_count(), **report}
    print(json.dumps(report, indent=2, ensure_ascii=False))
    for c in report["checks"]:
        print(f"{'ok  ' if c['passed'] else 'FAIL'} {c['name']}: {c['detail']}", file=sys.stderr)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
