"""A running Service for the console tests: the alert tests' two-site network (S2 moved away
from S1 so the map shows both), Mosquitto, a local apprise receiver and alarm devices that
reply, exactly as tests/test_pipeline.py runs it."""
from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

from geowarn.daemon.config import load_config
from geowarn.daemon.service import Service
from geowarn.drivers.formats import format_classes
from geowarn.simulators.alarm_devices import AlarmDevices
from geowarn.simulators.http_receiver import HttpReceiver
from geowarn.simulators.publisher import Publisher

from alert_fixtures import write_config
from helpers import wait_subscribed

TOKEN = "console-token"


@contextmanager
def running_service(tmp_path: Path, broker_url: str, drill: bool = False, **http: Any) -> Iterator[Service]:
    """The caller sets GEOWARN_HTTP_TOKEN (monkeypatch) before entering."""
    rx = HttpReceiver().start()
    cfg_path = write_config(tmp_path / "geowarn.yaml", rx.port, broker_url, http={"port": 0, **http})
    doc = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    s2 = next(s for s in doc["sites"] if s["id"] == "S2")
    s2.update(lon=112.52, lat=27.78, county="湘乡市", township="测试镇2")
    s2["devices"].append({"id": "S2-RAIN", "kind": "rain", "protocol": "native", "interval_s": 600})
    cfg_path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    cfg = load_config(cfg_path)
    alarms = AlarmDevices(broker_url).start()
    svc = Service(cfg, tmp_path / "state", broker_url, config_path=str(cfg_path), drill=drill)
    svc.start()
    try:
        wait_subscribed(tmp_path / "state", cfg.registry, broker_url, time.time() - 30 * 86400, "S2-CRACK")
        yield svc
    finally:
        svc.stop()
        alarms.stop()
        rx.stop()


def publish_status(broker_url: str, site: str, device: str, status: dict[str, Any]) -> None:
    with Publisher(broker_url, "status") as pub:
        pub.publish(f"geowarn/v1/{site}/{device}/status", json.dumps({"ts": time.time(), "status": status}).encode())
        assert pub.flush()


def publish_readings(svc: Service, broker_url: str, device_id: str, rows: list[tuple[float, dict[str, float]]]) -> None:
    dev = svc.config.registry.device(device_id)
    fmt = format_classes()[dev.protocol](svc.config.registry)
    with Publisher(broker_url, "readings") as pub:
        for ts, values in rows:
            pub.publish(*fmt.encode_readings(dev, ts, values))
        assert pub.flush()


def accelerating_crack(now: float, failure_in_h: float = 10.0) -> list[tuple[float, dict[str, float]]]:
    """72 hourly crack widths opening as 1/v falls linearly to zero `failure_in_h` ahead
    (Fukuzono): v = k / (tf - t), so the width is -k ln(tf - t)."""
    tf, t0 = now + failure_in_h * 3600, now - 72 * 3600
    return [(t, {"width": 10 - 50 * math.log((tf - t) / (tf - t0))}) for t in (now - h * 3600 for h in range(72, -1, -1))]


def rain_last_hour(now: float, mm: float = 5.0) -> list[tuple[float, dict[str, float]]]:
    return [(now - 3600 + i * 600, {"mm": mm}) for i in range(1, 7)]


def http(svc: Service, method: str, path: str, body: Any = None, token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"http://127.0.0.1:{svc.http.port}{path}", method=method, headers=headers,
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read().decode()
            return r.status, json.loads(raw) if r.headers.get_content_type() == "application/json" else raw
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode() or "{}")


def s2_complete(svc: Service) -> list[dict] | None:
    """S2's series once the service holds what accelerating_crack and rain_last_hour published
    (the broker's acknowledgement comes before the journal's commit, and that before the core's)."""
    series = http(svc, "GET", "/api/v1/sites/S2")[1]["series"]
    rain = [s for s in series if s["device"] == "S2-RAIN" and s["channel"] == "mm"]
    done = rain and len(rain[0]["v"]) == 6 and (rain[0]["rain_totals_mm"] or {}).get("1", 0) >= 30 - 1e-6
    return series if done and any(s["forecast"] for s in series) else None
