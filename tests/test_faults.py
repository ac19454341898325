"""Fault suite, real processes: a publisher streams numbered readings through Mosquitto to a
`geowarn run` subprocess while we kill geowarn with SIGKILL at random moments, or crash the
broker. Afterwards every reading the broker acknowledged to the publisher is in the journal
exactly once: the journal commits before geowarn acknowledges, and de-duplicates redeliveries.
"""
from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from contextlib import contextmanager

import pytest

from geowarn.daemon.config import default_config_path
from geowarn.daemon.journal import Journal
from geowarn.drivers.formats.native import Format as Native
from geowarn.simulators.local_broker import free_port
from geowarn.simulators.publisher import Publisher

from helpers import journal_count, journal_rows, wait_subscribed, wait_until

KILLS = 22
RATE = 300.0  # readings/s: a busy network in accelerated mode, well within one core's reach
BASE_TS = time.time() - 2 * 86400  # reading i is stamped BASE_TS + i: unique, plausible, in the past


class NumberedStream:
    """Publishes reading i = crack width i/1000 mm at BASE_TS + i, paced, until stopped."""

    def __init__(self, url: str, registry):
        self.cracks = [d for d in registry.devices if d.kind == "crack"]
        self.native = Native(registry)
        self.pub = Publisher(url, "fault-fleet").connect()
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def message(self, i: int) -> tuple[str, bytes]:
        dev = self.cracks[i % len(self.cracks)]
        return self.native.encode_readings(dev, BASE_TS + i, {"width": i / 1000.0}, seq=i)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            self.pub.publish(*self.message(self.sent))
            self.sent += 1
            time.sleep(max(0.0, t0 + self.sent / RATE - time.monotonic()))

    def start(self) -> "NumberedStream":
        self._thread.start()
        return self

    def stop(self) -> int:
        """Stop publishing and wait until the broker acknowledged every message; returns the count."""
        self._stop.set()
        self._thread.join()
        assert self.pub.flush(120), "the broker never acknowledged everything"
        self.pub.close()
        return self.sent


def start_geowarn(url: str, state, client_id: str = "geowarn-faults", http_port: int = 0,
                  extra: str = "") -> subprocess.Popen:
    """`geowarn run` on `url`; `extra` is more configuration (YAML sections)."""
    cfg = state.parent / "geowarn.yaml"
    cfg.write_text(f"registry: {default_config_path()}\nintake:\n  client_id: {client_id}\n"
                   f"http:\n  port: {http_port}\n{extra}")
    return launch_geowarn(cfg, url, state)


def launch_geowarn(cfg, url: str, state, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "geowarn.daemon.cli", "--log-level", "WARNING", "run",
                             "--config", str(cfg), "--broker", url, "--state-dir", str(state)],
                            stdout=subprocess.DEVNULL, stderr=open(state.parent / "geowarn.log", "ab"),
                            env=None if env is None else {**os.environ, **env})


