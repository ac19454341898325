"""The soak: a simulated month of the whole network through a real Mosquitto, with the service in
a process of its own (so its memory is its own) whose clock follows the simulated time, watched
throughout: its RSS, the journal's rows and size under retention, the deadman alerts.

What "30 days at 10× the accelerated rate in 15 minutes" can mean on two cores: every device
at 10× its accelerated rate for 30 simulated days is ~85 M messages, hours of work. The point
is sustained load far above what the real network produces, over a simulated month. So the
clock is compressed (30 days in `wall_s`), devices report at their registry intervals in
simulated time (accelerated where the service orders it), and the speed is such that the
sustained message rate through Mosquitto is at least `min_load_ratio` times the whole
network's real-time, all-accelerated rate; both rates are reported. A few devices go silent at
known simulated times: each must raise exactly one offline fault (and its all-clear if it comes
back). Bench: `bench/soak.py`; CI-sized: tests/test_soak.py.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from geowarn.daemon.alerts import outbox, store
from geowarn.daemon.config import Config, load_config

from geowarn.daemon.core.detectors.quality import offline_after
from geowarn.daemon.registry import Registry
from geowarn.daemon.rules import rules_for_config
from geowarn.daemon.service import Service

from .clock import SimClock, following_data
from .drill import drill_config
from .fleet import DAY, HOUR, SILENT_KINDS
from .http_receiver import HttpReceiver
from .local_broker import Mosquitto
from .scenario import Expect, Fault, Scenario
from .simulator import Simulator

KIB_PER_MIB = 1024
# kind, silent from, back at (fractions of the simulated span; None: silent to the end)
SILENCES = (("crack", 0.20, 0.45), ("gnss", 0.35, None), ("rain", 0.55, 0.75), ("tilt", 0.60, None),
            ("pressure", 0.40, 0.85))
TICK_WALL_S = 1.0  # the service's ticker: deadman checks are this coarse in wall time


@dataclass(frozen=True)
class SoakPlan:
    days: float = 30.0
    wall_s: float = 600.0  # wall seconds the simulated span should take: sets the speed
    retention_days: float = 7.0
    sample_s: float = 2.0  # wall seconds between samples of RSS and the journal
    seed: int = 7
    min_load_ratio: float = 10.0  # sustained messages/s over the network's real accelerated rate
    rss_growth_max: float = 0.10  # last third's median RSS over the second third's, minus one
    rows_growth_max: float = 0.10  # the same for journal rows (after retention's warm-up)

    @property
    def speed(self) -> float:
        return self.days * DAY / self.wall_s


@dataclass(frozen=True)
class Silence:
    device: str
    site: str
    kind: str
    silent_at: float  # simulated epoch seconds
    back_at: float | None
    interval_s: float
    limit_s: float  # the deadman's silence limit for this device
    day: float  # the silence's simulated day, for the report


# --- the network's numbers ------------------------------------------------------------------------

def accelerated_rate(registry: Registry) -> float:
    """Messages/s of the whole network in real time with every device accelerated: a reading per
    accelerated interval from each sensor, a status a day from every device."""
    sensors = sum(1.0 / d.accelerated_interval_s for d in registry.devices if d.kind not in SILENT_KINDS)
    return sensors + len(registry.devices) / DAY


def plan_silences(cfg: Config, plan: SoakPlan, start: float, tick_sim_s: float) -> list[Silence]:
    """One device of each kind in SILENCES, each at another site, kept only when the run is long
    enough to see its alert (and its all-clear) with a tick to spare."""
    rules = rules_for_config(cfg)
    span = plan.days * DAY
    used_sites: set[str] = set()
    out = []
    for n, (kind, frm, back) in enumerate(SILENCES):
        candidates = [d for d in cfg.registry.devices if d.kind == kind and d.site not in used_sites]
        if not candidates:
            continue
        dev = candidates[(7 * n + plan.seed) % len(candidates)]
        limit = offline_after(dev.interval_s, rules.for_device(dev.kind, dev.site, dev.id).quality.offline_factor)
        silent_at = start + frm * span
        back_at = None if back is None else start + back * span
        seen_by = silent_at + limit + 2 * tick_sim_s
        if seen_by > (back_at or start + span) or (back_at and back_at + dev.interval_s + 2 * tick_sim_s > start + span):
            continue  # too short a run to see it
        used_sites.add(dev.site)
        out.append(Silence(dev.id, dev.site, kind, silent_at, back_at, dev.interval_s, limit, frm * plan.days))
    return out


def soak_scenario(plan: SoakPlan, silences: list[Silence], start: float) -> Scenario:
    faults = tuple(Fault(device=s.device, type="offline", start_h=(s.silent_at - start) / HOUR,
                         end_h=None if s.back_at is None else (s.back_at - start) / HOUR) for s in silences)
    return Scenario(name="soak", title="浸泡测试 / soak", duration_h=plan.days * 24, speed=plan.speed,
                    seed=plan.seed, faults=faults, expect=Expect())


# --- the service's process ------------------------------------------------------------------------

def soak_config(phone_url: str, retention_days: float) -> Config:
    cfg = drill_config(load_config(None), phone_url, "5", "geowarn-soak")
    journal = cfg.settings.journal.model_copy(update={"retention_days": retention_days})
    return Config(source=cfg.source, registry=cfg.registry, settings=cfg.settings.model_copy(update={"journal": journal}))


def serve(state_dir: str, broker_url: str, phone_url: str, retention_days: float, start: float,
          summary_path: str) -> None:
    """The service as `geowarn run` runs it, on a clock that follows the simulated readings; says
    `ready` on stdout once subscribed, stops on SIGTERM and leaves its intake's counts behind."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    holder: list[Service] = []
    clock = following_data(lambda: holder[0].intake.stats.last_seen_by_site.values() if holder else (), start)
    svc = Service(soak_config(phone_url, retention_days), state_dir, broker_url, drill=True, http=False, clock=clock)
    holder.append(svc)
    svc.start()
    try:
        if not svc.intake.wait_connected(15):
            raise SystemExit(f"the service could not connect to {broker_url}")
        time.sleep(0.3)  # subscriptions in place before the first reading
        print("ready", flush=True)
        stop.wait()
    finally:
        svc.stop()
        s = svc.intake.stats
        Path(summary_path).write_text(json.dumps({
            "messages": s.messages, "readings": s.readings, "duplicates": s.duplicates, "statuses": s.statuses,
            "replies": s.replies, "quarantined": dict(s.quarantine), "batches": s.batches, "clock": clock()}))


