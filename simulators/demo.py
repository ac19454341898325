"""`make demo`: the slope-failure drill on the built-in Xiangtan example network, end to end,
with nothing installed but Python: an in-process MQTT broker, the fleet simulator, the real
service, and a console notifier printing every message as it is delivered. About a minute.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .drill import run_drill
from .drill_html import render

DEMO_SCENARIO = "slope-failure"
DEMO_SPEED = 7200.0  # 112 simulated hours in about a minute


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m geowarn.simulators.demo")
    ap.add_argument("--scenario", default=DEMO_SCENARIO)
    ap.add_argument("--speed", type=float, default=DEMO_SPEED)
    ap.add_argument("--broker", help="an existing broker (default: a local Mosquitto when installed, else one "
                                     "in this process)")
    ap.add_argument("--embedded", action="store_true", help="use the in-process broker even if Mosquitto is there")
    ap.add_argument("--out", default="state/demo", help="where the JSON and HTML reports go")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    broker = args.broker
    local = None
    if broker is None:  # no root needed: Mosquitto runs as this user, amqtt in this process
        from .embedded_broker import EmbeddedBroker, best_local_broker

        local = EmbeddedBroker() if args.embedded else best_local_broker()
        local.start()
        broker = local.url
    try:
        print(f"geowarn demo: drill {args.scenario} on the example Xiangtan network, "
              f"broker {type(local).__name__ if local else ''} {broker}")
        report = run_drill(args.scenario, broker_url=broker, speed=args.speed, echo=lambda s: print(s, flush=True),
                           national_ok=local is None or local.national_ok)
    finally:
        if local is not None:
            local.close()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "drill.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    (out / "drill.html").write_text(render(report), encoding="utf-8")
    print("\n=== 演练报告 DRILL REPORT ===")
    for c in report["checks"]:
        print(f"  {'✔' if c['passed'] else '✘'} {c['name']}: {c['detail']}")
    for site, lead in report["lead_times"].items():
        print(f"  {site}: first warning {lead['first_warning']}, failure {lead['failure']}, "
              f"lead time {lead['lead_time_h']} h")
    print(f"  notifications: {sum(sum(r.values()) for r in report['notifications'].values())}, "
          f"acknowledgements: {report['acknowledgements']}")
    print(f"  reports: {out / 'drill.json'}, {out / 'drill.html'}")
    print(f"【演练】{report['scenario']}: {'PASS' if report['passed'] else 'FAIL'}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