def stop_geowarn(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def journaled(state) -> list[int]:
    """The numbers of the stream's readings in the journal, sorted (the marker is a pressure reading)."""
    with Journal(state / "journal.sqlite", "normal") as j:
        return sorted(round(v * 1000) for ts, site, dev, kind, ch, v in j.export_rows() if kind == "crack")


def assert_exactly_once(state, n: int, may_miss: frozenset[int] = frozenset()) -> None:
    """The journal holds readings 0..n-1 once each (but those in `may_miss`), and nothing else."""
    got = journaled(state)
    assert len(got) == len(set(got)), "a reading journaled twice"
    assert set(got) <= set(range(n))
    missing = set(range(n)) - set(got)
    assert missing <= may_miss, f"lost {len(missing - may_miss)}: {sorted(missing - may_miss)[:20]}"
    assert journal_count(state) == len(got) + 1


class Rig:
    """geowarn running on the broker, subscribed, with the numbered stream flowing into it."""

    def __init__(self, mosquitto, registry, state, via: str | None = None, extra: str = ""):
        self.mosquitto, self.registry, self.state = mosquitto, registry, state
        self.url = via or mosquitto.url  # geowarn's way to the broker; the publisher goes direct
        self.http_port = free_port()  # known in advance: `geowarn status` finds it in the configuration
        self.extra = extra
        self.proc: subprocess.Popen | None = None
        self.stream: NumberedStream | None = None

    def __enter__(self) -> "Rig":
        self.state.mkdir()
        self.restart_geowarn()
        wait_subscribed(self.state, self.registry, self.mosquitto.url, BASE_TS - 60)  # the session exists
        self.stream = NumberedStream(self.mosquitto.url, self.registry).start()
        return self

    def restart_geowarn(self) -> None:
        self.proc = start_geowarn(self.url, self.state, http_port=self.http_port, extra=self.extra)

    def health(self) -> dict:
        """geowarn's /healthz: {"status": ok|degraded|failing, "reasons": [...]}"""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=5) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:  # 503 while failing
            return json.load(e)
        except OSError:
            return {"status": "down", "reasons": []}

    def status_cli(self) -> subprocess.CompletedProcess:
        """`geowarn status` beside the running service, as an operator would type it."""
        return subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", "status", "--state-dir", str(self.state),
                               "--config", str(self.state.parent / "geowarn.yaml")],
                              capture_output=True, text=True, timeout=60)

    def finish(self, may_miss: frozenset[int] = frozenset()) -> int:
        """Stop the stream, let geowarn take what the broker still holds for it, stop geowarn
        cleanly; returns the number of readings published."""
        n = self.stream.stop()
        self.stream = None
        assert wait_until(lambda: set(range(n)) - may_miss <= set(journaled(self.state)), timeout=180), \
            f"{journal_count(self.state) - 1} of {n} readings journaled"
        time.sleep(1.0)  # a duplicate or a straggler would show up now
        assert self.proc.poll() is None, "geowarn died"
        return n

    def __exit__(self, *exc) -> None:
        if self.stream is not None:
            self.stream.stop()
        if self.proc is not None:
            stop_geowarn(self.proc)


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(mosquitto, registry, tmp_path):
    seed = random.randrange(2**32)
    rnd = random.Random(seed)
    state = tmp_path / "state"
    with Rig(mosquitto, registry, state) as rig:
        at_kill = []
        for _ in range(KILLS):
            before, proc = journal_count(state), rig.proc
            if rnd.random() < 0.3:  # anywhere: start-up, warm-up, connecting
                time.sleep(rnd.uniform(0.0, 2.0))
            else:  # in the thick of it: once this run has committed something
                wait_until(lambda: journal_count(state) > before or proc.poll() is not None, timeout=30)  # noqa: B023  -- waited for here
                time.sleep(rnd.uniform(0.0, 0.6))
            proc.kill()
            proc.wait(10)
            at_kill.append(journal_count(state))
            rig.restart_geowarn()
        n = rig.finish()
    assert at_kill[-1] < n + 1, "every reading was in before the last kill: nothing was interrupted"
    # most runs got killed after committing something: the kills hit live intake, not just start-up
    assert sum(b > a for a, b in zip(at_kill, at_kill[1:])) >= KILLS // 2, (seed, at_kill)
    assert_exactly_once(state, n)


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_broker_down_and_back_mid_stream_loses_nothing(mosquitto, registry, tmp_path, how):
    """Mosquitto stopped (or SIGKILLed) while readings flow, restarted a moment later: geowarn
    reconnects on its own, the publisher resends what the broker had not acknowledged, and the
    broker's persisted session delivers what geowarn had not acknowledged.

    A SIGKILLed Mosquitto forgets what it acknowledged since its last autosave (every second
    here) and had not yet handed on: that window is the broker's to lose, not geowarn's, so
    only readings published around a SIGKILL may be missing; everything else must be there."""
    state = tmp_path / "state"
    may_miss: set[int] = set()
    with Rig(mosquitto, registry, state) as rig:
        for _ in range(2):
            before = journal_count(state)
            assert wait_until(lambda: journal_count(state) > before + 300, timeout=60)  # noqa: B023  -- waited for here
            time.sleep(1.1)
            crash_from = rig.stream.sent - int(2 * RATE) - 100  # two autosave periods and paho's in-flight window
            mosquitto.stop(kill=how == "kill")
            time.sleep(random.uniform(0.5, 2.0))
            mosquitto.start()
            if how == "kill":
                may_miss |= set(range(max(0, crash_from), rig.stream.sent + 1))
        time.sleep(2.0)
        n = rig.finish(frozenset(may_miss))
    assert_exactly_once(state, n, frozenset(may_miss))
    assert n - len(may_miss) > 300  # readings before, between and after the crashes were held to the strict standard


