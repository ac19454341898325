"""Alert benchmark: from the event that makes a site red to the siren command heard on the broker
by the site's alarm, and to the first notification received by a local HTTP receiver, with a
background load of readings flowing through the real intake into the same journal.

Everything is real: Mosquitto, the intake (which also carries the alarms' replies back),
the alert manager, the outbox in the journal (synchronous=full), the outbox worker, the command
sender and apprise posting to a local receiver. Each trial raises one site of the example
network to red, waits for the siren and the first message, then gives the all-clear and waits
until the outbox is drained, so trials do not overlap.

    python bench/bench_alert.py [--trials 1000] [--load 1000]
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import queue
import sys
import tempfile
import time
from pathlib import Path

import yaml

from geowarn.daemon.alerts.delivery import AppriseNotifier
from geowarn.daemon.alerts.events import SiteLevelChange
from geowarn.daemon.alerts.manager import AlertManager
from geowarn.daemon.alerts.sender import CommandSender
from geowarn.daemon.alerts.worker import OutboxWorker
from geowarn.daemon.config import IntakeSettings, default_config_path, load_config
from geowarn.daemon.intake import Intake
from geowarn.daemon.journal import Journal
from geowarn.drivers.formats import format_classes
from geowarn.simulators.alarm_devices import AlarmDevices
from geowarn.simulators.http_receiver import HttpReceiver
from geowarn.simulators.local_broker import Mosquitto, free_port, wait_port
from geowarn.simulators.publisher import Publisher

ONE_READING = {"crack": {"width": 1.5}, "rain": {"mm": 0.5}, "pressure": {"kpa": 120.0}}


def _load(url: str, rate: float, stop, sent_q) -> None:
    """Background readings at `rate` per second (one reading per message) until stopped."""
    registry = load_config().registry
    native = format_classes()["native"](registry)
    devices = [d for d in registry.devices if d.kind in ONE_READING]
    pub = Publisher(url, "bench-alert-load").connect()
    t0 = time.time()
    i = 0
    while not stop.is_set():
        time.sleep(max(0.0, t0 + i / rate - time.time()))
        dev = devices[i % len(devices)]
        topic, _ = native.encode_readings(dev, time.time(), ONE_READING[dev.kind])
        pub.publish(topic, json.dumps({"ts": time.time(), "seq": i, "values": ONE_READING[dev.kind]}))
        i += 1
    pub.flush(60)
    sent_q.put(i / (time.time() - t0))
    pub.close()


def _devices(url: str, out, stop, ready) -> None:
    """The site's alarms, in their own process as in the field: (device, command, arrival)."""
    devices = AlarmDevices(url, on_heard=lambda h: out.put((h.device, h.name, h.at))).start()
    ready.set()
    stop.wait()
    devices.stop()


def _receiver(port: int, out, stop) -> None:
    """The notification gateway, in its own process: (path, arrival)."""
    rx = HttpReceiver(port, on_receive=lambda r: out.put((r.path, r.at))).start()
    stop.wait()
    rx.stop()


