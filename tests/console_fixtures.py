"""A running Service for the console tests: the alert tests' two-site network (S2 moved away
from S1 so the map shows both), Mosquitto, a local apprise receiver and alarm devices that
reply, exactly as tests/test_pipeline.py runs it."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

from geowarn.daemon.config import load_config
from geowarn.daemon.service import Service
from geowarn.simulators.alarm_devices import AlarmDevices
from geowarn.simulators.http_receiver import HttpReceiver
from geowarn.simulators.publisher import Publisher

from alert_fixtures import write_config
from helpers import wait_subscribed

TOKEN = "console-token"


@contextmanager
def running_service(tmp_path: Path, broker_url: str, **http: Any) -> Iterator[Service]:
    """The caller sets GEOWARN_HTTP_TOKEN (monkeypatch) before entering."""
    rx = HttpReceiver().start()
    cfg_path = write_config(tmp_path / "geowarn.yaml", rx.port, broker_url, http={"port": 0, **http})
    doc = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    s2 = next(s for s in doc["sites"] if s["id"] == "S2")
    s2.update(lon=112.52, lat=27.78, county="湘乡市", township="测试镇2")
    cfg_path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    cfg = load_config(cfg_path)
    alarms = AlarmDevices(broker_url).start()
    svc = Service(cfg, tmp_path / "state", broker_url, config_path=str(cfg_path))
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
