"""The service as systemd runs it: notify protocol, reload, logs (the unit files: test_install.py)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geowarn.daemon.config import default_config_path, load_config
from geowarn.daemon.logs import redact
from geowarn.drivers.formats.native import Format as Native
from geowarn.simulators.publisher import Publisher

from helpers import journal_count, wait_subscribed, wait_until


def _config(tmp_path, registry_text: str, client_id: str) -> Path:
    reg = tmp_path / "registry.yaml"
    reg.write_text(registry_text, encoding="utf-8")
    cfg = tmp_path / "geowarn.yaml"
    cfg.write_text(f"registry: {reg}\nintake:\n  client_id: {client_id}\n", encoding="utf-8")
    return cfg


def _geowarn_run(cfg, url, state, env=None, *extra):
    return subprocess.Popen([sys.executable, "-m", "geowarn.daemon.cli", *extra, "run", "--config", str(cfg),
                             "--broker", url, "--state-dir", str(state)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})


def test_notify_protocol_ready_watchdog_stopping(tmp_path, mosquitto):
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(15)
    cfg = _config(tmp_path, default_config_path().read_text(encoding="utf-8"), "gw-notify")
    proc = _geowarn_run(cfg, mosquitto.url, tmp_path / "state",
                        {"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "2000000"})
    try:
        messages = []
        while not any("WATCHDOG=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        ready = next(m for m in messages if "READY=1" in m)
        assert "STATUS=" in ready and "readings" in ready
        proc.send_signal(signal.SIGTERM)
        while not any("STOPPING=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        assert proc.wait(15) == 0
    finally:
        proc.kill()
        sock.close()


def test_sighup_reload_refuses_a_broken_config_and_applies_a_good_one(tmp_path, mosquitto):
    original = default_config_path().read_text(encoding="utf-8")
    cfg = _config(tmp_path, original, "gw-reload")
    reg = tmp_path / "registry.yaml"
    state = tmp_path / "state"
    proc = _geowarn_run(cfg, mosquitto.url, state, None, "--log-format", "json")
    try:
        wait_subscribed(state, load_config(cfg).registry, mosquitto.url, time.time() - 7200)
        reg.write_text(original.replace("kind: crack", "kind: crak", 1), encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert proc.poll() is None, "a broken config must not stop the service"
        # a good config adding a device: its readings are accepted after the reload
        added = original.replace("  devices:\n", "  devices:\n  - id: '999900000001'\n    kind: crack\n", 1)
        reg.write_text(added, encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        dev = load_config(cfg).registry.device("999900000001")
        with Publisher(mosquitto.url, "dev-new") as pub:
            pub.publish(*Native(load_config(cfg).registry).encode_readings(dev, time.time() - 60, {"width": 2.0}))
            pub.flush()
        assert wait_until(lambda: journal_count(state) == 2, timeout=15)  # marker + the new device
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    lines = [json.loads(line) for line in out.decode().splitlines()]
    refused = [x for x in lines if "reload refused" in x["msg"]]
    assert refused and refused[0]["level"] == "error" and "crak" in refused[0]["msg"]
    assert any("configuration reloaded" in x["msg"] for x in lines)
    assert all({"ts", "level", "logger", "msg"} <= x.keys() for x in lines)


@pytest.mark.parametrize("text, secret", [
    ("connecting to mqtts://geowarn:S3cr3t-pw@broker:8883", "S3cr3t-pw"),
    ("json://user:hunter2@127.0.0.1:9000/hook", "hunter2"),
    ("config: password=abc123xyz token: tok-999", "abc123xyz"),
    ('{"apikey": "k-77-secret"}', "k-77-secret"),
])
def test_no_secret_reaches_a_log_line(text, secret):
    assert secret not in redact(text) and "***" in redact(text)


def test_service_exports_what_it_journals_to_influxdb(tmp_path, mosquitto, registry):
    from geowarn.simulators.local_victoria import VictoriaMetrics

    with VictoriaMetrics(workdir=tmp_path / "vm") as vm:
        cfg = tmp_path / "geowarn.yaml"
        cfg.write_text(f"registry: {default_config_path()}\nintake: {{client_id: gw-influx}}\n"
                       f"influx: {{url: '{vm.url}', poll_s: 0.05}}\n", encoding="utf-8")
        state = tmp_path / "state"
        proc = _geowarn_run(cfg, mosquitto.url, state)
        try:
            wait_subscribed(state, registry, mosquitto.url, time.time() - 7200)
            cracks = [d for d in registry.devices if d.kind == "crack"][:10]
            native = Native(registry)
            t0 = time.time() - 3600
            with Publisher(mosquitto.url, "fleet-influx") as pub:
                for i, dev in enumerate(cracks):
                    pub.publish(*native.encode_readings(dev, t0 + i, {"width": 1.0 + i}))
                pub.flush()
            rows = vm.export_until('{__name__="reading_width"}', len(cracks), timeout=30)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=20)
    got = {r["metric"]["device"]: (r["metric"]["site"], r["metric"]["kind"], r["values"]) for r in rows}
    assert got == {d.id: (d.site, "crack", [1.0 + i]) for i, d in enumerate(cracks)}


def test_the_service_never_loads_the_simulators(tmp_path, mosquitto):
    """`geowarn simulate` and `geowarn drill` are named by daemon/cli.py and imported only when run."""
    cfg = _config(tmp_path, default_config_path().read_text(encoding="utf-8"), "gw-no-sim")
    cfg.write_text(cfg.read_text(encoding="utf-8") + "http: {port: 0}\n", encoding="utf-8")
    argv = ["run", "--config", str(cfg), "--broker", mosquitto.url, "--state-dir", str(tmp_path / "state"),
            "--duration", "1"]
    code = ("import sys\nfrom geowarn.daemon.cli import main\n"
            f"rc = main({argv!r})\n"
            "print(rc, sorted(m for m in sys.modules if m.startswith('geowarn.simulators')))\n"
            "main(['drill', '--help'])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.splitlines()[0] == "0 []", r.stdout[-2000:] + r.stderr[-2000:]
    assert "usage: geowarn drill" in r.stdout  # and the simulator's own options are there when asked for


def test_an_http_server_that_cannot_start_makes_the_service_failing_until_it_can(tmp_path, mosquitto):
    """No API, console, field reports or /healthz is no healthy service: systemd's watchdog is
    not pinged while failing. The start is tried again; once the port is free, health recovers."""
    import urllib.request

    from geowarn.daemon.service import Service

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    cfg = tmp_path / "geowarn.yaml"
    cfg.write_text(f"registry: {default_config_path()}\nhttp: {{port: {port}}}\n", encoding="utf-8")
    svc = Service(load_config(cfg), tmp_path / "state", mosquitto.url, config_path=str(cfg))
    try:
        svc.start()
        state, reasons = svc.health()
        assert state == "failing" and any(f"could not start on 127.0.0.1:{port}" in r for r in reasons), reasons
        assert svc.status_line().startswith("failing")
        taken.close()
        svc.http.retry()
        assert svc.http.failure is None and not [r for r in svc.health()[1] if "HTTP" in r]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            assert json.loads(r.read())["status"] in ("ok", "degraded")
    finally:
        taken.close()
        svc.stop()
