"""The outbox keeps its promises: kill -9 of the delivery process loses nothing and sends nothing
confirmed twice; a receiver down for minutes gets everything when it returns."""
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from geowarn.daemon.alerts.events import DeviceFault, SiteLevelChange
from geowarn.daemon.alerts.manager import AlertManager
from geowarn.daemon.config import load_config
from geowarn.simulators.http_receiver import HttpReceiver

from alert_fixtures import Harness, write_config
from helpers import wait_until

T0 = time.time()


def storm(manager, t0, sites=("S1", "S2")):
    """Enough alerts to fill the outbox: three levels, a fault and a repeat round per site."""
    for site in sites:
        prev = "normal"
        for i, level in enumerate(("yellow", "orange", "red")):
            manager.handle(SiteLevelChange(site, t0 + i, level, prev, [f"{site} {level} 速率 {10 * (i + 1)} mm/d"]))
            prev = level
        manager.handle(DeviceFault(site, f"{site}-GNSS", "offline", t0 + 5, "无数据"))
    manager.tick(t0 + 700)


def receipt_key(row, port):
    return row["target"].split(f"127.0.0.1:{port}", 1)[1], row["title"], row["body"]


class Deliverer:
    """`geowarn deliver` as a separate process that we can kill -9."""

    def __init__(self, config, state):
        self.log = open(state.parent / "deliver.log", "ab")  # a pipe nobody reads would block it
        self.args = [sys.executable, "-m", "geowarn.daemon.cli", "deliver", "--config", str(config), "--state-dir",
                     str(state), "--no-commands", "--poll", "0.05"]
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.log)
        return self

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


@pytest.fixture
def rx():
    r = HttpReceiver().start()
    yield r
    r.stop()


def test_kill_9_of_the_delivery_process_loses_nothing_and_resends_nothing_confirmed(tmp_path, rx):
    cfg = load_config(write_config(tmp_path / "geowarn.yaml", rx.port))
    state = tmp_path / "state"
    mgr = AlertManager(cfg.registry, state / "journal.sqlite", notify=cfg.settings.notify,
                       sirens=cfg.settings.sirens, sampling=cfg.settings.sampling)
    rows = lambda sql="SELECT * FROM outbox WHERE channel = 'apprise'": mgr.db.query(sql)  # noqa: E731
    worker = Deliverer(cfg.source, state)
    try:
        # A: a first storm, delivered completely
        storm(mgr, T0, sites=("S1",))
        worker.start()
        assert wait_until(lambda: all(r["status"] == "delivered" for r in rows()), 60)
        confirmed_a = {r["id"] for r in rows()}
        # B: the receiver fails; kill -9 while every new message waits between attempts
        rx.fail = True
        storm(mgr, T0 + 1000, sites=("S2",))
        failures = lambda: rows("SELECT COUNT(*) FROM outbox_attempts WHERE ok = 0")[0][0]  # noqa: E731
        assert wait_until(lambda: failures() >= 15, 60)
        worker.kill9()
        # C: a storm while the worker is dead, then a kill -9 in the middle of live deliveries
        rx.fail = False
        mgr.handle(SiteLevelChange("S1", T0 + 2000, "normal", "red", []))
        storm(mgr, T0 + 3000, sites=("S1",))
        worker.start()
        assert wait_until(lambda: sum(r["status"] == "delivered" for r in rows()) > len(confirmed_a) + 3, 60)
        worker.kill9()
        confirmed_at_kill = {r["id"] for r in rows() if r["status"] == "delivered"}
        # D: restart: everything arrives
        worker.start()
        # the all-clear of S1 cancelled its repeats still waiting: the only rows not delivered
        assert wait_until(lambda: all(r["status"] == "delivered" or (r["status"] == "cancelled" and ":repeat:" in r["key"])
                                      for r in rows()), 60), Counter(r["status"] for r in rows())
        worker.stop()
        got = Counter((r.path, r.title, r.message) for r in rx.received)
        all_rows = [r for r in rows() if r["status"] == "delivered"]
        assert len(all_rows) >= 40
        for r in all_rows:
            n = got[receipt_key(r, rx.port)]
            assert n >= 1, f"lost: {r['key']}"
            if r["id"] in confirmed_at_kill:
                assert n == 1, f"confirmed, then sent again: {r['key']}"
        assert rx.failures > 0
        assert failures() >= 15
        assert not mgr.db.query("SELECT 1 FROM outbox_attempts WHERE finished IS NULL")
    finally:
        worker.stop()
        mgr.close()