def test_network_cut_and_slowed_between_geowarn_and_broker_loses_nothing(mosquitto, registry, tmp_path):
    """A TCP proxy between geowarn and the broker drops the connection (and refuses new ones
    for a moment) three times, then slows every chunk by 50 ms and drops it once more."""
    from tcp_proxy import TcpProxy

    state = tmp_path / "state"
    proxy = TcpProxy(mosquitto.port).start()
    try:
        with Rig(mosquitto, registry, state, via=f"mqtt://127.0.0.1:{proxy.port}") as rig:
            for down_s in (0.0, 0.5, 1.5, None):
                before = journal_count(state)
                assert wait_until(lambda: journal_count(state) > before + 200, timeout=60), "no progress"  # noqa: B023  -- waited for here
                if down_s is None:  # a slow link, cut while slow
                    proxy.delay_s = 0.05
                    time.sleep(1.0)
                    proxy.cut()
                    time.sleep(1.0)
                    proxy.delay_s = 0.0
                else:
                    proxy.cut(down_s)
            n = rig.finish()
    finally:
        proxy.close()
    assert proxy.cuts >= 4
    # the cuts reached geowarn: it logged each loss of the broker and came back on its own
    assert (tmp_path / "geowarn.log").read_text().count("disconnected from") >= 4
    assert_exactly_once(state, n)


# --- the journal's disk full or read-only ------------------------------------------------------

@contextmanager
def disk_full(rig: Rig):
    """geowarn's file size limit drops to 0: every write it makes to a file fails with EFBIG
    (and SIGXFSZ, which geowarn ignores) where a full disk fails it, on the WAL append. Any user
    may do this to their own process, without a mount; raising the limit again frees the space."""
    pid = rig.proc.pid
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, hard))
    try:
        yield
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))


@contextmanager
def read_only(rig: Rig):
    """The journal's files and directory become immutable (chattr +i): the kernel refuses every
    write to them, through descriptors geowarn already holds (EPERM), as a file system gone
    read-only does. A read-only remount cannot do that under open files (EBUSY). The -shm index
    stays writable: SQLite maps it, and a write to an immutable mapping is SIGBUS, not an error.
    Needs root (CAP_LINUX_IMMUTABLE) and ext4/xfs/btrfs, as on the CI machine."""
    files = [rig.state, rig.state / "journal.sqlite", rig.state / "journal.sqlite-wal"]
    subprocess.run(["chattr", "+i", *map(str, files)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], check=True, capture_output=True)


@pytest.mark.parametrize("fault", [disk_full, read_only], ids=["disk-full", "read-only"])
def test_journal_disk_full_or_read_only_stops_acknowledging_and_recovers(mosquitto, registry, tmp_path, fault):
    """While the journal cannot be written geowarn stays up, says it is failing (/healthz and
    `geowarn status`), and commits nothing, so it acknowledges nothing (it acknowledges only
    after a commit): the broker keeps every reading. When the disk is writable again, the
    readings published meanwhile land, each once."""
    state = tmp_path / "state"
    with Rig(mosquitto, registry, state) as rig:
        assert wait_until(lambda: journal_count(state) > 300, timeout=60), "no progress"
        with fault(rig):
            assert wait_until(lambda: rig.health()["status"] == "failing", timeout=30), rig.health()
            assert any(r.startswith("journal failing") for r in rig.health()["reasons"])
            held, sent = journal_count(state), rig.stream.sent
            assert wait_until(lambda: rig.stream.sent > sent + 2 * RATE, timeout=30)
            assert journal_count(state) == held, "committed (and so acknowledged) while the journal was failing"
            status = rig.status_cli()
            assert status.returncode == 1 and "service: failing; journal failing" in status.stdout, status
            assert rig.proc.poll() is None, "geowarn died"
            published_during = rig.stream.sent
        assert wait_until(lambda: rig.health()["status"] != "failing", timeout=30), rig.health()
        assert wait_until(lambda: journal_count(state) > held + (published_during - sent), timeout=30)
        assert rig.status_cli().returncode == 0
        n = rig.finish()
    assert_exactly_once(state, n)


# --- the network between geowarn and InfluxDB --------------------------------------------------

