"""A drill end to end: the fleet simulator plays a scenario through a broker, the real service
judges it (every alert and message tagged 【演练】/DRILL), a local receiver captures every
notification, a simulated monitor acknowledges, and the report says what happened, when, and
whether the chain met the scenario's stated expectation.

    geowarn drill slope-failure [--broker URL] [--report OUT.json] [--html OUT.html] [--shards N]

With `--shards N` the drill runs N service instances on the broker, each owning a shard of the
sites (daemon/shard.py), as a province deploys them; one instance is the same path with N = 1.
"""
from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from geowarn.daemon.alerts.events import DeviceFault, SiteLevelChange
from geowarn.daemon.cap.message import NS as CAP_NS
from geowarn.daemon.config import Config, load_config
from geowarn.daemon.registry import Registry
from geowarn.daemon.service import Service
from geowarn.daemon.shard import ShardSettings
from geowarn.drivers.timestamps import format_ts

from .clock import following_data
from .embedded_broker import EmbeddedBroker, best_local_broker
from .events import SimEvent
from .expectation import Outcome, judge
from .http_receiver import HttpReceiver
from .scenario import load_scenario
from .simulator import Simulator

log = logging.getLogger("geowarn.drill")
HOUR = 3600.0
ACK_BY = "演练监测员"


@dataclass
class DrillRun:
    """What the drill observed, on the simulated clock."""

    scenario: str
    events: list[SiteLevelChange | DeviceFault] = field(default_factory=list)
    acks: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # per shard index, the sites whose level changes or faults that instance raised
    judged_by: dict[int, set[str]] = field(default_factory=dict)

    def listener(self, shard: int) -> Callable[[SiteLevelChange | DeviceFault], None]:
        def on_event(event: SiteLevelChange | DeviceFault) -> None:
            with self.lock:
                self.events.append(event)
                self.judged_by.setdefault(shard, set()).add(event.site)
        return on_event


DRILL_REPLY_TIMEOUT_S = 5.0


def drill_config(cfg: Config, phone_url: str, protocol: str, client_id: str,
                 shard: ShardSettings | None = None) -> Config:
    """The network's own configuration, with every phone routed to the capture receiver. On a
    broker that refuses `$`-topics every device speaks native JSON, commands included."""
    s = cfg.settings
    registry = cfg.registry
    if protocol != "5":
        doc = registry.doc.model_dump()
        for site in doc["sites"]:
            for dev in site["devices"]:
                dev["protocol"] = "native"
        registry = Registry.from_dict(doc)
    notify = s.notify.model_copy(update={
        "phone_url": phone_url.replace("http://", "json://"),
        "phone_url_by_role": {}, "apprise_config": None})
    intake = s.intake.model_copy(update={"protocol": protocol, "client_id": client_id, "batch_wait_ms": 5.0})
    # a reply's wait is real time (the outbox's monotonic deadline), and a drill compresses hours
    # into seconds: wait less than in the field, but enough for a reply queued behind a burst of
    # accelerated readings on a busy machine
    sirens = s.sirens.model_copy(update={"reply_timeout_s": min(s.sirens.reply_timeout_s, DRILL_REPLY_TIMEOUT_S)})
    sampling = s.sampling.model_copy(update={"reply_timeout_s": min(s.sampling.reply_timeout_s,
                                                                     DRILL_REPLY_TIMEOUT_S)})
    settings = s.model_copy(update={"notify": notify, "intake": intake, "influx": None, "shard": shard,
                                    "sirens": sirens, "sampling": sampling})
    return Config(source=cfg.source, registry=registry, settings=settings)


