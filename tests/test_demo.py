"""`make demo` is the slope-failure drill on the example network; here shortened by speed."""
import json
import subprocess
import sys


def _demo(tmp_path, *args):
    r = subprocess.run([sys.executable, "-m", "geowarn.simulators.demo", "--speed", "20000",
                        "--out", str(tmp_path / "demo"), *args], capture_output=True, text=True, timeout=300)
    return r, json.loads((tmp_path / "demo" / "drill.json").read_text(encoding="utf-8"))


def test_demo_drill_passes_on_mosquitto(tmp_path):
    r, report = _demo(tmp_path)  # a local Mosquitto is installed for the tests, so the demo takes it
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "【演练】slope-failure: PASS" in r.stdout
    assert report["passed"] and report["lead_times"]["YHQ005"]["lead_time_h"] > 12
    assert "→ YHQ005 household" in r.stdout, "the notification feed is printed as it happens"
    assert (tmp_path / "demo" / "drill.html").read_text(encoding="utf-8").count("<svg") >= 1


def test_demo_without_mosquitto_warns_the_households_in_time(tmp_path):
    """The in-process broker (amqtt) path of `make demo` on a machine without Mosquitto."""
    r, report = _demo(tmp_path, "--embedded")
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["level YHQ005"]["passed"] and checks["lead time YHQ005"]["passed"], r.stdout[-3000:]
    assert checks["notified YHQ005"]["passed"] and checks["other sites"]["passed"]
    assert checks["drill tagging"]["passed"]
