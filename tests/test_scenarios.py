"""Scenario files: they load and validate, errors name file, line and key, and the world each
one generates does what its expectation says (checked on the generated data, no broker)."""
import subprocess
import sys

import numpy as np
import pytest

from geowarn.daemon.config import ConfigError
from geowarn.daemon.model.levels import Level
from geowarn.simulators.fleet import Fleet
from geowarn.simulators.scenario import list_scenarios, load_scenario

START = 1_790_000_000.0
HOUR = 3600.0
# Hunan county level table, mm over 1/3/6/24 h (any one reached)
RAIN_TABLE = {"blue": (35, 55, 70, 100), "yellow": (45, 75, 95, 130), "orange": (60, 100, 120, 160),
              "red": (80, 120, 150, 200)}
WINDOWS_H = (1, 3, 6, 24)


def test_the_required_scenarios_ship():
    names = set(list_scenarios())
    assert {"slope-failure", "heavy-rain-county", "device-offline", "spiking-sensor", "flatline-sensor",
            "gnss-jump", "broken-siren"} <= names


@pytest.mark.parametrize("name", list_scenarios())
def test_each_shipped_scenario_loads_against_the_default_network(name, registry):
    sc = load_scenario(name, registry)
    assert sc.name == name and sc.title
    e = sc.expect
    if sc.accelerations:
        assert e.min_lead_time_h is not None and all(e.levels.get(a.site) == "red" for a in sc.accelerations)
    pure_device_fault = sc.faults and not sc.accelerations and not sc.storms
    if pure_device_fault:
        assert e.no_household_warning and e.device_faults
    for f in sc.faults:  # every fault the scenario injects is expected to be reported
        if f.type != "no_solar":
            assert f.device in {d.device for d in e.device_faults}


def write(tmp_path, name, text):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


GOOD = """name: {name}
title: t
duration_h: 10
expect:
  levels: {{XTX001: yellow}}
"""


@pytest.mark.parametrize("body, where, problem", [
    ("name: x\ntitle: t\nduration_h: 10\n", "expect", "Field required"),
    ("name: x\ntitle: t\nduration_h: 10\nexpect:\n  levels: {XTX001: purple}\n", ":5: expect.levels.XTX001", "should be 'normal'"),
    ("name: x\ntitle: t\nduration_h: 10\nexpect: {}\nfaults:\n  - device: '1'\n    type: melt\n", "faults[0].type", "should be 'offline'"),
    ("name: x\ntitle: t\nduration_h: 10\nexpect: {}\naccelerations:\n  - {site: XTX001, onset_h: 5, failure_h: 4}\n",
     "accelerations[0]", "must come after onset_h"),
    ("name: x\ntitle: t\nduration_h: 10\nexpect: {}\nstorms:\n  - {county: 韶山市, start_h: 1}\n",
     "storms[0]", "hourly_mm or total_mm"),
    ("name: x\ntitle: t\nduration_h: [10\n", ":4", "invalid YAML"),
    ("name: x\ntitle: t\nduration_h: 10\nexpect: {}\nfaults:\n  - {device: '999', type: offline}\n",
     ":6: faults[0].device", "not in the registry"),
    ("name: x\ntitle: t\nduration_h: 10\nexpect: {}\nfaults:\n  - device: '430321010001'\n    type: jump\n"
     "    magnitude: 3\n    channels: [dx, dq]\n", ":9: faults[0].channels[1]", "a gnss has no channel 'dq'"),
    ("name: x\ntitle: t\nduration_h: 10\nexpect:\n  sirens:\n    '430321020001': succ\n",
     ":6: expect.sirens.430321020001", "is not an alarm"),
    ("name: x\ntitle: t\nduration_h: 10\nexpect: {sirens: {'430321020001': succ}, bogus: 1}\n", "expect.bogus",
     "Extra inputs"),
    ("name: y\ntitle: t\nduration_h: 10\nexpect: {}\n", "name", "must match the file name"),
])
def test_a_broken_scenario_is_refused_naming_file_line_and_key(tmp_path, registry, body, where, problem):
    path = write(tmp_path, "x", body)
    with pytest.raises(ConfigError) as err:
        load_scenario(path, registry)
    msg = str(err.value)
    assert msg.startswith(str(path)) and where in msg and problem in msg, msg


