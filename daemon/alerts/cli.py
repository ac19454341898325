"""`geowarn alerts | ack | stand-down | silence | routes | outbox | deliver`: the alert commands."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time

from geowarn.drivers.base import Invalid
from geowarn.drivers.timestamps import format_ts, parse_ts

from ..config import ConfigError, load_config
from ..journal import journal_path
from . import outbox, store
from .db import Database
from .manager import AlertManager, acknowledge, parse_alert_id
from .store import AlertClosed, AlertNotFound

log = logging.getLogger("geowarn.alerts")


def _db(state_dir: str) -> Database:
    path = journal_path(state_dir)
    if not path.exists():
        raise ConfigError(str(path), "", "no journal here: is --state-dir right?")
    return Database(path)


def _manager(args) -> AlertManager:
    cfg = load_config(args.config)
    s = cfg.settings
    return AlertManager(cfg.registry, journal_path(args.state_dir), notify=s.notify, sirens=s.sirens,
                        sampling=s.sampling)


def _user_errors(fn):
    def run(args) -> int:
        try:
            return fn(args)
        except (AlertNotFound, AlertClosed) as e:
            print(f"geowarn {args.command}: {e}", file=sys.stderr)
            return 1
    return run


@_user_errors
def cmd_alerts(args) -> int:
    db = _db(args.state_dir)
    with db.read() as c:
        rows = store.listing(c, open_only=not args.all)
    db.close()
    if args.json:
        json.dump([a.to_json() for a in rows], sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    for a in rows:
        what = a.level if a.kind == "hazard" else f"{a.fault} {a.device}"
        ack = f"acked by {a.acked_by}" if a.acked_at else ("-" if a.status != "open" else "NOT ACKED")
        print(f"A{a.id:<5} {a.status:<6} {a.site:<10} {what:<24} {'DRILL ' if a.drill else ''}"
              f"opened {format_ts(a.opened_at)}  {ack}")
    print(f"{len(rows)} alerts")
    return 0


@_user_errors
def cmd_ack(args) -> int:
    db = _db(args.state_dir)
    with db.tx() as c:
        alert = acknowledge(c, parse_alert_id(args.id), args.by, "cli", time.time())
    db.close()
    print(f"A{alert.id} acknowledged by {alert.acked_by} at {format_ts(alert.acked_at)}")
    return 0


@_user_errors
def cmd_stand_down(args) -> int:
    mgr = _manager(args)
    try:
        alert = mgr.stand_down(args.id, args.by, args.reason)
    finally:
        mgr.close()
    print(f"A{alert.id} stood down by {alert.closed_by}: {args.reason}")
    return 0


def cmd_silence(args) -> int:
    try:
        until = parse_ts(args.until) if not args.until.endswith("h") else time.time() + float(args.until[:-1]) * 3600
    except (Invalid, ValueError):
        raise ConfigError("--until", "", f"expected RFC 3339, epoch seconds or e.g. 4h, got {args.until!r}") from None
    mgr = _manager(args)
    try:
        sid = mgr.silence(site=args.site, device=args.device, fault=args.fault, until=until, who=args.by,
                          reason=args.reason)
    finally:
        mgr.close()
    print(f"silence {sid} until {format_ts(until)} (data-quality alerts only; hazard warnings are never silenced)")
    return 0


def cmd_deliver(args) -> int:
    """Drain the outbox until stopped: messages through apprise, commands over MQTT."""
    from .delivery import AppriseNotifier
    from .sender import CommandSender
    from .worker import OutboxWorker, WorkerBusy

    cfg = load_config(args.config)
    s = cfg.settings
    logging.getLogger("apprise").setLevel(logging.WARNING)
    sender = None if args.no_commands else CommandSender(args.broker, s.intake).start()
    worker = OutboxWorker(journal_path(args.state_dir), notifier=AppriseNotifier(s.notify.apprise_config),
                          sender=sender, retry=s.notify.retry, poll_s=args.poll, synchronous=s.journal.synchronous)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        worker.start()
    except WorkerBusy as e:
        if sender is not None:
            sender.stop()
        print(f"geowarn deliver: {e}", file=sys.stderr)
        return 1
    log.info("delivering from %s", args.state_dir)
    done.wait(args.duration)
    worker.stop()
    if sender is not None:
        sender.stop()
    return 0


def cmd_routes(args) -> int:
    """Who each level of each site reaches, and which contacts cannot be reached at all."""
    from .routing import Router

    cfg = load_config(args.config)
    router = Router(cfg.settings.notify)
    levels = list(cfg.settings.notify.levels)
    out = []
    for site in cfg.registry.sites:
        if args.site and site.id != args.site:
            continue
        row = {"site": site.id, "name": site.name, "levels": {}, "tiers": [], "faults": 0, "unreachable": set()}
        for level in levels:
            route = router.level(site, level)
            row["levels"][level] = len(route.recipients)
            row["unreachable"].update(route.unreachable)
        for i in range(len(cfg.settings.notify.escalation)):
            row["tiers"].append(len(router.tier(site, i).recipients))
        faults = router.fault(site, "offline")
        row["faults"] = len(faults.recipients)
        row["unreachable"].update(faults.unreachable)
        row["unreachable"] = sorted(row["unreachable"])
        out.append(row)
    if args.json:
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    print(f"{'site':<10} " + " ".join(f"{lv:>6}" for lv in levels) + "  tiers   faults  unreachable")
    for r in out:
        print(f"{r['site']:<10} " + " ".join(f"{r['levels'][lv]:>6}" for lv in levels)
              + f"  {'/'.join(map(str, r['tiers'])) or '-':<7} {r['faults']:>6}  {', '.join(r['unreachable']) or '-'}")
    bad = [r["site"] for r in out if r["unreachable"] or not r["levels"].get("red")]
    print(f"{len(out)} sites; {len(bad)} with contacts nobody can reach"
          + ("" if cfg.settings.notify.phone_url else " (no notify.phone_url: contacts with only a phone are unreachable)"))
    return 0


def cmd_outbox(args) -> int:
    """The outbox at a glance: rows per status, the oldest waiting, the targets that keep failing."""
    db = _db(args.state_dir)
    with db.read() as c:
        counts, oldest, failing = outbox.counts(c), outbox.oldest_waiting(c), outbox.retrying(c)
    db.close()
    report = {"rows": counts, "oldest_waiting": format_ts(oldest) if oldest else None, "retrying": failing}
    if args.json:
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    print("outbox: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "empty"))
    if oldest:
        print(f"oldest waiting since {format_ts(oldest)}")
    for f in failing:
        who = f["recipient"] or f"{f['command']} → {f['device']}"
        print(f"  retrying {f['site']} {f['role'] or ''} {who}: {f['attempts']} attempts, last: {f['last_error']}")
    return 0


def add_commands(sub: argparse._SubParsersAction, with_config) -> None:
    sp = sub.add_parser("alerts", help="list alerts (open ones unless --all)")
    sp.add_argument("--state-dir", required=True)
    sp.add_argument("--all", action="store_true")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_alerts)

    sp = sub.add_parser("ack", help="acknowledge an alert: stops its repeats and escalation")
    sp.add_argument("id", help="alert id, e.g. A12")
    sp.add_argument("--state-dir", required=True)
    sp.add_argument("--by", default="cli", help="who acknowledges")
    sp.set_defaults(func=cmd_ack)

    sp = with_config(sub.add_parser("stand-down", help="close an alert by operator decision (audited)"))
    sp.add_argument("id")
    sp.add_argument("--state-dir", required=True)
    sp.add_argument("--by", required=True)
    sp.add_argument("--reason", required=True)
    sp.set_defaults(func=cmd_stand_down)

    sp = with_config(sub.add_parser("silence", help="mute data-quality alerts of a site or device for a while"))
    sp.add_argument("--state-dir", required=True)
    sp.add_argument("--site")
    sp.add_argument("--device")
    sp.add_argument("--fault", help="only this fault (default: all)")
    sp.add_argument("--until", required=True, help="RFC 3339, epoch seconds, or a duration like 4h")
    sp.add_argument("--by", required=True)
    sp.add_argument("--reason", required=True)
    sp.set_defaults(func=cmd_silence)

    sp = with_config(sub.add_parser("routes", help="who each level of each site reaches; unreachable contacts"))
    sp.add_argument("--site")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_routes)

    sp = sub.add_parser("outbox", help="outbox rows per status and what keeps being retried")
    sp.add_argument("--state-dir", required=True)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_outbox)

    sp = with_config(sub.add_parser("deliver", help="deliver the outbox (messages and device commands) until stopped"))
    sp.add_argument("--state-dir", required=True)
    sp.add_argument("--broker", help="mqtt://HOST:PORT for device commands (default: intake.broker)")
    sp.add_argument("--no-commands", action="store_true", help="messages only")
    sp.add_argument("--poll", type=float, default=0.5, help="seconds between looks when idle")
    sp.add_argument("--duration", type=float, help=argparse.SUPPRESS)
    sp.set_defaults(func=cmd_deliver)
