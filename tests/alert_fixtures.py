"""A small network for the alert tests: two sites, national and native devices, an alarm
each, contacts whose phones route to a local HTTP receiver through `notify.phone_url`."""
from __future__ import annotations

from pathlib import Path

import yaml

PHONES = {  # phone -> (site, role, name)
    "13900000001": ("S1", "monitor", "王监测"),
    "13900000002": ("S1", "official", "李镇长"),
    "13900000003": ("S1", "household", "张户主"),
    "13900000004": ("S1", "household", "赵户主"),
    "13900000005": ("S1", "technician", "钱运维"),
    "13900000006": ("S1", "duty_officer", "孙值班"),
    "13900000011": ("S2", "monitor", "Monitor Two"),
    "13900000013": ("S2", "household", "户主二"),
    "13900000015": ("S2", "technician", "运维二"),
}


def network(site_ids=("S1", "S2")) -> dict:
    sites = []
    for n, sid in enumerate(site_ids, 1):
        contacts: dict[str, list] = {}
        for phone, (s, role, name) in PHONES.items():
            if s == sid:
                contacts.setdefault(role, []).append(
                    {"name": name, "role": role, "phone": phone, **({"lang": "en"} if name.isascii() else {})})
        proto = "national" if n == 1 else "native"
        sites.append({
            "id": sid, "name": f"测试{n}号滑坡", "county": "湘潭县", "township": f"测试镇{n}",
            "hazard": "landslide", "lon": 112.8, "lat": 27.6, "households": 3, "people": 9,
            "contacts": contacts,
            "devices": [
                {"id": f"{sid}-GNSS", "kind": "gnss", "protocol": proto},
                {"id": f"{sid}-CRACK", "kind": "crack", "protocol": proto, "interval_s": 3600,
                 "accelerated_interval_s": 60},
                {"id": f"{sid}-ALARM", "kind": "alarm", "protocol": proto},
            ]})
    return {"name": "test network", "sites": sites}


def write_config(path: Path, receiver_port: int, broker_url: str | None = None, **sections) -> Path:
    doc = network()
    notify = {"phone_url": f"json://127.0.0.1:{receiver_port}/{{site}}/{{role}}/{{phone}}",
              "retry": {"base_s": 0.05, "max_s": 0.4, "report_failing_after": 3},
              "contacts": [
                  {"name": "测试镇1 镇长", "role": "township_head", "township": "测试镇1",
                   "url": f"json://127.0.0.1:{receiver_port}/S1/township_head/head1"},
                  {"name": "湘潭县值班室", "role": "county_duty_office", "county": "湘潭县",
                   "url": f"json://127.0.0.1:{receiver_port}/county/county_duty_office/office"}]}
    notify.update(sections.pop("notify", {}))
    doc["notify"] = notify
    if broker_url:
        doc["intake"] = {"broker": broker_url, "client_id": "geowarn-test"}
    doc.update(sections)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def publish_accelerating_slope(registry, url: str, site: str = "S1") -> None:
    """Two days of a crack opening 500 mm/day and GNSS moving 300 mm/day: red, corroborated."""
    import math
    import time

    from geowarn.drivers.formats import format_classes
    from geowarn.simulators.publisher import Publisher

    formats = {n: c(registry) for n, c in format_classes().items()}
    crack, gnss = registry.device(f"{site}-CRACK"), registry.device(f"{site}-GNSS")
    now = time.time()
    with Publisher(url, f"slope-{site}") as pub:
        for i in range(49):
            t = now - (48 - i) * 3600
            pub.publish(*formats[crack.protocol].encode_readings(crack, t, {"width": 10 + 500 / 24 * i}))
            pub.publish(*formats[gnss.protocol].encode_readings(
                gnss, t, {"dx": 300 / 24 * i, "dy": 2 * math.sin(i), "dz": -50 / 24 * i}))
        assert pub.flush()


def role_of(path: str) -> str:
    """`/S1/household/139…` -> household"""
    return path.strip("/").split("/")[1]


class Harness:
    """Manager + in-process outbox worker + local HTTP receiver; with a broker also the command
    sender, device-side alarms that reply, and the real intake feeding replies back."""

    def __init__(self, tmp_path: Path, broker_url: str | None = None, silent: set[str] | None = None,
                 worker_clock=None, rx=None, **sections):
        import time

        from geowarn.daemon.alerts.delivery import AppriseNotifier
        from geowarn.daemon.alerts.manager import AlertManager
        from geowarn.daemon.alerts.sender import CommandSender
        from geowarn.daemon.alerts.worker import OutboxWorker
        from geowarn.daemon.config import IntakeSettings, load_config
        from geowarn.daemon.intake import Intake
        from geowarn.daemon.journal import Journal
        from geowarn.simulators.alarm_devices import AlarmDevices
        from geowarn.simulators.http_receiver import HttpReceiver

        self.own_rx = rx is None
        self.rx = HttpReceiver().start() if rx is None else rx
        self.config_path = write_config(tmp_path / "geowarn.yaml", self.rx.port, broker_url, **sections)
        self.cfg = load_config(self.config_path)
        s = self.cfg.settings
        self.state = tmp_path / "state"
        self.db_path = self.state / "journal.sqlite"
        self.sender = self.devices = self.intake = self.journal = None
        if broker_url:
            self.sender = CommandSender(broker_url, s.intake, client_id="geowarn-test-commands").start()
            assert self.sender.wait_connected()
            self.devices = AlarmDevices(broker_url, silent).start()
        self.worker = OutboxWorker(self.db_path, notifier=AppriseNotifier(s.notify.apprise_config),
                                   sender=self.sender, retry=s.notify.retry, poll_s=0.05,
                                   clock=worker_clock or time.time).start()
        self.manager = AlertManager(self.cfg.registry, self.db_path, notify=s.notify, sirens=s.sirens,
                                    sampling=s.sampling, wake=self.worker.wake, express=self.worker)
        if broker_url:
            self.journal = Journal(self.db_path)
            self.intake = Intake(self.cfg.registry, IntakeSettings(client_id="geowarn-test-intake", batch_wait_ms=2),
                                 self.journal, broker_url=broker_url,
                                 sink=lambda c: [self.manager.on_reply(r) for r in c.entry.replies])
            self.intake.start()
            assert self.intake.wait_connected()

    def rows(self, sql: str, args: tuple = ()) -> list:
        return self.manager.db.query(sql, args)

    def wait_idle(self, channel: str = "apprise", timeout: float = 30.0) -> bool:
        from helpers import wait_until
        return wait_until(lambda: not self.rows(
            "SELECT 1 FROM outbox WHERE channel = ? AND status IN ('pending', 'sending') LIMIT 1", (channel,)),
            timeout)

    def received(self, role: str | None = None, site: str | None = None) -> list:
        return [r for r in self.rx.received
                if (role is None or role_of(r.path) == role) and (site is None or r.path.split("/")[1] == site)]

    def close(self) -> None:
        if self.intake is not None:
            self.intake.stop()
            self.journal.close()
        self.worker.stop()
        self.manager.close()
        if self.devices is not None:
            self.devices.stop()
        if self.sender is not None:
            self.sender.stop()
        if self.own_rx:
            self.rx.stop()