def test_the_cli_reports_a_broken_scenario_in_one_line(tmp_path):
    path = write(tmp_path, "x", "name: x\ntitle: t\nduration_h: -1\nexpect: {}\n")
    r = subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", "simulate", "--broker", "mqtt://127.0.0.1:1",
                        "--scenario", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().startswith(f"geowarn simulate: {path}:3: duration_h:") and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", "simulate", "--broker", "mqtt://127.0.0.1:1",
                        "--scenario", "no-such-thing"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "slope-failure" in r.stderr and "Traceback" not in r.stderr


# --- the generated world matches the expectation ---------------------------------------------------

def readings_of(fleet, until, devices):
    out = {d: [] for d in devices}
    for e in fleet.due(until):
        if e.what == "reading" and e.device.id in out:
            out[e.device.id].append((e.ts, e.values))
    return out


def inverse_velocity_fit(t, y, window_s):
    """1/v (days per mm) from a linear fit in consecutive windows; a straight-line fit through them."""
    mids, inv = [], []
    k = t[0]
    while k + window_s <= t[-1]:
        m = (t >= k) & (t < k + window_s)
        v = np.polyfit(t[m], y[m], 1)[0] * 86400.0
        if v > 0:
            mids.append(k + window_s / 2)
            inv.append(1.0 / v)
        k += window_s
    mids, inv = np.array(mids), np.array(inv)
    slope, intercept = np.polyfit(mids, inv, 1)
    r2 = np.corrcoef(mids, inv)[0, 1] ** 2
    return -intercept / slope, r2, inv


@pytest.mark.parametrize("noise", [False, True])
def test_the_failing_slope_follows_voight_inverse_velocity_to_t_f(registry, noise):
    sc = load_scenario("slope-failure", registry)
    a = sc.accelerations[0]
    site = registry.site(a.site)
    kinds = {d.kind: d.id for d in site.devices}
    fleet = Fleet(registry, START, sc, noise=noise)
    onset, tf = START + a.onset_h * HOUR, START + a.failure_h * HOUR
    assert fleet.failures == {a.site: tf}
    for _ in fleet.due(onset):
        pass
    for dev in (kinds["gnss"], kinds["crack"], kinds["tilt"]):  # as the service would at yellow
        assert fleet.command(dev, "setworkmode", {"mode": "2"}, onset).ok
    rows = readings_of(fleet, tf + 6 * HOUR, [kinds["gnss"], kinds["crack"], kinds["tilt"]])
    gnss = rows[kinds["gnss"]]
    t = np.array([ts for ts, _ in gnss])
    assert t[-1] < tf <= t[-1] + 60  # the instruments report up to the failure, then are gone
    dh = np.hypot([v["dx"] for _, v in gnss], [v["dy"] for _, v in gnss])
    if not noise:  # the law itself: 1/v is a straight line that reaches zero at t_f
        predicted, r2, inv = inverse_velocity_fit(t, dh, HOUR)
        assert r2 > 0.999 and abs(predicted - tf) < 0.25 * HOUR
        assert inv[-1] < 0.03 * inv[0]
    else:  # through a crack meter's noise and thermal cycle, the forecast still finds t_f
        crack = rows[kinds["crack"]]
        tc = np.array([ts for ts, _ in crack])
        predicted, r2, _ = inverse_velocity_fit(tc, np.array([v["width"] for _, v in crack]), 6 * HOUR)
        assert r2 > 0.85 and abs(predicted - tf) < 4 * HOUR
    # the corroborating instruments move the same way: all accelerate over the last day
    for dev in (kinds["gnss"], kinds["crack"], kinds["tilt"]):
        series = rows[dev]
        first_day = [v for ts, v in series if onset <= ts < onset + 24 * HOUR]
        last_day = [v for ts, v in series if tf - 24 * HOUR <= ts]
        ch = {"gnss": "dx", "crack": "width", "tilt": "x"}[registry.device(dev).kind]
        moved = lambda vs: abs(vs[-1][ch] - vs[0][ch])  # noqa: E731, B023  -- used here
        assert moved(last_day) > 3 * moved(first_day) or (noise and ch == "dx")


def test_the_failing_slope_gets_its_rain_first(registry):
    sc = load_scenario("slope-failure", registry)
    a = sc.accelerations[0]
    fleet = Fleet(registry, START, sc)
    storm = sc.storms[0]
    rain = fleet.weather.hourly(a.site)
    before_onset = sum(mm for h, mm in rain.items() if storm.start_h <= h < a.onset_h)
    assert before_onset >= 100 and storm.start_h < a.onset_h


