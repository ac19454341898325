"""`geowarn` command line. Each subcommand is a small function; errors in configuration or
input print one clear line and exit 2, never a traceback."""
from __future__ import annotations

import argparse
import csv
import importlib
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from importlib.metadata import version

from geowarn.drivers.timestamps import format_ts, parse_ts
from geowarn.drivers.base import Invalid

from .alerts.cli import add_commands as add_alert_commands
from .boundaries import Boundaries, boundaries_path
from .config import RESTART_SETTINGS_META, ConfigError, load_config, restart_changes, restart_settings
from .journal import Journal, journal_path
from .logs import setup_logging
from .replay import add_replay_parser
from .rules import rules_for_config
from .shard import Shard

EXIT_USAGE = 2


def _print_json(obj) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def cmd_check(args) -> int:
    from .alerts.service import AlertService

    cfg = load_config(args.config)
    rules = rules_for_config(cfg)
    AlertService.prepare(cfg)  # the apprise file, templates and time zone load as at start or reload
    summary = cfg.registry.summary()
    summary["rules"] = rules.source
    try:
        outlines = Boundaries.load(boundaries_path(cfg))
    except ValueError as e:
        print(f"{cfg.source}: http.boundaries: {e}", file=sys.stderr)
        return 2
    summary["boundaries"] = outlines.source
    summary["misplaced"] = outlines.misplaced(cfg.registry.sites)
    shard = Shard.of(cfg.settings.shard)
    if not shard.whole:
        summary["shard"] = {**shard.describe(cfg.registry), "client_id": shard.client_id(cfg.settings.intake.client_id)}
    restart = _restart_needed(cfg, args.state_dir) if args.state_dir else None
    if restart is not None:
        summary["restart_needed"] = restart
    failing = 1 if restart else 0  # a reload would be refused
    if args.json:
        _print_json(summary)
        return failing
    print(f"{cfg.source}: OK")
    print(f"  {summary['name']}{' (EXAMPLE registry)' if summary['example'] else ''}")
    print(f"  {summary['sites']} sites, {summary['device_total']} devices: "
          + ", ".join(f"{n} {k}" for k, n in summary["devices"].items()))
    print("  counties: " + ", ".join(f"{c} {n}" for c, n in summary["counties"].items()))
    print(f"  threatened: {summary['households']} households, {summary['people']} people")
    print(f"  alert rules: {rules.source}: OK")
    print(f"  county outlines: {outlines.source}")
    for line in summary["misplaced"]:  # the map would draw them in the wrong place
        print(f"  warning: site {line}")
    if not shard.whole:
        s = summary["shard"]
        print(f"  {shard.label}: {s['sites']} of {s['network_sites']} sites, MQTT client id {s['client_id']}")
    if restart:
        print(f"  against the service on {args.state_dir}: a reload would be refused; only a restart applies "
              + ", ".join(restart))
    elif restart is not None:
        print(f"  against the service on {args.state_dir}: a reload applies every change")
    return failing


def _restart_needed(cfg, state_dir: str) -> list[str]:
    """The settings of `cfg` that differ from those the service keeping this state directory
    runs with (recorded in its journal at start): these need a restart, not a reload."""
    path = journal_path(state_dir)
    if not path.exists():
        raise ConfigError(str(path), "", "no journal here: is --state-dir right?")
    with Journal(path, readonly=True) as j:
        running = j.meta(RESTART_SETTINGS_META)
    if running is None:
        raise ConfigError(str(path), "", "no running configuration recorded: has a service of this version run here?")
    return restart_changes(json.loads(running), restart_settings(cfg))


def cmd_devices(args) -> int:
    reg = load_config(args.config).registry
    rows = [{"id": d.id, "site": d.site, "kind": d.kind, "protocol": d.protocol, "sensors": list(d.sensors),
             "interval_s": d.interval_s, "accelerated_interval_s": d.accelerated_interval_s, "model": d.model}
            for d in reg.devices]
    if args.json:
        _print_json(rows)
        return 0
    print(f"{'device':<14} {'site':<8} {'kind':<9} {'sensors':<10} {'interval':>8}  model")
    for r in rows:
        print(f"{r['id']:<14} {r['site']:<8} {r['kind']:<9} {','.join(r['sensors']) or '-':<10} "
              f"{r['interval_s']:>7}s  {r['model'] or ''}")
    print(f"{len(rows)} devices")
    return 0


def cmd_run(args) -> int:
    from .service import Service

    cfg = load_config(args.config)
    service = Service(cfg, args.state_dir, broker_url=args.broker, config_path=args.config)
    done = threading.Event()
    # a full disk (or a file size limit) must fail the journal's write with EFBIG, not kill us
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    # reload off the signal handler: it takes locks the interrupted thread may hold
    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=service.reload, daemon=True).start())
    service.run(done, duration=args.duration)
    return 0