def test_receiver_down_for_minutes_then_everything_arrives_and_the_failing_contacts_are_reported(tmp_path):
    # the worker's clock runs 100x: five minutes of backoff (5 s doubling to 60 s) take three seconds
    start = time.time()
    fast = lambda: start + (time.time() - start) * 100  # noqa: E731
    h = Harness(tmp_path, worker_clock=fast, notify={"retry": {"base_s": 5, "max_s": 60, "report_failing_after": 3}})
    try:
        h.rx.stop()
        h.manager.handle(SiteLevelChange("S1", T0, "red", "normal", ["切线角 86°"]))
        h.manager.handle(DeviceFault("S2", "S2-GNSS", "offline", T0, "无数据"))
        # down until every message has failed six times: 5+10+20+40+60 s > 2 minutes of worker time
        assert wait_until(lambda: min(r[0] for r in h.rows("SELECT attempts FROM outbox WHERE channel = 'apprise'")) >= 6, 60)
        assert fast() - start > 120
        # an operator sees it: `geowarn outbox` lists what keeps being retried
        out = subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", "outbox", "--state-dir", str(h.state),
                              "--json"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        import json
        report = json.loads(out.stdout)
        assert report["rows"].get("delivered", 0) == 0 and report["oldest_waiting"]
        assert {r["recipient"] for r in report["retrying"]} >= {"王监测", "张户主", "运维二"}
        assert all(r["attempts"] >= 6 for r in report["retrying"] if r["recipient"])
        h.manager.tick(T0 + 1)
        failing = [a for a in h.manager.alerts() if a.fault == "contact_failing"]
        # the red's five recipients and S2's technician (its offline message fails too)
        assert sorted(a.device for a in failing) == sorted(
            f"contact:{n}" for n in ("王监测", "孙值班", "李镇长", "张户主", "赵户主", "运维二"))
        h.rx.start()
        assert h.wait_idle(timeout=60)
        h.manager.tick(T0 + 2)
        assert h.wait_idle(timeout=60)
        assert not [a for a in h.manager.alerts() if a.fault == "contact_failing"]  # cleared once delivered
        statuses = Counter(r[0] for r in h.rows("SELECT status FROM outbox WHERE channel = 'apprise'"))
        assert statuses == {"delivered": sum(statuses.values())}
        titles = Counter(r.title.split("】")[0] for r in h.rx.received)
        assert titles["【红色预警·警报级"] == 5 and titles["【设备故障"] == 1 + 6 + 6  # fault, failing, recovered
        detail = h.rows("SELECT detail FROM outbox_attempts WHERE ok = 0 LIMIT 1")[0][0]
        assert "FAILURE" in detail and "127.0.0.1" in detail  # apprise's own per-target result
    finally:
        h.close()


def test_one_worker_per_state_dir(tmp_path):
    cfg = write_config(tmp_path / "geowarn.yaml", 9)
    from geowarn.daemon.alerts.delivery import AppriseNotifier
    from geowarn.daemon.alerts.worker import OutboxWorker, WorkerBusy
    first = OutboxWorker(tmp_path / "journal.sqlite", notifier=AppriseNotifier()).start()
    try:
        with pytest.raises(WorkerBusy):
            OutboxWorker(tmp_path / "journal.sqlite", notifier=AppriseNotifier()).start()
        second = subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", "deliver", "--config", str(cfg),
                                 "--state-dir", str(tmp_path), "--no-commands"], capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 1 and "another delivery worker is running" in second.stderr
    finally:
        first.stop()


def test_a_separate_delivery_process_is_woken_not_left_to_its_poll(tmp_path, rx):
    cfg = load_config(write_config(tmp_path / "geowarn.yaml", rx.port))
    state = tmp_path / "state"
    mgr = AlertManager(cfg.registry, state / "journal.sqlite", notify=cfg.settings.notify)
    worker = Deliverer(cfg.source, state)
    worker.args[worker.args.index("--poll") + 1] = "600"  # it would not look by itself for ten minutes
    try:
        worker.start()
        assert wait_until(lambda: (state / "outbox.wake").exists(), 30)
        mgr.handle(SiteLevelChange("S1", T0, "orange", "normal", ["雨量 24 h 132 mm"]))
        assert rx.wait_for(5, 60)  # the nudge through the state directory woke it
    finally:
        worker.stop()
        mgr.close()