def test_network_cut_and_slowed_between_geowarn_and_influxdb_loses_and_duplicates_nothing(mosquitto, registry,
                                                                                         tmp_path):
    """geowarn exports to InfluxDB (a real VictoriaMetrics, which speaks its write API) through a
    TCP proxy that goes down for a while, then slows every chunk and drops the connections
    again while slow. While it is down /healthz says the export lags; afterwards every
    journal reading is in the database once, with its value at its time.

    A cut can lose the answer to a write the database took: the exporter then writes that
    batch again, the same points at the same times. InfluxDB overwrites such a point;
    VictoriaMetrics does the same with `-dedup.minScrapeInterval=1ms`, which is what it runs
    with here, so "once" is the database's view, as with InfluxDB."""
    from tcp_proxy import TcpProxy
    from test_export import assert_readings_exactly_once

    from geowarn.simulators.local_victoria import VictoriaMetrics

    state = tmp_path / "state"
    vm = VictoriaMetrics(workdir=tmp_path / "vm", extra=["-dedup.minScrapeInterval=1ms"]).start()
    proxy = TcpProxy(vm.port).start()
    influx = (f"influx:\n  url: http://127.0.0.1:{proxy.port}\n  batch_size: 200\n  poll_s: 0.05\n"
              "  backoff_initial_s: 0.05\n  backoff_max_s: 0.5\n  timeout_s: 2\n")
    try:
        with Rig(mosquitto, registry, state, extra=influx) as rig:
            exported = lambda: sum(len(r["timestamps"]) for r in vm.export('{__name__="reading_width"}'))  # noqa: E731
            assert wait_until(lambda: exported() > 300, timeout=60), "nothing exported"
            with proxy.down():
                assert wait_until(lambda: any(r.startswith("export lagging") for r in rig.health()["reasons"]),
                                  timeout=30), rig.health()
                assert rig.health()["status"] == "degraded"  # the readings are safe: not failing
                time.sleep(1.0)
            proxy.delay_s = 0.05  # a slow link, cut twice while slow
            for _ in range(2):
                time.sleep(1.0)
                proxy.cut()
            proxy.delay_s = 0.0
            n = rig.finish()
            assert wait_until(lambda: not rig.health()["reasons"], timeout=60), rig.health()  # caught up
        assert proxy.cuts >= 3
        assert_exactly_once(state, n)
        assert_readings_exactly_once(vm, state / "journal.sqlite", n + 1)  # and the marker
    finally:
        proxy.close()
        vm.close()


# --- the network between geowarn and the notification gateway ---------------------------------

