"""The whole chain in one service, through real parts: readings over Mosquitto → journal →
core → site red → siren command on the broker and its reply → messages through apprise to a
local receiver → acknowledgement over HTTP → /healthz and /metrics tell the story."""
import json
import time
import urllib.request

import pytest

from geowarn.daemon.config import load_config
from geowarn.daemon.service import Service
from geowarn.simulators.alarm_devices import AlarmDevices
from geowarn.simulators.http_receiver import HttpReceiver

from alert_fixtures import publish_accelerating_slope, role_of, write_config
from helpers import wait_subscribed, wait_until

TOKEN = "pipeline-token"


@pytest.fixture
def chain(tmp_path, mosquitto, monkeypatch):
    monkeypatch.setenv("GEOWARN_HTTP_TOKEN", TOKEN)
    rx = HttpReceiver().start()
    cfg_path = write_config(tmp_path / "geowarn.yaml", rx.port, mosquitto.url, http={"port": 0})
    cfg = load_config(cfg_path)
    alarms = AlarmDevices(mosquitto.url).start()
    svc = Service(cfg, tmp_path / "state", mosquitto.url, config_path=str(cfg_path))
    svc.start()
    wait_subscribed(tmp_path / "state", cfg.registry, mosquitto.url, time.time() - 30 * 86400, "S2-CRACK")
    yield svc, cfg, rx, alarms
    svc.stop()
    alarms.stop()
    rx.stop()


def _http(svc, method, path, body=None, token=TOKEN):
    req = urllib.request.Request(f"http://127.0.0.1:{svc.http.port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_slope_going_red_sounds_the_siren_and_reaches_people(chain, mosquitto):
    svc, cfg, rx, alarms = chain
    publish_accelerating_slope(cfg.registry, mosquitto.url)
    assert alarms.wait_for(lambda heard: any(h.device == "S1-ALARM" and h.name == "alarm" for h in heard), 30), \
        "no siren command reached the alarm"
    assert wait_until(lambda: svc.core.site_levels().get("S1") == "red", 10)
    roles = {"monitor", "official", "household", "duty_officer"}
    assert wait_until(lambda: roles <= {role_of(r.path) for r in rx.received if r.path.startswith("/S1/")}, 30)
    household = next(r for r in rx.received if r.path.startswith("/S1/household/"))
    assert "红色" in household.title + household.message and "测试1号滑坡" in household.title + household.message
    # S2's silent GNSS is a device fault: technicians only, never a household
    assert {role_of(r.path) for r in rx.received if r.path.startswith("/S2/")} <= {"technician"}
    # the siren's reply is journaled and confirms the command
    assert wait_until(lambda: svc.journal._query("SELECT COUNT(*) FROM replies WHERE ok = 1")[0][0] >= 1, 10)

    status, body = _http(svc, "GET", "/api/v1/alerts")
    alerts = json.loads(body)
    alerts = alerts.get("alerts", alerts) if isinstance(alerts, dict) else alerts
    hazard = next(a for a in alerts if a["site"] == "S1" and a["kind"] == "hazard")
    assert hazard["level"] == "red"
    assert _http(svc, "POST", f"/api/v1/alerts/{hazard['id']}/ack", {"by": "值班员"}, token="wrong")[0] == 403
    status, body = _http(svc, "POST", f"/api/v1/alerts/{hazard['id']}/ack", {"by": "值班员"})
    assert status == 200 and json.loads(body)["acked_by"] == "值班员"

    status, body = _http(svc, "GET", "/healthz")
    assert status == 200 and json.loads(body)["status"] in ("ok", "degraded")
    status, metrics = _http(svc, "GET", "/metrics")
    assert status == 200
    assert 'geowarn_site_level{site="S1"} 4.0' in metrics
    assert 'geowarn_open_alerts{kind="hazard",level="red"} 1.0' in metrics
    assert 'geowarn_readings_total{kind="crack"}' in metrics and "geowarn_intake_latency_seconds_bucket" in metrics
    assert 'geowarn_notifications_total{channel="apprise",result="ok"}' in metrics


def test_after_a_restart_the_windows_are_warm_and_nothing_is_notified_again(tmp_path, mosquitto, monkeypatch):
    monkeypatch.setenv("GEOWARN_HTTP_TOKEN", TOKEN)
    rx = HttpReceiver().start()
    # repeats are time-driven and legitimate; here only the restart may not notify anyone again
    cfg_path = write_config(tmp_path / "geowarn.yaml", rx.port, mosquitto.url, http={"port": 0},
                            notify={"levels": {"red": {"roles": ["monitor", "duty_officer", "official", "household"],
                                                       "repeat_s": 30 * 86400}}})
    cfg = load_config(cfg_path)
    with AlarmDevices(mosquitto.url) as alarms:
        svc = Service(cfg, tmp_path / "state", mosquitto.url)
        svc.start()
        try:
            wait_subscribed(tmp_path / "state", cfg.registry, mosquitto.url, time.time() - 30 * 86400, "S2-CRACK")
            publish_accelerating_slope(cfg.registry, mosquitto.url)
            assert wait_until(lambda: svc.core.site_levels().get("S1") == "red", 30)
            assert alarms.wait_for(lambda heard: any(h.device == "S1-ALARM" for h in heard), 30)
            assert wait_until(lambda: any(r.path.startswith("/S1/household/") for r in rx.received), 30)
            # the siren confirmed and the first round delivered: what remains is only repeats
            assert wait_until(lambda: svc.journal._query("SELECT COUNT(*) FROM replies WHERE ok = 1")[0][0], 10)
        finally:
            svc.stop()
        sent_before, heard_before = len(rx.received), len(alarms.heard)
        svc = Service(cfg, tmp_path / "state", mosquitto.url)
        svc.start()
        try:
            assert svc.core.site_levels().get("S1") == "red", "warm-up did not restore the level"
            time.sleep(2.0)
            assert len(alarms.heard) == heard_before, "the restart sounded the siren again"
            households = [r for r in rx.received[sent_before:] if r.path.startswith("/S1/household/")]
            assert households == [], "the restart notified households again"
        finally:
            svc.stop()
    rx.stop()


def test_health_reports_an_undelivered_outbox_and_recovers(tmp_path, mosquitto, monkeypatch):
    """The receiver is down: messages wait in the outbox, /healthz says degraded with the reason."""
    import geowarn.daemon.service as service_mod

    monkeypatch.setattr(service_mod, "OUTBOX_OVERDUE_S", 1.0)
    monkeypatch.setenv("GEOWARN_HTTP_TOKEN", TOKEN)
    rx = HttpReceiver()  # never started: every delivery fails
    cfg = load_config(write_config(tmp_path / "geowarn.yaml", rx.port, mosquitto.url, http={"port": 0}))
    with AlarmDevices(mosquitto.url):
        svc = Service(cfg, tmp_path / "state", mosquitto.url)
        svc.start()
        try:
            wait_subscribed(tmp_path / "state", cfg.registry, mosquitto.url, time.time() - 30 * 86400, "S2-CRACK")
            publish_accelerating_slope(cfg.registry, mosquitto.url)
            assert wait_until(lambda: svc.health()[0] == "degraded", 30)
            status, body = _http(svc, "GET", "/healthz")
            doc = json.loads(body)
            assert status == 200 and doc["status"] == "degraded"
            assert any("outbox backlog" in r for r in doc["reasons"])
            rx.start()
            assert wait_until(lambda: not any("outbox" in r for r in svc.health()[1]), 60)
        finally:
            svc.stop()
            rx.stop()
