"""`geowarn replay`: CSV through the same core, a JSON report, bad rows quarantined."""
import json
import subprocess
import sys

import datasets
from geowarn.drivers.timestamps import format_ts


def geowarn(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", *args], capture_output=True, text=True, cwd=cwd)


CSV = """ts,site,device,kind,channel,value
2026-06-01T00:00:00Z,S1,r1,rain,mm,0
2026-06-01T00:10:00Z,S1,r1,rain,mm,20
2026-06-01T00:20:00Z,S1,r1,rain,mm,20
1780273800,S1,r1,rain,mm,10
2026-06-01T00:40:00Z,S1,r1,rain,mm,not-a-number
yesterday,S1,r1,rain,mm,1
2026-06-01T00:50:00Z,S1,r1,rain,furlongs,1
2026-06-01T00:50:00Z,S1,r1
2026-06-01T00:50:00Z,S1,r1,rain,mm,-4
2026-06-01T00:50:00Z,S1,c1,crack,width,12.5
2026-06-01T01:00:00Z,S1,r1,rain,mm,inf
"""


def test_report_json_with_quarantine_and_events(tmp_path):
    src = tmp_path / "r.csv"
    src.write_text(CSV)
    out = tmp_path / "report.json"
    p = geowarn("replay", str(src), "--auto-register", "--report", str(out))
    assert p.returncode == 0, p.stderr
    rep = json.loads(out.read_text())
    assert rep["readings"] == 5
    assert rep["quarantined"] == 6
    assert rep["quarantined_by_reason"] == {"bad_row": 1, "bad_timestamp": 1, "impossible_value": 1,
                                            "non_finite": 1, "non_numeric": 1, "unknown_sensor": 1}
    (ev,) = [e for e in rep["events"] if e["level"] == "yellow"]
    # replay judges a UTC day per batch: the rise is dated to the storm's peak report
    assert ev == {**ev, "ts": "2026-06-01T00:30:00Z", "site": "S1", "previous": "normal"}
    assert any("≥ 黄色阈值 45 mm" in r for r in ev["reasons"])
    assert any("yellow threshold 45 mm" in r for r in ev["reasons_en"])
    assert set(rep) >= {"readings", "quarantined", "events", "forecasts", "faults"}
    for f in rep["faults"]:
        assert set(f) >= {"ts", "site", "device", "fault"}


def test_replay_is_deterministic_and_prints_a_summary(tmp_path):
    _, truth = datasets.voight(tmp_path / "v.csv")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for out in (a, b):
        assert geowarn("replay", str(tmp_path / "v.csv"), "--auto-register", "--report", str(out)).returncode == 0
    assert a.read_bytes() == b.read_bytes()
    rep = json.loads(a.read_text())
    assert rep["forecasts"] and all(0 < f["fit_r2"] <= 1 for f in rep["forecasts"])
    assert rep["events"][-1]["level"] in ("orange", "red")
    p = geowarn("replay", str(tmp_path / "v.csv"), "--auto-register")
    assert p.returncode == 0
    assert "readings:" in p.stdout and "highest level per site: VOIGHT" in p.stdout


def test_unknown_devices_without_auto_register_are_quarantined(tmp_path):
    src = tmp_path / "r.csv"
    src.write_text(CSV)
    out = tmp_path / "report.json"
    assert geowarn("replay", str(src), "--report", str(out)).returncode == 0
    rep = json.loads(out.read_text())
    assert rep["readings"] == 0 and rep["quarantined_by_reason"]["unknown_device"] == 7


def test_bad_input_is_a_clear_error(tmp_path):
    p = geowarn("replay", str(tmp_path / "missing.csv"))
    assert p.returncode == 2 and "missing.csv" in p.stderr and "cannot read" in p.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("time,where,value\n1,2,3\n")
    p = geowarn("replay", str(bad))
    assert p.returncode == 2 and "header must be ts,site,device,kind,channel,value" in p.stderr
    assert "Traceback" not in p.stderr


def test_rows_must_match_the_registry(tmp_path):
    src = tmp_path / "r.csv"
    # 430321010001 is a GNSS station of XTX001 in the example registry
    src.write_text("ts,site,device,kind,channel,value\n"
                   "2026-06-01T00:00:00Z,XTX001,430321010001,gnss,dh,3.5\n"
                   "2026-06-01T00:00:00Z,XTX001,430321010001,rain,mm,3.5\n"
                   "2026-06-01T00:00:00Z,XTX002,430321010001,gnss,dz,1\n")
    out = tmp_path / "report.json"
    assert geowarn("replay", str(src), "--report", str(out)).returncode == 0
    rep = json.loads(out.read_text())
    assert rep["readings"] == 1
    assert rep["quarantined_by_reason"] == {"kind_mismatch": 1, "site_mismatch": 1}
    empty = tmp_path / "e.csv"
    empty.write_text("ts,site,device,kind,channel,value\n")
    p = geowarn("replay", str(empty))
    assert p.returncode == 0 and "readings: 0, quarantined: 0" in p.stdout


def test_replay_judges_what_the_service_judges(tmp_path, mosquitto):
    """The same readings through Mosquitto into the service and through `geowarn replay`: the
    same level changes. The GNSS station sends its measured components only (the service's
    decoder derives `dh`); the replayed CSV holds the same components, so replay must derive
    `dh` by the same kind code or it would not see the horizontal movement at all."""
    import math
    import time

    import numpy as np

    from geowarn.daemon.config import load_config
    from geowarn.daemon.service import Service
    from geowarn.drivers.formats import format_classes
    from geowarn.simulators.publisher import Publisher

    from alert_fixtures import network, write_config
    from helpers import wait_subscribed, wait_until

    net = network()
    net["sites"][1]["devices"].append({"id": "S2-RAIN", "kind": "rain", "protocol": "native", "interval_s": 86400})
    cfg_path = write_config(tmp_path / "geowarn.yaml", 9, mosquitto.url, sites=net["sites"], http={"port": 0})
    cfg = load_config(cfg_path)
    reg = cfg.registry
    formats = {n: c(reg) for n, c in format_classes().items()}
    gnss, rain = reg.device("S1-GNSS"), reg.device("S2-RAIN")
    rng = np.random.default_rng(7)
    day0 = math.floor(time.time() / 86400) * 86400 - 40 * 86400 + 8 * 3600
    # a daily GNSS solution: quiet for 25 days, then moving east 12 mm/day (yellow by rate);
    # a gauge reporting once a day, one wet day among them
    days = []
    dx = 0.0
    for d in range(40):
        dx += (12.0 if d >= 25 else 0.3) + rng.normal(0, 1.0)
        days.append((day0 + d * 86400, {"dx": dx, "dy": rng.normal(0, 1.5), "dz": rng.normal(0, 2.0)},
                     {"mm": 120.0 if d == 30 else float(rng.choice([0.0, 0.0, 3.5]))}))
    svc = Service(cfg, tmp_path / "state", mosquitto.url, config_path=str(cfg_path))
    heard = []
    svc.listeners.append(heard.append)
    svc.start()
    try:
        wait_subscribed(tmp_path / "state", reg, mosquitto.url, day0 - 86400, "S2-CRACK")

        def judged(device, channel, t):
            sid = svc.core.series.get(device.site, device.id, channel)
            return sid is not None and svc.core.win.last_ts[sid] >= t

        with Publisher(mosquitto.url, "equivalence") as pub:
            for t, g, r in days:  # a day at a time, each judged before the next (replay batches by day)
                pub.publish(*formats[gnss.protocol].encode_readings(gnss, t, g))
                pub.publish(*formats[rain.protocol].encode_readings(rain, t + 60, r))
                assert pub.flush()
                assert wait_until(lambda: judged(gnss, "dz", t) and judged(rain, "mm", t + 60), 20)  # noqa: B023  -- waited for here
    finally:
        svc.stop()
    service_changes = [(format_ts(e.ts), e.site, e.previous, e.level) for e in heard if hasattr(e, "level")]
    assert any(s == "S1" and lv != "normal" for _, s, _, lv in service_changes), service_changes

    exported = geowarn("export", "--state-dir", str(tmp_path / "state"))
    assert exported.returncode == 0, exported.stderr
    lines = exported.stdout.splitlines()
    assert any(",gnss,dh," in ln for ln in lines)  # the journal holds what the decoder derived
    src = tmp_path / "components.csv"
    src.write_text("\n".join(ln for ln in lines if ",gnss,dh," not in ln) + "\n")  # as survey data come
    out = tmp_path / "report.json"
    p = geowarn("replay", str(src), "--config", str(cfg_path), "--report", str(out))
    assert p.returncode == 0, p.stderr
    rep = json.loads(out.read_text())
    assert rep["derived"] == len(days)
    replay_changes = [(e["ts"], e["site"], e["previous"], e["level"]) for e in rep["events"]]
    assert replay_changes == service_changes


def test_derived_channels_come_from_the_kind_code(tmp_path):
    """dh from the same instant's dx and dy (a given dh there is replaced, as the service never
    takes it from the wire); a dh alone, as `geowarn export` of old records has it, stays."""
    from geowarn.daemon.replay import run_replay

    src = tmp_path / "c.csv"
    src.write_text("ts,site,device,kind,channel,value\n"
                   "2026-06-01T00:00:00Z,S1,g1,gnss,dx,3\n"
                   "2026-06-01T00:00:00Z,S1,g1,gnss,dy,4\n"
                   "2026-06-01T00:00:00Z,S1,g1,gnss,dh,99\n"
                   "2026-06-01T01:00:00Z,S1,g1,gnss,dx,6\n"
                   "2026-06-01T02:00:00Z,S1,g1,gnss,dh,7.5\n")
    o = run_replay(src, auto_register=True)
    assert o.readings == 5 and o.derived == 1  # dx dy dh, dx, dh
    sid = o.core.series.get("S1", "g1", "dh")
    assert list(o.core.win.raw_v[sid, :2]) == [5.0, 7.5]