def run_drill(name: str, *, config: str | None = None, broker_url: str | None = None, speed: float | None = None,
              duration_h: float | None = None, ack_after_s: float = 600.0, timeout_s: float = 600.0,
              echo: Callable[[str], None] = lambda line: None, national_ok: bool | None = None,
              shards: int = 1, state_dir: str | Path | None = None) -> dict[str, Any]:
    """`national_ok=False` for a broker that refuses `$`-topics and MQTT 5 (amqtt): devices then
    speak native JSON and the intake MQTT 3.1.1. `shards`: service instances, each owning a shard
    of the sites (the configuration's pins, if any, apply). `state_dir`: keep the instances'
    journals there (`state-0`, … with shards; default: a temporary directory)."""
    base = load_config(config)
    scenario = load_scenario(name, base.registry)
    with tempfile.TemporaryDirectory(prefix="geowarn-drill-") as tmp:
        broker = None
        if broker_url is None:
            broker = best_local_broker(workdir=tmp)
            broker.start()
            broker_url = broker.url
        if national_ok is None:
            national_ok = broker is None or broker.national_ok
        receiver = HttpReceiver().start()
        try:
            return _run(base, scenario, broker_url, national_ok, receiver, Path(state_dir or tmp), speed, duration_h,
                        ack_after_s, timeout_s, echo, shards)
        finally:
            receiver.stop()
            if broker is not None:
                broker.close()


def _shard_settings(base: Config, index: int, count: int) -> ShardSettings | None:
    if count == 1:
        return None
    pins = base.settings.shard.pin if base.settings.shard and base.settings.shard.count == count else {}
    return ShardSettings(index=index, count=count, pin=pins)


def _run(base, scenario, broker_url, national_ok, receiver, tmp: Path, speed, duration_h, ack_after_s,
         timeout_s, echo, shards: int = 1) -> dict[str, Any]:
    protocol = "5" if national_ok else EmbeddedBroker.protocol
    configs = [drill_config(base, receiver.url("/{site}/{role}/{phone}"), protocol, f"geowarn-drill-{scenario.name}",
                            _shard_settings(base, i, shards))
               for i in range(shards)]
    sim = Simulator(configs[0].registry, broker_url, scenario, speed=speed, duration_h=duration_h,
                    client_id=f"geowarn-drill-sim-{scenario.name}", force_protocol=None if national_ok else "native",
                    on_air_after_end=True)
    run = DrillRun(scenario.name)
    services: list[Service] = []

    # the newest reading any instance has seen: deadman checks and repeats follow the data
    data_clock = following_data(lambda: [max(svc.intake.stats.last_seen_by_site.values(), default=sim.clock.start)
                                         for svc in services], sim.clock.start, cap=sim.clock.now)
    for i, cfg in enumerate(configs):
        state = tmp / "state" if shards == 1 else tmp / f"state-{i}"
        services.append(Service(cfg, state, broker_url, drill=True, http=False, clock=data_clock))
        services[-1].listeners.append(run.listener(i))
    started: list[Service] = []
    try:
        for svc in services:
            svc.start()
            started.append(svc)
            if not svc.intake.wait_connected(15):
                raise RuntimeError(f"the service could not connect to {broker_url}")
        time.sleep(0.3)  # subscriptions in place before the first reading
        echo(f"【演练】{scenario.title} — {scenario.name}, {scenario.duration_h:g} h at {sim.clock.speed:g}×")
        sim.events.on(None, lambda e: _echo_event(e, echo))
        sim.start()
        deadline = time.monotonic() + timeout_s
        shown = 0
        while not sim.events.of("finished") and time.monotonic() < deadline:
            for svc in services:
                _acknowledge_due(svc, run, svc.clock(), ack_after_s)
            shown = _echo_notifications(receiver, shown, echo)
            time.sleep(0.05)
        for svc in services:  # the simulated devices still answer commands meanwhile
            _settle(svc)
        sim.stop()
        _echo_notifications(receiver, shown, echo)
        for svc in services:
            _acknowledge_due(svc, run, svc.clock(), ack_after_s)
        return _report(scenario, sim, services, run, receiver)
    finally:
        for svc in started:
            svc.stop()


def _acknowledge_due(svc: Service, run: DrillRun, now: float, ack_after_s: float) -> None:
    """The simulated monitor confirms each open hazard alert `ack_after_s` after it opened."""
    mgr = svc.alerts.manager
    for a in mgr.alerts():
        if a.kind == "hazard" and a.acked_at is None and now - a.opened_at >= ack_after_s:
            mgr.ack(a.id, ACK_BY, via="drill")
            run.acks.append({"ts": now, "alert": a.id, "site": a.site, "level": a.level, "by": ACK_BY})


