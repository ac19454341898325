"""`geowarn simulate`: the fleet simulator (optionally playing a scenario) or a CSV replay,
publishing to a broker until stopped or until the simulated duration is over. One line per
simulated hour, one per scenario moment and downlink command."""
from __future__ import annotations

import argparse
import math
import signal
import sys
import threading

from geowarn.daemon.config import ConfigError, load_config
from geowarn.drivers.timestamps import format_ts

from .events import SimEvent
from .runner import PacedRunner
from .scenario import list_scenarios, load_scenario


def speed_arg(text: str) -> float:
    if text.lower() in ("max", "inf"):
        return math.inf
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (or `max`)") from None
    if not v > 0:
        raise argparse.ArgumentTypeError("speed must be > 0")
    return v


def add_arguments(sp: argparse.ArgumentParser, with_config) -> None:
    """`geowarn simulate`'s options (daemon/cli.py names the command and imports this on use)."""
    with_config(sp)
    sp.description = ("Fast runs live in the past: a run of D hours at speed S starts D·(1−1/S) h ago "
                      "and ends now, so no reading is stamped in the future. Without --duration (and "
                      "without a scenario) the network runs until stopped: at speed > 1 it starts 24 h "
                      "back, catches up, then runs in real time.")
    sp.add_argument("--broker", help="mqtt://HOST:PORT (required unless --list)")
    sp.add_argument("--scenario", help="a shipped scenario name or a YAML file")
    sp.add_argument("--speed", type=speed_arg, help="simulated seconds per second, or `max` "
                    "(default: the scenario's, else 1; CSV replay 1)")
    sp.add_argument("--duration", type=float, metavar="H",
                    help="simulated hours (default: the scenario's, else until stopped)")
    sp.add_argument("--seed", type=int)
    sp.add_argument("--from-csv", metavar="FILE", help="replay ts,site,device,kind,channel,value rows (geowarn export)")
    sp.add_argument("--keep-time", action="store_true", help="CSV replay: keep the original timestamps")
    sp.add_argument("--client-id", help="MQTT client id (default geowarn-sim / geowarn-replay); give each "
                    "simulator on one broker its own")
    sp.add_argument("--native", action="store_true", help="every device speaks native JSON (brokers without $-topics)")
    sp.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")
    sp.set_defaults(func=cmd_simulate)


def cmd_simulate(args) -> int:
    if args.list:
        for name in list_scenarios():
            sc = load_scenario(name)
            print(f"{name:<20} {sc.duration_h:>5g} h  {sc.title}")
        return 0
    if not args.broker:
        raise ConfigError("geowarn simulate", "--broker", "a broker URL is needed (mqtt://HOST:PORT)")
    if args.duration is not None and not args.duration > 0:
        raise ConfigError("geowarn simulate", "--duration", "must be > 0 hours")
    registry = load_config(args.config).registry
    force = "native" if args.native else None
    if args.from_csv:
        if args.scenario:
            raise ConfigError("geowarn simulate", "--from-csv", "replays recorded data: it takes no --scenario")
        from .replay import Replayer, read_frames
        from .wire import Wire

        frames = read_frames(args.from_csv, registry, Wire(registry, force))
        if not frames:
            raise ConfigError(args.from_csv, "", "no readings to replay")
        runner: PacedRunner = Replayer(registry, args.broker, frames, args.speed or 1.0, args.keep_time,
                                       client_id=args.client_id or "geowarn-replay", force_protocol=force)
        print(f"replaying {len(frames)} frames from {args.from_csv}, shifted by {runner.shift / 3600:+.1f} h")
    else:
        from .simulator import Simulator

        scenario = load_scenario(args.scenario, registry) if args.scenario else None
        runner = Simulator(registry, args.broker, scenario, args.speed, args.duration, args.seed,
                           client_id=args.client_id or "geowarn-sim", force_protocol=force)
        what = f"scenario {scenario.name} — {scenario.title}" if scenario else "the network"
        end = f"{runner.duration_h:g} h" if runner.duration_h else "until stopped"
        print(f"simulating {what}: {len(registry.devices)} devices, speed {runner.speed:g}, {end}, "
              f"from {format_ts(runner.clock.start)}")
        for site, tf in runner.failure_times.items():
            print(f"  {site} fails at {format_ts(tf)} (t_f)")
    runner.events.on(None, _print_event)
    done = threading.Event()
    runner.events.on("finished", lambda e: done.set())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        runner.start()
    except (TimeoutError, OSError) as e:
        print(f"geowarn simulate: cannot reach the broker {args.broker}: {e}", file=sys.stderr)
        return 1
    while not done.wait(0.5) and not runner.join(0):
        pass
    runner.stop()
    if runner.error is not None:
        print(f"geowarn simulate: stopped by {type(runner.error).__name__}: {runner.error}", file=sys.stderr)
        return 1
    return 0


def _print_event(e: SimEvent) -> None:
    when = format_ts(e.ts)
    d = e.detail
    if e.kind == "hour":
        counts = ", ".join(f"{k} {d[k]}" for k in ("readings", "statuses", "commands", "replies") if d.get(k))
        print(f"{when}  +{d['hour']} h  {counts or 'nothing sent'}", flush=True)
    elif e.kind in ("command", "reply"):
        extra = d.get("result", "") if e.kind == "reply" else " ".join(f"{k}={v}" for k, v in d["params"].items())
        print(f"{when}  {e.kind} {d['cmd']} {e.device} {extra}".rstrip(), flush=True)
    elif e.kind == "finished":
        print(f"{when}  finished: " + ", ".join(f"{k} {v}" for k, v in d.items()), flush=True)
    elif e.kind != "started":
        where = e.device or e.site or ",".join(d.get("sites", [])[:4]) or ""
        print(f"{when}  {e.kind} {where} {d.get('fault', '')}".rstrip(), flush=True)