def _next(q, match, timeout: float = 30.0):
    """The first queued item that matches (perf_counter is CLOCK_MONOTONIC: one clock for all
    processes of the machine)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            item = q.get(timeout=left)
        except queue.Empty:
            return None
        if match(item):
            return item


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


def _wait(pred, timeout: float = 30.0, every: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(every)
    return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--load", type=float, default=1000.0, help="background readings per second")
    ap.add_argument("--synchronous", choices=("full", "normal"), default="full",
                    help="journal durability: full survives power loss, normal a process crash")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    ctx = mp.get_context("fork")
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(workdir=tmp) as broker:
        tmp_path = Path(tmp)
        rx_port = free_port()
        observers_stop, heard_q, received_q = ctx.Event(), ctx.Queue(), ctx.Queue()
        devices_ready = ctx.Event()
        observers = [ctx.Process(target=_devices, args=(broker.url, heard_q, observers_stop, devices_ready)),
                     ctx.Process(target=_receiver, args=(rx_port, received_q, observers_stop))]
        for proc in observers:
            proc.start()
        wait_port(rx_port)
        assert devices_ready.wait(30), "the alarm devices did not subscribe"
        cfg_path = tmp_path / "geowarn.yaml"
        cfg_path.write_text(yaml.safe_dump({
            "registry": str(default_config_path()),
            "intake": {"broker": broker.url, "client_id": "bench-alert"},
            "notify": {"phone_url": f"json://127.0.0.1:{rx_port}/{{site}}/{{role}}/{{phone}}"},
        }, allow_unicode=True))
        cfg = load_config(cfg_path)
        s = cfg.settings
        db_path = tmp_path / "state" / "journal.sqlite"
        sites = [site for site in cfg.registry.sites if any(d.kind == "alarm" for d in site.devices)]
        alarm_of = {site.id: next(d.id for d in site.devices if d.kind == "alarm") for site in sites}

        sender = CommandSender(broker.url, s.intake).start()
        assert sender.wait_connected()
        worker = OutboxWorker(db_path, notifier=AppriseNotifier(), sender=sender, retry=s.notify.retry,
                              synchronous=args.synchronous).start()
        manager = AlertManager(cfg.registry, db_path, notify=s.notify, sirens=s.sirens, sampling=s.sampling,
                               wake=worker.wake, express=worker, synchronous=args.synchronous)
        journal = Journal(db_path, args.synchronous)
        intake = Intake(cfg.registry, IntakeSettings(client_id="bench-alert-intake"), journal,
                        broker_url=broker.url, sink=lambda c: [manager.on_reply(r) for r in c.entry.replies])
        intake.start()
        assert intake.wait_connected()
        stop, sent_q = ctx.Event(), ctx.Queue()
        load = ctx.Process(target=_load, args=(broker.url, args.load, stop, sent_q))
        load.start()
        time.sleep(1.0)  # the load is flowing

        def idle() -> bool:
            return not manager.db.query("SELECT 1 FROM outbox WHERE status IN ('pending', 'sending', 'published') "
                                        "LIMIT 1")

        siren_ms: list[float] = []
        message_ms: list[float] = []
        queued_ms: list[float] = []
        readings_before = intake.stats.readings
        t_start = time.time()
        for i in range(args.trials):
            site = sites[i % len(sites)]
            t0 = time.perf_counter()
            manager.handle(SiteLevelChange(site.id, time.time(), "red", "normal", ["bench: 切线角 86°"]))
            queued_ms.append(1000 * (time.perf_counter() - t0))
            alarm = alarm_of[site.id]
            heard = _next(heard_q, lambda h: h[0] == alarm and h[1] == "alarm" and h[2] > t0)  # noqa: B023  -- waited for here
            if heard is None:
                raise SystemExit(f"trial {i}: no siren command for {site.id}")
            siren_ms.append(1000 * (heard[2] - t0))
            got = _next(received_q, lambda r: r[0].startswith(f"/{site.id}/") and r[1] > t0)  # noqa: B023  -- waited for here
            if got is None:
                raise SystemExit(f"trial {i}: no notification for {site.id}")
            message_ms.append(1000 * (got[1] - t0))
            if not _wait(idle):
                raise SystemExit(f"trial {i}: outbox not drained")
            manager.handle(SiteLevelChange(site.id, time.time(), "normal", "red", []))
            if not _wait(idle):
                raise SystemExit(f"trial {i}: outbox not drained after the all-clear")
        seconds = time.time() - t_start
        readings = intake.stats.readings - readings_before
        stop.set()
        load_rate = sent_q.get(timeout=120)
        load.join()
        intake.stop()
        journal.close()
        worker.stop()
        manager.close()
        sender.stop()
        observers_stop.set()
        for proc in observers:
            proc.join(10)

    out = {
        "benchmark": "alert",
        "trials": args.trials,
        "background_readings_per_s_target": args.load,
        "background_readings_per_s_published": round(load_rate),
        "background_readings_per_s_journalled": round(readings / seconds),
        "journal_synchronous": args.synchronous,
        "event_to_siren_command_ms_p50": round(_pct(siren_ms, 0.5), 2),
        "event_to_siren_command_ms_p99": round(_pct(siren_ms, 0.99), 2),
        "event_to_siren_command_ms_max": round(max(siren_ms), 2),
        "event_to_first_notification_ms_p50": round(_pct(message_ms, 0.5), 2),
        "event_to_first_notification_ms_p99": round(_pct(message_ms, 0.99), 2),
        "event_queued_in_outbox_ms_p50": round(_pct(queued_ms, 0.5), 2),
        "event_queued_in_outbox_ms_p99": round(_pct(queued_ms, 0.99), 2),
        "queued_to_siren_command_ms_p99": round(_pct([a - b for a, b in zip(siren_ms, queued_ms)], 0.99), 2),
        "goal_siren_p99_ms": 100,
        "goal_met": _pct(siren_ms, 0.99) <= 100,
    }
    print(json.dumps(out, indent=2))
    sys.exit(0)


if __name__ == "__main__":
    main()