def _settle(svc: Service, quiet_s: float = 1.0, limit_s: float = 30.0) -> None:
    """Wait until the intake has committed everything and the outbox has nothing due, and no
    command still waits for its reply (a silent siren must be found silent before the report)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        busy = svc.intake.queued or svc.alerts.status.unsettled(svc.clock())
        if not busy:
            time.sleep(quiet_s)
            if not svc.intake.queued:
                return
        time.sleep(0.1)


def _echo_notifications(receiver: HttpReceiver, shown: int, echo: Callable[[str], None]) -> int:
    """The notification feed, as it happens: who got what (hazard messages in full, the rest in a line)."""
    received = list(receiver.received)
    for r in received[shown:]:
        _, site, role, phone = r.path.split("/", 3)
        if role == "technician":
            echo(f"  → {site} 技术员 {phone}: {r.title}")
        else:
            echo(f"  → {site} {role} {phone}: {r.title}\n      " + r.message.replace("\n", "\n      ")[:400])
    return len(received)


def _echo_event(e: SimEvent, echo: Callable[[str], None]) -> None:
    if e.kind in ("started", "hour", "finished"):
        return
    where = " ".join(x for x in (e.site, e.device) if x)
    echo(f"  {format_ts(e.ts)} 模拟 {e.kind} {where} {json.dumps(e.detail, ensure_ascii=False)[:100]}")


def _report(scenario, sim: Simulator, services: list[Service], run: DrillRun, receiver: HttpReceiver) -> dict[str, Any]:
    outcome = Outcome()
    timeline: list[dict[str, Any]] = []
    with run.lock:
        events = list(run.events)
    for e in events:
        if isinstance(e, SiteLevelChange):
            outcome.level_changes.setdefault(e.site, []).append((e.ts, e.level))
            timeline.append({"ts": e.ts, "what": "level", "site": e.site, "level": e.level, "previous": e.previous,
                             "reasons": e.reasons,
                             "forecast_failure": format_ts(e.forecast_failure_ts) if e.forecast_failure_ts else None})
        elif e.active:
            outcome.device_faults.add((e.device, e.fault))
            timeline.append({"ts": e.ts, "what": "fault", "site": e.site, "device": e.device, "fault": e.fault,
                             "detail": e.detail})
    # faults the lifecycle raises itself (siren_failed, contact_failing) never pass the core
    for a in (a for svc in services for a in svc.alerts.manager.alerts(open_only=False)):
        if a.kind == "fault" and (a.device, a.fault) not in outcome.device_faults:
            outcome.device_faults.add((a.device, a.fault))
            timeline.append({"ts": a.opened_at, "what": "fault", "site": a.site, "device": a.device,
                             "fault": a.fault, "detail": a.detail})
    tagged = True
    for r in receiver.received:
        _, site, role, _phone = r.path.split("/", 3)
        outcome.notified.setdefault(site, set()).add(role)
        tagged &= "演练" in r.title or "DRILL" in r.title
        timeline.append({"ts": None, "wall": r.at, "what": "notification", "site": site, "role": role,
                         "title": r.title})
    for e in sim.events.timeline:
        if e.kind == "reply" and e.detail.get("cmd") == "alarm":
            outcome.siren_replies[e.device] = e.detail["result"]
        if e.kind == "command" and e.detail.get("cmd") == "setworkmode" and str(e.detail["params"].get("mode")) == "2":
            outcome.accelerated_sites.add(e.site)
        if e.kind in ("command", "reply", "onset", "failure", "storm_start", "fault_start"):
            timeline.append({"ts": e.ts, "what": f"sim_{e.kind}", "site": e.site, "device": e.device,
                             "detail": e.detail})
    for a in run.acks:
        timeline.append({"ts": a["ts"], "what": "ack", **{k: a[k] for k in ("site", "alert", "by")}})
    checks = judge(scenario, outcome, sim.failure_times)
    checks_out = [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in checks]
    checks_out.append({"name": "drill tagging", "passed": tagged,
                       "detail": "every message carries 【演练】/DRILL" if tagged else "a message without the drill tag"})
    cap_statuses = _cap_statuses(services)
    hazards = sum(1 for svc in services for a in svc.alerts.manager.alerts(open_only=False) if a.kind == "hazard")
    if hazards or cap_statuses:  # the public warnings (CAP feed) of a drill are exercises, never actual
        exercise = bool(cap_statuses) and set(cap_statuses) == {"Exercise"}
        checks_out.append({"name": "CAP exercise", "passed": exercise,
                           "detail": f"{len(cap_statuses)} CAP messages in the feed, statuses "
                                     f"{sorted(set(cap_statuses))}"})
    lead = {}
    for site, tf in sim.failure_times.items():
        first = min((ts for ts, lv in outcome.level_changes.get(site, []) if lv != "normal"), default=None)
        lead[site] = {"failure": format_ts(tf), "first_warning": format_ts(first) if first else None,
                      "lead_time_h": round((tf - first) / HOUR, 2) if first else None}
    first_anomaly = min((t["ts"] for t in timeline if t["what"] in ("level", "fault") and t["ts"]), default=None)
    timeline.sort(key=lambda t: (t["ts"] is None, t["ts"] or t.get("wall", 0)))
    for t in timeline:
        if t["ts"] is not None:
            t["ts"] = format_ts(t["ts"])
        if "wall" in t:
            t.pop("wall")
    notifications: dict[str, dict[str, int]] = {}
    for r in receiver.received:
        _, site, role, _ = r.path.split("/", 3)
        notifications.setdefault(site, {}).setdefault(role, 0)
        notifications[site][role] += 1
    return {
        "drill": True,
        "scenario": scenario.name,
        "title": scenario.title,
        "passed": all(c["passed"] for c in checks_out),
        "checks": checks_out,
        "first_anomaly": format_ts(first_anomaly) if first_anomaly else None,
        "lead_times": lead,
        "levels": {s: [(format_ts(ts), lv) for ts, lv in ch] for s, ch in outcome.level_changes.items()},
        "notifications": notifications,
        "sirens": outcome.siren_replies,
        "acknowledgements": len(run.acks),
        "timeline": timeline,
        "series": _series_for_plots(services, sorted(set(sim.failure_times) | set(outcome.level_changes))),
        **({"shards": _shards_summary(services, run)} if len(services) > 1 else {}),
    }


def _cap_statuses(services: list[Service]) -> list[str]:
    """The <status> of every CAP message in each instance's feed."""
    out = []
    for svc in services:
        if svc.alerts.cap is not None:
            feed = etree.fromstring(svc.alerts.cap.feed(time.time(), "", "{identifier}"))
            out += [s.text for s in feed.iter(f"{{{CAP_NS}}}status")]
    return out


def _shards_summary(services: list[Service], run: DrillRun) -> list[dict[str, Any]]:
    """Per instance: its part of the network, what it dropped as others', which sites it judged."""
    with run.lock:
        judged = {i: sorted(sites) for i, sites in run.judged_by.items()}
    return [{**svc.shard.describe(svc.network), "readings": svc.intake.stats.readings,
             "not_my_shard": svc.intake.stats.not_my_shard, "judged_sites": judged.get(i, [])}
            for i, svc in enumerate(services)]


def _series_for_plots(services: list[Service], sites: list[str], limit_sites: int = 4) -> dict[str, dict[str, list]]:
    out: dict[str, dict[str, list]] = {}
    for site in sites[:limit_sites]:
        svc = next(s for s in services if s.shard.owns(site))
        for ts, _site, dev, kind, ch, v in svc.journal.export_rows(site=site):
            if kind in ("gnss", "crack", "tilt", "rain") and ch in ("dh", "width", "x", "mm"):
                out.setdefault(f"{site} {dev} {kind}.{ch}", {"t": [], "v": []})
                out[f"{site} {dev} {kind}.{ch}"]["t"].append(ts)
                out[f"{site} {dev} {kind}.{ch}"]["v"].append(v)
    return out