class ServiceProcess:
    """`serve` in a child process: its PID is what RSS is sampled from."""

    def __init__(self, workdir: Path, broker_url: str, phone_url: str, retention_days: float, start: float):
        self.state = workdir / "state"
        self.summary = workdir / "service-summary.json"
        self.log = open(workdir / "service.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "geowarn.simulators.soak", "serve", "--state-dir", str(self.state),
             "--broker", broker_url, "--phone-url", phone_url, "--retention-days", str(retention_days),
             "--start", repr(start), "--summary", str(self.summary)],
            stdout=subprocess.PIPE, stderr=self.log)

    def wait_ready(self, timeout: float = 60.0) -> None:
        ready = threading.Event()
        threading.Thread(target=lambda: self.proc.stdout.readline() == b"ready\n" and ready.set(), daemon=True).start()
        if not ready.wait(timeout):
            raise RuntimeError(f"the service did not get ready; see {self.log.name}")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self, timeout: float = 60.0) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.proc.stdout.close()
        return json.loads(self.summary.read_text()) if self.summary.exists() else {}


# --- watching ---------------------------------------------------------------------------------------

def journal_sample(path: Path) -> dict[str, int]:
    """Rows held now, rows ever written (rowids are never reused) and bytes on disk (with the WAL)."""
    if not path.exists():
        return {"rows": 0, "written": 0, "bytes": 0}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        rows, written = db.execute("SELECT COUNT(*), COALESCE(MAX(rowid), 0) FROM readings").fetchone()
    wal = path.with_name(path.name + "-wal")
    return {"rows": rows, "written": written, "bytes": path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)}