def rain_level(increments):
    """The highest level of the Hunan table reached by rolling sums of (ts, mm) reports."""
    ts = np.array([t for t, _ in increments])
    cum = np.concatenate([[0.0], np.cumsum([v for _, v in increments])])
    # the largest sum of reports inside any window ending at a report
    most = {w: (cum[1:] - cum[np.searchsorted(ts, ts - w * HOUR, side="right")]).max() for w in WINDOWS_H}
    reached = "normal"
    for level in ("blue", "yellow", "orange", "red"):
        if any(most[w] >= limit - 1e-9 for w, limit in zip(WINDOWS_H, RAIN_TABLE[level])):
            reached = level
    return reached


def test_the_heavy_rain_day_reaches_the_orange_row_at_every_gauge_and_nowhere_else(registry):
    # the rain itself reaches the county table's orange row; the site level stays yellow only
    # because one instrument alone is capped (the scenario's expectation says so)
    sc = load_scenario("heavy-rain-county", registry)
    gauges = [d for d in registry.devices if d.kind == "rain"]
    fleet = Fleet(registry, START, sc)
    rows = readings_of(fleet, START + sc.duration_h * HOUR, [d.id for d in gauges])
    county = sc.storms[0].county
    for d in gauges:
        level = rain_level([(ts, v["mm"]) for ts, v in rows[d.id]])
        site = registry.site(d.site)
        if site.county == county:
            assert level == "orange", (site.id, level)
        else:
            assert Level.of(level) <= Level.of(sc.expect.others_max_level), (site.id, level)
        # gauges report every 10 minutes while it rains and their counters add up
        totals = [v["total"] for _, v in rows[d.id]]
        assert totals[-1] - totals[0] == pytest.approx(sum(v["mm"] for _, v in rows[d.id][1:]), abs=0.05)


def test_a_quiet_network_stays_below_every_rain_threshold(registry):
    assert not load_scenario("quiet-day", registry).storms
    fleet = Fleet(registry, START)  # background showers only, as on the quiet day
    gauges = [d.id for d in registry.devices if d.kind == "rain"]
    rows = readings_of(fleet, START + 10 * 24 * HOUR, gauges)
    assert any(v["mm"] > 0 for g in gauges for _, v in rows[g])  # it does rain a little
    assert all(rain_level([(ts, v["mm"]) for ts, v in rows[g]]) == "normal" for g in gauges)


