"""`geowarn replay`: CSV through the same core, a JSON report, bad rows quarantined."""
import json
import subprocess
import sys

import datasets


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