def thirds(values: list[float]) -> tuple[float, float]:
    """Medians of the second and the last third: the first third is warm-up."""
    n = len(values)
    return statistics.median(values[n // 3:2 * n // 3] or values), statistics.median(values[2 * n // 3:] or values)


def slope_per_day(days: list[float], values: list[float]) -> float:
    """Least-squares slope over the last two thirds, per simulated day."""
    n = len(days)
    x, y = days[n // 3:], values[n // 3:]
    if len(x) < 2:
        return 0.0
    mx, my = statistics.fmean(x), statistics.fmean(y)
    sxx = sum((a - mx) ** 2 for a in x)
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / sxx if sxx else 0.0


def deadman_report(db_path: Path, silences: list[Silence], tick_sim_s: float) -> dict[str, Any]:
    """Offline alerts expected (the planned silences) against those raised, with their timing."""
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)) as db:
        db.row_factory = sqlite3.Row
        rows = [(a.id, a.device, a.fault, a.opened_at, a.closed_at)
                for a in sorted(store.listing(db, open_only=False, limit=-1), key=lambda a: a.id)
                if a.kind == "fault" and a.fault in ("offline", "never_reported")]
        sent = outbox.notified_alerts(db)
    planned = {s.device: s for s in silences}
    by_device: dict[str, list] = {}
    for r in rows:
        by_device.setdefault(r[1], []).append(r)
    devices, ok = [], True
    for s in silences:
        got = [r for r in by_device.get(s.device, []) if r[2] == "offline"]
        d: dict[str, Any] = {"device": s.device, "site": s.site, "kind": s.kind, "interval_s": s.interval_s,
                             "limit_h": round(s.limit_s / HOUR, 2), "silent_day": round(s.day, 2),
                             "returns": s.back_at is not None, "alerts": len(got)}
        good = len(got) == 1
        if got:
            _, _, _, opened, closed = got[0]
            # the last reading came up to one interval before the silence; the ticker adds its step
            d["raised_after_silence_h"] = round((opened - s.silent_at) / HOUR, 2)
            good &= s.silent_at + s.limit_s - s.interval_s - 1 <= opened <= s.silent_at + s.limit_s + 2 * tick_sim_s
            d["all_clear"] = closed is not None
            good &= (closed is not None and closed >= s.back_at) if s.back_at is not None else closed is None
            d["technician_notified"] = got[0][0] in sent
            good &= d["technician_notified"]
        d["ok"] = bool(good)
        ok &= good
        devices.append(d)
    unexpected = [{"device": r[1], "fault": r[2]} for r in rows if r[1] not in planned or r[2] != "offline"]
    return {"expected": len(silences), "raised": sum(d["alerts"] for d in devices), "devices": devices,
            "unexpected": unexpected, "ok": ok and not unexpected}


def run_soak(plan: SoakPlan, echo: Callable[[str], None] = lambda line: None,
             workdir: str | Path | None = None) -> dict[str, Any]:
    """The whole soak; returns the report (its `passed` and `checks` say whether it held)."""
    base = load_config(None)
    tick_sim_s = TICK_WALL_S * plan.speed
    t0, load_at_start = time.monotonic(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="geowarn-soak-", dir=workdir) as tmp_name:
        tmp = Path(tmp_name)
        # the run ends before the wall clock's "now" (the intake refuses readings from the future)
        start = SimClock.for_run(plan.days * DAY, plan.speed).start
        silences = plan_silences(base, plan, start, tick_sim_s)
        scenario = soak_scenario(plan, silences, start)
        with Mosquitto(workdir=tmp) as broker, HttpReceiver() as receiver:
            service = ServiceProcess(tmp, broker.url, receiver.url("/{site}/{role}/{phone}"), plan.retention_days, start)
            try:
                service.wait_ready()
                report = _drive(plan, base.registry, scenario, silences, start, broker.url, service, echo)
            finally:
                summary = service.stop()
            report["service"] = summary
            report["deadman"] = deadman_report(service.state / "journal.sqlite", silences, tick_sim_s)
            report["notifications_received"] = len(receiver.received)
        report.update(wall_total_s=round(time.monotonic() - t0, 1), load_average_start=load_at_start)
        return _judge(plan, report)


def _drive(plan: SoakPlan, registry: Registry, scenario: Scenario, silences: list[Silence], start: float,
           broker_url: str, service: ServiceProcess, echo: Callable[[str], None]) -> dict[str, Any]:
    clock = SimClock(start, plan.speed)  # starts now: the service is subscribed
    sim = Simulator(registry, broker_url, scenario, clock=clock, client_id="geowarn-soak-sim")
    journal = service.state / "journal.sqlite"
    samples: list[dict[str, Any]] = []
    echo(f"soak: {plan.days:g} simulated days at {plan.speed:.0f}× (≈{plan.wall_s:.0f} s wall), "
         f"retention {plan.retention_days:g} d, {len(silences)} devices to go silent")
    t0 = time.monotonic()
    sim.start()
    next_echo = t0
    while True:
        finished = bool(sim.events.of("finished")) or sim.error is not None
        if service.proc.poll() is not None:
            raise RuntimeError(f"the service exited with {service.proc.returncode}; see {service.log.name}")
        sample = {"wall_s": round(time.monotonic() - t0, 2), "day": round((clock.now() - start) / DAY, 4),
                  "rss_kib": service.rss_kib(), "published": sim.published, **journal_sample(journal)}
        samples.append(sample)
        if time.monotonic() >= next_echo or finished:
            echo(f"  day {sample['day']:6.2f}  wall {sample['wall_s']:6.0f} s  RSS {sample['rss_kib'] / KIB_PER_MIB:6.1f} MiB"
                 f"  journal {sample['rows']:8d} rows {sample['bytes'] / 2**20:6.1f} MiB  published {sample['published']}")
            next_echo += 30.0
        if finished:
            break
        time.sleep(plan.sample_s)
    publish_wall = time.monotonic() - t0
    sim.stop()
    if sim.error is not None:
        raise RuntimeError(f"the simulator failed: {sim.error!r}")
    _settle(journal)
    time.sleep(3 * TICK_WALL_S)  # the last ticks: deadman and all-clear judged on the final data
    final = journal_sample(journal)
    published = dict(sim.counts)
    return {"plan": {**asdict(plan), "speed": round(plan.speed, 1)}, "samples": samples, "final_journal": final,
            "published": published, "publish_wall_s": round(publish_wall, 1),
            "network_accelerated_msgs_per_s": round(accelerated_rate(registry), 3)}


def _settle(journal: Path, quiet_s: float = 1.5, limit_s: float = 60.0) -> None:
    """Until the journal stops growing: the service has committed what the broker delivered."""
    deadline = time.monotonic() + limit_s
    last = -1
    while time.monotonic() < deadline:
        written = journal_sample(journal)["written"]
        if written == last:
            return
        last = written
        time.sleep(quiet_s)


def _judge(plan: SoakPlan, r: dict[str, Any]) -> dict[str, Any]:
    samples = r.pop("samples")
    days = [s["day"] for s in samples]
    rss = [s["rss_kib"] for s in samples]
    warm = [s for s in samples if s["day"] >= plan.retention_days + 0.5] or samples  # retention's warm-up over
    rows = [s["rows"] for s in warm]
    rss_mid, rss_last = thirds(rss)
    rows_mid, rows_last = thirds(rows)
    size_mid, size_last = thirds([s["bytes"] for s in warm])
    messages = sum(r["published"].values())
    msg_rate = messages / r["publish_wall_s"] if r["publish_wall_s"] else 0.0
    written = r["final_journal"]["written"]
    rows_per_day = written / plan.days
    svc = r["service"]
    load_ratio = msg_rate / r["network_accelerated_msgs_per_s"]
    r.update({
        "messages": messages, "messages_per_s": round(msg_rate, 1),
        "readings_per_s": round(written / r["publish_wall_s"], 1) if r["publish_wall_s"] else 0.0,
        "load_ratio": round(load_ratio, 1),
        "rss_mib": {"first": round(rss[0] / KIB_PER_MIB, 1), "max": round(max(rss) / KIB_PER_MIB, 1),
                    "median_second_third": round(rss_mid / KIB_PER_MIB, 1),
                    "median_last_third": round(rss_last / KIB_PER_MIB, 1),
                    "growth": round(rss_last / rss_mid - 1, 4) if rss_mid else None,
                    "slope_kib_per_day": round(slope_per_day(days, rss), 1)},
        "journal": {"rows_written": written, "rows_per_day": round(rows_per_day),
                    "rows_median_second_third": rows_mid, "rows_median_last_third": rows_last,
                    "rows_max_after_warmup": max(rows), "rows_final": r["final_journal"]["rows"],
                    "rows_bound": round(rows_per_day * (plan.retention_days + 1 / 24) * 1.25),
                    "mib_median_second_third": round(size_mid / 2**20, 1),
                    "mib_median_last_third": round(size_last / 2**20, 1),
                    "mib_final": round(r["final_journal"]["bytes"] / 2**20, 1)},
        "series": _thin([{k: s[k] for k in ("day", "wall_s", "rss_kib", "rows", "bytes")} for s in samples], 40),
        "load_average_end": os.getloadavg(),
    })
    j = r["journal"]
    checks = [
        ("sustained load", load_ratio >= plan.min_load_ratio,
         f"{msg_rate:.1f} msg/s = {load_ratio:.1f}× the network's accelerated {r['network_accelerated_msgs_per_s']} msg/s"),
        ("memory flat", rss_mid > 0 and rss_last <= rss_mid * (1 + plan.rss_growth_max),
         f"RSS median {rss_mid / KIB_PER_MIB:.1f} → {rss_last / KIB_PER_MIB:.1f} MiB (≤ +{plan.rss_growth_max:.0%})"),
        ("journal plateau", rows_last <= rows_mid * (1 + plan.rows_growth_max) and j["rows_max_after_warmup"] <= j["rows_bound"],
         f"rows median {rows_mid} → {rows_last}, max {j['rows_max_after_warmup']} ≤ {j['rows_bound']}"),
        ("no lost readings", svc.get("messages") == messages and not svc.get("quarantined") and svc.get("duplicates") == 0
         and svc.get("readings") == written,
         f"published {messages}, service took {svc.get('messages')}, quarantined {svc.get('quarantined')}, "
         f"duplicates {svc.get('duplicates')}, journal rows written {written} = counted {svc.get('readings')}"),
        ("deadman", r["deadman"]["ok"],
         f"expected {r['deadman']['expected']}, raised {r['deadman']['raised']}, unexpected {len(r['deadman']['unexpected'])}"),
    ]
    r["checks"] = [{"name": n, "passed": bool(p), "detail": d} for n, p, d in checks]
    r["passed"] = all(c["passed"] for c in r["checks"])
    return r


def _thin(rows: list[dict], n: int) -> list[dict]:
    """At most n rows, evenly spread, the last one kept."""
    if len(rows) <= n:
        return rows
    step = len(rows) / n
    return [rows[math.floor(i * step)] for i in range(n - 1)] + [rows[-1]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m geowarn.simulators.soak")
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("serve", help="the service's side of a soak (started by run_soak)")
    sp.add_argument("--state-dir", required=True)
    sp.add_argument("--broker", required=True)
    sp.add_argument("--phone-url", required=True)
    sp.add_argument("--retention-days", type=float, required=True)
    sp.add_argument("--start", type=float, required=True)
    sp.add_argument("--summary", required=True)
    args = p.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(args.state_dir, args.broker, args.phone_url, args.retention_days, args.start, args.summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