def test_network_cut_and_slowed_between_geowarn_and_the_notification_gateway(mosquitto, tmp_path):
    """A site goes red and is stood down while the way to the notification gateway (apprise
    json:// to a local HTTP receiver, through a TCP proxy) is out, then slow and cut again and
    again. Every message of both state changes reaches each of its recipients, and a message
    the outbox recorded as delivered is never sent again.

    The one duplicate at-least-once allows: the gateway took a request and the cut lost its
    answer. The outbox recorded that attempt as failed and sent again; such a message is
    received once per attempt at most, and its failed attempt is in outbox_attempts."""
    from alert_fixtures import publish_accelerating_slope, write_config
    from tcp_proxy import TcpProxy

    from geowarn.daemon.config import load_config
    from geowarn.simulators.http_receiver import HttpReceiver

    state = tmp_path / "state"
    state.mkdir()
    rx = HttpReceiver().start()
    proxy = TcpProxy(rx.port).start()
    http_port = free_port()
    cfg_path = write_config(tmp_path / "geowarn.yaml", proxy.port, mosquitto.url, http={"port": http_port},
                            intake={"client_id": "geowarn-faults"})
    cfg = load_config(cfg_path)
    proc = launch_geowarn(cfg_path, mosquitto.url, state, env={"GEOWARN_HTTP_TOKEN": "faults"})
    db = lambda sql: journal_count(state, sql)  # noqa: E731
    rows = lambda: sqlite_rows(state, "SELECT * FROM outbox WHERE channel = 'apprise'")  # noqa: E731
    try:
        wait_subscribed(state, cfg.registry, mosquitto.url, time.time() - 30 * 86400, "S2-CRACK")
        with proxy.down():  # the gateway is unreachable when the site goes red
            publish_accelerating_slope(cfg.registry, mosquitto.url)
            assert wait_until(lambda: db("SELECT COUNT(*) FROM outbox_attempts WHERE ok = 0") >= 10, timeout=60)
        proxy.delay_s = 0.2  # then slow, and cut while requests are on the wire
        for _ in range(6):
            time.sleep(0.5)
            proxy.cut()
        proxy.delay_s = 0.0
        hazard = wait_until(lambda: db("SELECT id FROM alerts WHERE site = 'S1' AND kind = 'hazard' AND level = 'red'"),
                            timeout=30)
        assert hazard, "S1 never went red"
        assert wait_until(lambda: all(r["status"] == "delivered" for r in rows()), timeout=60)
        confirmed = {r["id"] for r in rows()}
        # the way back: an operator stands the alert down while the link is cut again
        proxy.delay_s = 0.2
        req = urllib.request.Request(f"http://127.0.0.1:{http_port}/api/v1/alerts/{hazard}/stand-down",
                                     method="POST", data=json.dumps({"by": "值班员", "reason": "现场核查稳定"}).encode(),
                                     headers={"Authorization": "Bearer faults", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert json.load(r)["status"] == "closed"
        for _ in range(3):
            time.sleep(0.4)
            proxy.cut()
        proxy.delay_s = 0.0
        assert wait_until(lambda: len(rows()) > len(confirmed)
                          and all(r["status"] in ("delivered", "cancelled") for r in rows()), timeout=60)
        time.sleep(1.0)  # a message sent again would arrive now
        assert proc.poll() is None, "geowarn died"
    finally:
        stop_geowarn(proc)
        proxy.close()
        rx.stop()
    receipts, attempts = assert_each_state_change_delivered(state, rx, proxy.port)
    assert sum(a[1] for a in attempts.values()) >= 10 and proxy.cuts >= 10
    print(f"\n{len(receipts)} messages delivered; {sum(n > 1 for n in receipts.values())} received twice "
          "(the answer lost to a cut)")


def assert_each_state_change_delivered(state, rx, port: int) -> tuple[dict, dict]:
    """Every message the outbox holds was delivered; each reached its recipient at least once
    (`rx`, reached through `port`), never more often than it was attempted, and more than once
    only after an attempt that failed (its answer lost to a cut, or the process killed with the
    request on the wire): a send recorded as confirmed is never repeated. Both state changes of
    S1 (going up to red; stood down) reached monitors, officials and households.
    Returns (receipts per outbox id, (attempts, failed attempts) per outbox id)."""
    from alert_fixtures import role_of

    rows = sqlite_rows(state, "SELECT * FROM outbox WHERE channel = 'apprise'")
    assert rows and all(r["status"] in ("delivered", "cancelled") for r in rows), \
        Counter(r["status"] for r in rows)
    final = [r for r in rows if r["status"] == "delivered"]
    attempts = {r["id"]: (r["attempts"], r["failed"]) for r in sqlite_rows(
        state, "SELECT outbox_id AS id, COUNT(*) AS attempts, SUM(ok = 0) AS failed FROM outbox_attempts GROUP BY outbox_id")}
    got = Counter((r.path, r.title, r.message) for r in rx.received)
    port_part = f"127.0.0.1:{port}"
    receipts = {r["id"]: got[(r["target"].split(port_part, 1)[1], r["title"], r["body"])] for r in final}
    for r in final:
        n, (tries, failed) = receipts[r["id"]], attempts[r["id"]]
        assert n >= 1, f"lost: {r['key']}"
        assert n <= tries, f"received more often than sent: {r['key']}"
        assert n == 1 or failed, f"confirmed, then sent again: {r['key']}"
    for events in (("opened", "raised"), ("stood_down",)):
        roles = {role_of(r["target"].split(port_part, 1)[1]) for r in final if r["key"].split(":")[2] in events}
        assert {"monitor", "official", "household"} <= roles, (events, roles)
    return receipts, attempts


def test_kill_9_while_a_site_goes_red_delivers_each_state_change(mosquitto, tmp_path):
    """geowarn SIGKILLed again and again while S1's readings take it to red and while the
    messages go out (over a slow link, so kills land with requests on the wire), then stood
    down. One alert, each level raised once in its history, every message of each state change
    delivered at least once, and a confirmed send never repeated."""
    from alert_fixtures import publish_accelerating_slope, write_config
    from tcp_proxy import TcpProxy

    from geowarn.daemon.config import load_config
    from geowarn.simulators.http_receiver import HttpReceiver

    rnd = random.Random(seed := random.randrange(2**32))
    state = tmp_path / "state"
    state.mkdir()
    rx = HttpReceiver().start()
    proxy = TcpProxy(rx.port).start()
    proxy.delay_s = 0.15
    http_port = free_port()
    cfg_path = write_config(tmp_path / "geowarn.yaml", proxy.port, mosquitto.url, http={"port": http_port},
                            intake={"client_id": "geowarn-faults"})
    cfg = load_config(cfg_path)
    env = {"GEOWARN_HTTP_TOKEN": "faults"}
    proc = launch_geowarn(cfg_path, mosquitto.url, state, env=env)
    kills = 0

    def kill_and_restart() -> None:
        nonlocal proc, kills
        proc.kill()
        proc.wait(10)
        kills += 1
        proc = launch_geowarn(cfg_path, mosquitto.url, state, env=env)

    try:
        wait_subscribed(state, cfg.registry, mosquitto.url, time.time() - 30 * 86400, "S2-CRACK")
        slope = threading.Thread(target=publish_accelerating_slope, args=(cfg.registry, mosquitto.url), daemon=True)
        slope.start()
        deadline = time.monotonic() + 60
        # kill while the readings land, the level rises and the messages leave
        while time.monotonic() < deadline and (kills < 8 or not sqlite_rows(
                state, "SELECT 1 FROM alerts WHERE site = 'S1' AND kind = 'hazard' AND level = 'red'")):
            time.sleep(rnd.uniform(0.3, 1.5))
            kill_and_restart()
        slope.join(30)
        hazard = wait_until(lambda: journal_count(
            state, "SELECT id FROM alerts WHERE site = 'S1' AND kind = 'hazard' AND level = 'red'"), timeout=30)
        assert hazard, f"S1 never went red (seed {seed})"
        outbox = lambda: sqlite_rows(state, "SELECT status FROM outbox WHERE channel = 'apprise'")  # noqa: E731
        for _ in range(3):  # and again while they are delivered
            time.sleep(rnd.uniform(0.2, 1.0))
            kill_and_restart()
        assert wait_until(lambda: all(r["status"] == "delivered" for r in outbox()), timeout=90)
        n_up = len(outbox())
        req = urllib.request.Request(f"http://127.0.0.1:{http_port}/api/v1/alerts/{hazard}/stand-down",
                                     method="POST", data=json.dumps({"by": "值班员", "reason": "现场核查稳定"}).encode(),
                                     headers={"Authorization": "Bearer faults", "Content-Type": "application/json"})
        assert wait_until(lambda: _http_ok(req), timeout=30)
        time.sleep(rnd.uniform(0.1, 0.4))
        kill_and_restart()  # the stand-down's messages are queued, some perhaps on the wire
        assert wait_until(lambda: len(outbox()) > n_up
                          and all(r["status"] in ("delivered", "cancelled") for r in outbox()), timeout=90)
        time.sleep(1.0)  # a message sent again would arrive now
    finally:
        stop_geowarn(proc)
        proxy.close()
        rx.stop()
    hazards = sqlite_rows(state, "SELECT id FROM alerts WHERE site = 'S1' AND kind = 'hazard'")
    assert len(hazards) == 1, "a restart opened the alert again"
    raised = Counter(r["level"] for r in sqlite_rows(
        state, f"SELECT json_extract(detail, '$.level') AS level FROM alert_history WHERE alert_id = {hazards[0]['id']} "
        "AND event IN ('opened', 'raised')"))
    assert raised and max(raised.values()) == 1, f"a level raised twice: {raised}"
    receipts, _ = assert_each_state_change_delivered(state, rx, proxy.port)
    print(f"\n{kills} kills (seed {seed}); {len(receipts)} messages delivered, "
          f"{sum(n > 1 for n in receipts.values())} received twice (killed with the request on the wire)")


def _http_ok(req) -> bool:
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)["status"] == "closed"
    except (urllib.error.URLError, ConnectionError):
        return False  # not listening yet after a restart


def sqlite_rows(state, sql: str) -> list:
    import sqlite3

    return journal_rows(state / "journal.sqlite", sql, sqlite3.Row)


# --- the clock jumping forward and back --------------------------------------------------------

def faketime_lib() -> str:
    import glob

    found = glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1") + glob.glob("/usr/lib/faketime/libfaketimeMT.so.1")
    assert found, "libfaketime is not installed (Debian: apt-get install faketime; `make test` does it)"
    return found[0]


def test_the_wall_clock_jumping_forward_and_back_while_a_site_is_red(mosquitto, tmp_path):
    """geowarn runs under libfaketime: its wall clock jumps 2 h ahead, then back to 1 h behind
    the truth, while the devices (right clocks) keep reporting and a site is at red. The
    monotonic clock is left alone, as NTP and `date -s` leave it. geowarn measures intervals on
    a wall clock that does not step (daemon/steady_clock.py): the devices' correct times are
    not quarantined as future, no device is declared offline by the forward jump, the red
    alert is neither repeated nor escalated by it, and nothing is lost."""
    from alert_fixtures import publish_accelerating_slope, write_config

    from geowarn.daemon.config import load_config
    from geowarn.drivers.formats import format_classes
    from geowarn.simulators.alarm_devices import AlarmDevices
    from geowarn.simulators.http_receiver import HttpReceiver

    state = tmp_path / "state"
    state.mkdir()
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    rx = HttpReceiver().start()
    alarms = AlarmDevices(mosquitto.url).start()  # the sirens answer their commands
    cfg_path = write_config(tmp_path / "geowarn.yaml", rx.port, mosquitto.url, intake={"client_id": "geowarn-faults"})
    cfg = load_config(cfg_path)
    proc = launch_geowarn(cfg_path, mosquitto.url, state, env={
        "LD_PRELOAD": faketime_lib(), "FAKETIME_TIMESTAMP_FILE": str(offset), "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
    db = lambda sql: journal_count(state, sql)  # noqa: E731
    crack = cfg.registry.device("S1-CRACK")
    native = format_classes()[crack.protocol](cfg.registry)
    try:
        wait_subscribed(state, cfg.registry, mosquitto.url, time.time() - 30 * 86400, "S2-CRACK")
        publish_accelerating_slope(cfg.registry, mosquitto.url)
        assert wait_until(lambda: db("SELECT COUNT(*) FROM alerts WHERE site = 'S1' AND level = 'red'"), timeout=30)
        assert wait_until(lambda: db("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending', 'published')")
                          == 0, timeout=30)
        time.sleep(1.5)  # the first ticks judge the marker's month-old silence (S2): legitimate faults
        before_rows, before_rx = db("SELECT COUNT(*) FROM outbox"), len(rx.received)
        faults = db("SELECT COUNT(*) FROM alerts WHERE kind = 'fault'")
        with Publisher(mosquitto.url, "clock-jumps") as pub:
            for step, jump in enumerate(("+2h", "-1h")):  # forward 2 h, then back to 1 h behind
                offset.write_text(jump + "\n")
                for i in range(10):  # the crack keeps opening, stamped with the devices' (true) time
                    pub.publish(*native.encode_readings(crack, time.time(), {"width": 1100 + 30 * step + 3 * i}))
                    time.sleep(0.3)
            assert pub.flush()
        assert wait_until(lambda: db("SELECT COUNT(*) FROM readings r JOIN series s ON s.id = r.series "
                                     "WHERE s.device = 'S1-CRACK'") >= 49 + 20, timeout=30), "readings lost"
        time.sleep(3.0)  # ticks on the jumped clock: a deadman, a repeat or an escalation would show now
        assert proc.poll() is None, "geowarn died"
        assert db("SELECT COUNT(*) FROM quarantine") == 0, "quarantined for the service's own clock"
        assert db("SELECT COUNT(*) FROM alerts WHERE kind = 'fault'") == faults, "a deadman storm"
        assert db("SELECT COUNT(*) FROM outbox") == before_rows, "notified again"
        assert len(rx.received) == before_rx
        assert db("SELECT COUNT(*) FROM alerts WHERE site = 'S1' AND level = 'red' AND status = 'open'") == 1
    finally:
        stop_geowarn(proc)
        alarms.stop()
        rx.stop()
    log = (tmp_path / "geowarn.log").read_text()
    assert "the system clock stepped by +7200 s" in log and "stepped by -3600 s" in log, log[-2000:]