def cmd_status(args) -> int:
    path = journal_path(args.state_dir)
    if not path.exists():
        raise ConfigError(str(path), "", "no journal here: is --state-dir right?")
    with Journal(path, readonly=True) as j:
        summary = j.status_summary()
        shard = j.meta("shard")  # "index/count", written by the service that keeps this journal
    if shard and shard != "0/1":
        summary["shard"] = dict(zip(("index", "count"), map(int, shard.split("/"))))
    now = time.time()
    service = _service_health(args.config) if args.config else None
    if service is not None:
        summary["service"] = {"status": service[0], "reasons": service[1]}
    failing = 1 if service is not None and service[0] == "failing" else 0
    if args.json:
        for d in summary["devices"].values():
            for k in ("last_reading", "last_received", "last_status"):
                if k in d:
                    d[k] = format_ts(d[k])
        summary["sites"] = {s: format_ts(t) for s, t in summary["sites"].items()}
        _print_json(summary)
        return failing
    if "shard" in summary:
        print(Shard(summary["shard"]["index"], summary["shard"]["count"]).label)
    if args.config:
        print("service: " + ("not answering" if service is None else "; ".join([service[0], *service[1]])))
    print(f"readings: {summary['readings']} ({', '.join(f'{k} {n}' for k, n in summary['readings_by_kind'].items())})")
    print(f"sites reporting: {len(summary['sites'])}, devices reporting: {len(summary['devices'])}")
    for site, ts in sorted(summary["sites"].items()):
        print(f"  {site:<10} last reading {format_ts(ts)} ({(now - ts) / 3600:.1f} h ago)")
    print(f"quarantined: {summary['quarantine_total']}")
    for reason, n in sorted(summary["quarantine"].items(), key=lambda kv: -kv[1]):
        print(f"  {reason:<20} {n}")
    return failing


def _service_health(config_path: str) -> tuple[str, list[str]] | None:
    """The running service's own word (its /healthz): the journal file cannot say that the
    service fails to write it. None when nothing answers."""
    http = load_config(config_path).settings.http
    host = "127.0.0.1" if http.host in ("", "0.0.0.0", "::") else http.host
    try:
        with urllib.request.urlopen(f"http://{host}:{http.port}/healthz", timeout=5) as r:
            doc = json.load(r)
    except urllib.error.HTTPError as e:  # 503 is "failing", with the reasons in the body
        try:
            doc = json.loads(e.read() or b"{}")
        except ValueError:
            return f"HTTP {e.code}", []
    except (OSError, ValueError):
        return None
    return str(doc.get("status", "unknown")), [str(r) for r in doc.get("reasons", [])]


def cmd_export(args) -> int:
    path = journal_path(args.state_dir)
    if not path.exists():
        raise ConfigError(str(path), "", "no journal here: is --state-dir right?")
    try:
        since = parse_ts(args.since) if args.since else None
    except Invalid as e:
        raise ConfigError("--since", "", e.detail) from None
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["ts", "site", "device", "kind", "channel", "value"])
    with Journal(path, readonly=True) as j:
        for ts, site, device, kind, channel, value in j.export_rows(since, args.site):
            out.writerow([format_ts(ts), site, device, kind, channel, repr(value)])
    return 0


# Commands whose code lives in geowarn.simulators: named here, imported only when one of them
# is run, so the service (`geowarn run`) never loads the simulators. Each module has
# `add_arguments(parser, with_config)`.
SIMULATOR_COMMANDS = {
    "simulate": ("geowarn.simulators.cli",
                 "simulate the network (or a scenario), or replay a CSV, through a broker"),
    "drill": ("geowarn.simulators.drill_cli", "run a scenario end to end: simulator, service, notifications"),
}


def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sp.add_argument("--config", help="configuration file (default: the built-in Xiangtan example)")
    return sp


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="geowarn", description="Geohazard monitoring and early warning.")
    p.add_argument("--version", action="version", version=f"geowarn {version('geowarn')}")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="json: one object per line on stdout, for journald")
    sub = p.add_subparsers(dest="command", required=True)

    sp = with_config(sub.add_parser("check", help="validate a configuration and summarise it; with --state-dir "
                                    "also which changes need a restart of the service running there (exit 1)"))
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--state-dir", help="the running service's state directory: compare with what it runs")
    sp.set_defaults(func=cmd_check)

    sp = with_config(sub.add_parser("devices", help="list every device of the registry"))
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_devices)

    sp = with_config(sub.add_parser("run", help="run the service"))
    sp.add_argument("--broker", help="mqtt://HOST:PORT (default: from the configuration)")
    sp.add_argument("--state-dir", default="state")
    sp.add_argument("--duration", type=float, help=argparse.SUPPRESS)  # seconds; for demos and tests
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("status", help="what the journal holds: readings, last seen, quarantine; with "
                        "--config also the running service's health (exit 1 when it is failing)")
    sp.add_argument("--state-dir", required=True)
    sp.add_argument("--config", help="the service's configuration: ask its HTTP /healthz too")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_status)

    sp = sub.add_parser("export", help="readings as CSV ts,site,device,kind,channel,value")
    sp.add_argument("--state-dir", required=True)
    sp.add_argument("--since", help="RFC 3339 or epoch seconds")
    sp.add_argument("--site")
    sp.set_defaults(func=cmd_export)

    from .influx_export import add_cli as add_export_influx  # its code lives with the exporter
    add_export_influx(sub)
    add_replay_parser(sub, with_config)
    from .calibrate import add_cli as add_calibrate

    add_calibrate(sub, with_config)
    from .shard_import import add_cli as add_shard_import

    add_shard_import(sub, with_config)
    add_alert_commands(sub, with_config)
    from .weather.cli import add_cli as add_weather

    add_weather(sub)
    for name, (module, help_text) in SIMULATOR_COMMANDS.items():
        # its options are unknown here: parse_args hands the rest of the line to its module
        sub.add_parser(name, help=help_text, add_help=False).set_defaults(simulator_module=module)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    module = getattr(args, "simulator_module", None)
    if module is None:
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return args
    sp = argparse.ArgumentParser(prog=f"{parser.prog} {args.command}",
                                 description=SIMULATOR_COMMANDS[args.command][1])
    importlib.import_module(module).add_arguments(sp, with_config)
    return sp.parse_args(rest, namespace=args)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"geowarn {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as e:  # e.g. a malformed broker URL
        print(f"geowarn {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
