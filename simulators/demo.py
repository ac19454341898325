"""`make demo`: the whole intake on the built-in example network, with no set-up.

Starts a local broker (Mosquitto when installed, else an in-process one), runs the intake into a
journal in ./state/demo, lets every device of the Xiangtan example report a day of readings
(national `$dp` frames and native JSON), slips in a few broken frames, and prints what the
journal holds. Runs in well under a minute.
"""
from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from geowarn.daemon.config import load_config
from geowarn.daemon.intake import Intake
from geowarn.daemon.journal import Journal
from geowarn.drivers.formats import format_classes
from geowarn.drivers.formats.national import frame

from .embedded_broker import EmbeddedBroker, best_local_broker
from .fleet import readings
from .publisher import Publisher

HOURS = 24


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m geowarn.simulators.demo")
    ap.add_argument("--state-dir", default="state/demo")
    ap.add_argument("--broker", choices=("auto", "embedded"), default="auto",
                    help="auto: Mosquitto when installed, else in-process")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = load_config()
    reg = cfg.registry
    print(f"geowarn demo — {reg.name}: {len(reg.sites)} sites, {len(reg.devices)} devices (example registry)")
    state = Path(args.state_dir)
    shutil.rmtree(state, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedBroker() if args.broker == "embedded" else best_local_broker(workdir=tmp)
        broker.start()
        try:
            return _run(cfg, broker, state)
        finally:
            broker.close()


def _run(cfg, broker, state: Path) -> int:
    reg = cfg.registry
    print(f"broker: {type(broker).__name__} on {broker.url}")
    settings = cfg.settings.intake.model_copy(update={"protocol": broker.protocol, "client_id": "geowarn-demo"})
    journal = Journal(state / "journal.sqlite")
    intake = Intake(reg, settings, journal, broker_url=broker.url)
    intake.start()
    if not intake.wait_connected(15):
        print("intake could not connect to the broker", file=sys.stderr)
        return 1
    time.sleep(0.3)
    formats = {name: cls(reg) for name, cls in format_classes().items()}
    start = time.time() - HOURS * 3600
    sent = Counter()
    t0 = time.monotonic()
    with Publisher(broker.url, "demo-fleet") as pub:
        for dev, ts, values in readings(reg, start, HOURS):
            fmt = dev.protocol if broker.national_ok else "native"
            pub.publish(*formats[fmt].encode_readings(dev, ts, values))
            sent[fmt] += 1
        # what the field also sends: a truncated frame, an unknown device, a broken value
        bad_topic = "$dp" if broker.national_ok else "geowarn/v1/XTX001/430321020001/reading"
        pub.publish(bad_topic, frame(2, b'{"43032102') if broker.national_ok else b'{"ts": 1, "values"')
        pub.publish("geowarn/v1/XTX001/999999999999/reading", json.dumps({"ts": start, "values": {"width": 1}}))
        pub.publish("geowarn/v1/XTX001/430321020001/reading", json.dumps({"ts": start, "values": {"width": 1e9}}))
        pub.flush(120)
    total = sum(sent.values())
    deadline = time.monotonic() + 60
    while intake.stats.messages < total + 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    elapsed = time.monotonic() - t0
    intake.stop()
    summary = journal.status_summary()
    journal.close()
    print(f"published {total} messages ({', '.join(f'{n} {f}' for f, n in sent.items())}) "
          f"covering {HOURS} h of the network, in {elapsed:.1f} s")
    print(f"journal {state / 'journal.sqlite'}: {summary['readings']} readings — "
          + ", ".join(f"{k} {n}" for k, n in sorted(summary["readings_by_kind"].items())))
    counties = Counter(reg.site(s).county for s in summary["sites"])
    print(f"sites reporting: {len(summary['sites'])}/{len(reg.sites)} — "
          + ", ".join(f"{c} {n}" for c, n in counties.items()))
    print("quarantined (kept with their reason): "
          + (", ".join(f"{r} {n}" for r, n in summary["quarantine"].items()) or "none"))
    print(f"next: geowarn status --state-dir {state}   |   geowarn export --state-dir {state} | head")
    return 0


if __name__ == "__main__":
    sys.exit(main())
