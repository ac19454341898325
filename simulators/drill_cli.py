"""`geowarn drill NAME`: run a scenario end to end and report."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_drill(args) -> int:
    from .drill import run_drill
    from .drill_html import render

    report = run_drill(args.name, config=args.config, broker_url=args.broker, speed=args.speed,
                       duration_h=args.duration, ack_after_s=args.ack_after, timeout_s=args.timeout,
                       echo=lambda line: print(line, flush=True), shards=args.shards)
    for c in report["checks"]:
        print(f"  {'✔' if c['passed'] else '✘'} {c['name']}: {c['detail']}")
    for site, lead in report["lead_times"].items():
        print(f"  lead time {site}: {lead['lead_time_h']} h (first warning {lead['first_warning']}, "
              f"failure {lead['failure']})")
    print(f"【演练】{report['scenario']}: {'PASS' if report['passed'] else 'FAIL'}")
    if args.report:
        Path(args.report).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    if args.html:
        Path(args.html).write_text(render(report), encoding="utf-8")
    return 0 if report["passed"] else 1


def add_arguments(sp: argparse.ArgumentParser, with_config) -> None:
    """`geowarn drill`'s options (daemon/cli.py names the command and imports this on use)."""
    with_config(sp)
    sp.add_argument("name", help="a shipped scenario (geowarn simulate --list) or a scenario file")
    sp.add_argument("--broker", help="mqtt://HOST:PORT (default: a local broker started for the drill)")
    sp.add_argument("--report", help="write the JSON report here")
    sp.add_argument("--html", help="write the HTML report here")
    sp.add_argument("--speed", type=float, help="simulated seconds per second (default: the scenario's)")
    sp.add_argument("--duration", type=float, help="simulated hours (default: the scenario's)")
    sp.add_argument("--ack-after", type=float, default=600.0,
                    help="simulated seconds after which the drill's monitor acknowledges an alert")
    sp.add_argument("--timeout", type=float, default=600.0, help="wall seconds before giving up")
    sp.add_argument("--shards", type=int, default=1, choices=range(1, 65), metavar="N",
                    help="service instances, each owning a shard of the sites (docs/scale-out.md)")
    sp.set_defaults(func=cmd_drill)