def test_device_faults_show_in_what_the_device_sends(registry):
    def run(name):
        sc = load_scenario(name, registry)
        f = sc.faults[0]
        fleet = Fleet(registry, START, sc)
        em = [e for e in fleet.due(START + sc.duration_h * HOUR) if e.device.id == f.device]
        return f, [(e.ts, e.values) for e in em if e.what == "reading"], [e.values for e in em if e.what == "status"]

    f, rows, _ = run("device-offline")
    assert rows and max(ts for ts, _ in rows) < START + f.start_h * HOUR

    f, rows, _ = run("spiking-sensor")
    w = np.array([v["width"] for _, v in rows])
    med = np.median(w)
    spikes = [ts for ts, v in rows if v["width"] - med > f.magnitude / 2]
    expected = int((max(ts for ts, _ in rows) - START - f.start_h * HOUR) // (f.every_h * HOUR)) + 1
    assert len(spikes) == expected and np.ptp(np.delete(w, np.argwhere(w - med > f.magnitude / 2))) < 1.0

    f, rows, _ = run("flatline-sensor")
    stuck = [v for ts, v in rows if ts >= START + f.start_h * HOUR]
    moving = [v for ts, v in rows if ts < START + f.start_h * HOUR]
    assert len(stuck) > 10 and all(v == stuck[0] for v in stuck) and len({v["x"] for v in moving}) == len(moving)

    f, rows, _ = run("gnss-jump")
    t0 = START + f.start_h * HOUR
    before = np.mean([v["dx"] for ts, v in rows if ts < t0])
    after = np.mean([v["dx"] for ts, v in rows if ts >= t0])
    assert after - before == pytest.approx(f.magnitude, abs=3.0)

    f, rows, statuses = run("low-battery")
    battery = [s["battery_dump_energy"] for s in statuses]
    assert battery[0] > 70 and battery[-1] < 20 and all(s["solar_volt"] == 0 for s in statuses)
    assert max(ts for ts, _ in rows) < START + (168 - 12) * HOUR  # then the logger browned out
    healthy = [e.values["battery_dump_energy"] for e in Fleet(registry, START, load_scenario("low-battery")).due(
        START + 168 * HOUR) if e.what == "status" and e.device.id == "430321040002"]
    assert min(healthy) > 70


@pytest.mark.parametrize("name", list_scenarios())
def test_everything_a_scenario_sends_passes_the_intake_decoder_and_screen(name, registry):
    """Spikes, jumps and a slope tearing apart are data, not broken frames: zero quarantine."""
    from geowarn.daemon.intake import decode_message
    from geowarn.drivers.formats import load_formats
    from geowarn.drivers.screen import ScreenLimits
    from geowarn.simulators.wire import Wire

    sc = load_scenario(name, registry)
    fleet = Fleet(registry, START, sc)
    for a in sc.accelerations:  # as the service would: the site reports every minute from the onset
        for _ in fleet.due(START + a.onset_h * HOUR):
            pass
        for d in registry.site(a.site).devices:
            fleet.command(d.id, "setworkmode", {"mode": "2"}, START + a.onset_h * HOUR)
    # what the scenario touches (the quiet rest of the network is the whole-day test's)
    sites = ({a.site for a in sc.accelerations} | {registry.device(f.device).site for f in sc.faults}
             | {x.id for st in sc.storms for x in registry.sites if x.id in st.sites or x.county == st.county}
             or {"XTX001"})
    wire, formats = Wire(registry), load_formats(registry)
    end = START + sc.duration_h * HOUR
    sent = accepted = 0
    for e in fleet.due(end):
        if e.device.site not in sites:
            continue
        topic, payload = (wire.reading if e.what == "reading" else wire.status)(e.device, e.ts, e.values)
        decoded, ok = decode_message(topic, payload, formats, registry, end, ScreenLimits())
        assert decoded.rejections == [], decoded.rejections
        sent += 1
        accepted += len(ok) + len(decoded.statuses)
    assert sent > 0 and accepted >= sent


def test_a_run_is_judged_against_each_stated_expectation(registry):
    from geowarn.simulators.expectation import Outcome, judge

    sc = load_scenario("slope-failure", registry)
    tf = START + sc.accelerations[0].failure_h * HOUR
    good = Outcome(level_changes={"YHQ005": [(tf - 30 * HOUR, "yellow"), (tf - 10 * HOUR, "orange"),
                                             (tf - 4 * HOUR, "red")], "XTX001": []},
                   notified={"YHQ005": {"monitor", "official", "household", "duty_officer"}},
                   siren_replies={"430302060002": "succ"}, accelerated_sites={"YHQ005"})
    checks = judge(sc, good, {"YHQ005": tf})
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    assert {c.name for c in checks} == {"level YHQ005", "other sites", "notified YHQ005", "lead time YHQ005",
                                        "siren 430302060002", "accelerated YHQ005"}
    jump = load_scenario("gnss-jump", registry)
    site = next(iter(jump.expect.max_levels))
    verdict = {c.name: c.passed for c in judge(jump, Outcome(level_changes={site: [(START, "blue")]}), {})}
    assert verdict[f"at most {site}"] and verdict["other sites"]
    verdict = {c.name: c.passed for c in judge(jump, Outcome(level_changes={site: [(START, "yellow")]}), {})}
    assert not verdict[f"at most {site}"]
    late = Outcome(level_changes={"YHQ005": [(tf - 2 * HOUR, "red")], "YHQ001": [(tf, "blue")]},
                   notified={"YHQ005": {"monitor"}}, siren_replies={})
    failed = {c.name: c.detail for c in judge(sc, late, {"YHQ005": tf}) if not c.passed}
    assert failed == {"other sites": "above normal: YHQ001 blue",
                      "notified YHQ005": "not notified: duty_officer, household, official",
                      "lead time YHQ005": "2.0 h from the first yellow warning to failure (needs 12 h)",
                      "siren 430302060002": "replied none, expected succ",
                      "accelerated YHQ005": "never told to report faster"}

    offline = load_scenario("device-offline", registry)
    fault = offline.expect.device_faults[0]
    checks = judge(offline, Outcome(notified={"XTX003": {"technician", "household"}}), {})
    assert {c.name for c in checks if not c.passed} == {"fault " + fault.device, "not notified XTX003",
                                                        "no household warning"}
