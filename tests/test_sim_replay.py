"""`geowarn simulate` from the command line: a scenario run, and `--from-csv` replaying what
`geowarn export` wrote, through a real Mosquitto into the real intake."""
import csv
import io
import math
import re
import subprocess
import sys
import time

import pytest

from geowarn.daemon.config import ConfigError, IntakeSettings
from geowarn.daemon.intake import Intake
from geowarn.daemon.journal import Journal
from geowarn.drivers.timestamps import parse_ts
from geowarn.simulators.replay import Replayer, read_frames
from geowarn.simulators.scenario import load_scenario
from geowarn.simulators.simulator import Simulator

from helpers import wait_until

CLI = [sys.executable, "-m", "geowarn.daemon.cli", "--log-level", "WARNING"]


class Service:
    """The in-process intake journaling into its own state directory."""

    def __init__(self, registry, url, state, client_id):
        self.state = state
        self.journal = Journal(state / "journal.sqlite", "normal")
        self.intake = Intake(registry, IntakeSettings(client_id=client_id, batch_wait_ms=5), self.journal,
                             broker_url=url)
        self.intake.start()
        assert self.intake.wait_connected()
        time.sleep(0.2)  # subscriptions in place

    def close(self):
        self.intake.stop()
        self.journal.close()

    def export(self) -> str:
        r = subprocess.run([*CLI, "export", "--state-dir", str(self.state)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout


@pytest.fixture
def services(mosquitto, registry, tmp_path):
    started = []

    def start(name):
        svc = Service(registry, mosquitto.url, tmp_path / name, f"geowarn-{name}")
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.close()


def rows(csv_text):
    return [(parse_ts(ts), site, dev, kind, ch, float(v)) for ts, site, dev, kind, ch, v in
            list(csv.reader(io.StringIO(csv_text)))[1:]]


def simulate(*args):
    return subprocess.run([*CLI, "simulate", *args], capture_output=True, text=True, timeout=120)


def test_the_cli_plays_a_scenario_hour_by_hour(services, mosquitto, registry):
    svc = services("a")
    sc = load_scenario("device-offline", registry)
    fault = sc.faults[0]
    r = simulate("--broker", mosquitto.url, "--scenario", sc.name, "--speed", "max")
    assert r.returncode == 0, r.stderr
    start = parse_ts(re.search(r"from (\S+)", r.stdout).group(1))
    hours = re.findall(r"^\S+  \+(\d+) h  readings", r.stdout, re.M)
    assert [int(h) for h in hours] == list(range(1, int(sc.duration_h) + 1))
    assert f"fault_start {fault.device} offline" in r.stdout and "finished: readings" in r.stdout
    sent = int(re.search(r"finished: readings (\d+), statuses (\d+)", r.stdout).group(1))
    statuses = int(re.search(r"finished: readings (\d+), statuses (\d+)", r.stdout).group(2))
    assert wait_until(lambda: svc.intake.stats.messages >= sent + statuses, timeout=60)
    assert svc.intake.stats.quarantine == {}
    last = max(ts for ts, _, dev, *_ in rows(svc.export()) if dev == fault.device)
    assert start + (fault.start_h - 2) * 3600 <= last < start + fault.start_h * 3600  # silent from the fault on


def test_from_csv_replays_an_export_exactly_and_shifts_old_data_to_now(services, mosquitto, registry, tmp_path):
    a = services("a")
    sim = Simulator(registry, mosquitto.url, speed=math.inf, duration_h=3, client_id="sim-a")
    sim.start()
    assert sim.join(60) and sim.error is None
    assert wait_until(lambda: a.intake.stats.messages >= sim.counts["readings"] + sim.counts["statuses"])
    exported = a.export()
    a.close()
    original = rows(exported)
    assert len(original) > 800

    # the same timestamps: the journal of a second service ends up identical
    path = tmp_path / "export.csv"
    path.write_text(exported)
    b = services("b")
    replay = Replayer(registry, mosquitto.url, read_frames(path, registry), math.inf, keep_time=True)
    replay.run()
    assert replay.shift == 0 and replay.error is None
    assert wait_until(lambda: b.journal.count_readings() >= len(original))
    assert rows(b.export()) == original
    assert b.intake.stats.quarantine == {}
    b.close()

    # a month old, with epoch-second timestamps: shifted so the last reading lands at now
    old = tmp_path / "old.csv"
    lines = [exported.splitlines()[0]] + [f"{ts - 30 * 86400:.3f},{s},{d},{k},{c},{v!r}"
                                         for ts, s, d, k, c, v in original]
    old.write_text("\n".join(lines) + "\n")
    c = services("c")
    r = simulate("--from-csv", str(old), "--broker", mosquitto.url, "--speed", "max")
    done = time.time()
    assert r.returncode == 0, r.stderr
    assert "shifted by +720.0 h" in r.stdout or "shifted by +719.9 h" in r.stdout, r.stdout
    assert wait_until(lambda: c.journal.count_readings() >= len(original))
    replayed = rows(c.export())
    shift = replayed[0][0] - (original[0][0] - 30 * 86400)
    assert [(ts - shift, *rest) for ts, *rest in replayed] == [(ts - 30 * 86400, *rest) for ts, *rest in original]
    assert done - 60 < replayed[-1][0] <= done
    assert c.intake.stats.quarantine == {}


@pytest.mark.parametrize("line, problem", [
    ("2026-11-29T00:00:00Z,XTX001,430321020001,crack,width,wide", "line 3: value 'wide' is not a number"),
    ("yesterday,XTX001,430321020001,crack,width,1.0", "line 3: unparseable timestamp"),
    ("2026-11-29T00:00:00Z,XTX001,999999999999,crack,width,1.0", "line 3: device '999999999999' is not in the registry"),
    ("2026-11-29T00:00:00Z,XTX002,430321020001,crack,width,1.0", "line 3: device 430321020001 is a crack at XTX001"),
    ("2026-11-29T00:00:00Z,XTX001,430321020001,crack,width", "line 3: 5 fields, expected 6"),
    ("2026-11-29T00:00:00Z,XTX001,430321010001,gnss,dx,1.0", "line 3: gnss 430321010001"),
    ("2026-11-29T01:00:00Z,XTX001,430321020001,crack,width,1e9", "line 3: 430321020001 crack.width = 1e+09 outside"),
    ("2026-11-29T00:00:00Z,XTX001,430321020001,crack,width,1.6", "line 3: 430321020001 width at 2026-11-29T00:00:00Z "
                                                                 "appears twice (first on line 2)"),
])
def test_a_malformed_csv_row_is_refused_with_file_and_line(tmp_path, registry, line, problem):
    path = tmp_path / "bad.csv"
    path.write_text("ts,site,device,kind,channel,value\n2026-11-29T00:00:00Z,XTX001,430321020001,crack,width,1.5\n"
                    + line + "\n")
    with pytest.raises(ConfigError) as err:
        read_frames(path, registry)
    assert str(err.value).startswith(f"{path}:3: ") and problem in str(err.value), str(err.value)


def test_the_cli_refuses_a_bad_csv_in_one_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("time,where,value\n1,2,3\n")
    r = simulate("--from-csv", str(path), "--broker", "mqtt://127.0.0.1:1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"geowarn simulate: {path}:1: line 1: the header must be ts,site,device,kind,channel,value"
