"""Meteorological risk warnings through the real service: CLI → HTTP API and the MQTT topic →
weather desk → weather-risk signal in the core, accelerated reporting over Mosquitto (devices
answer), patrol order and reminder through the outbox and apprise to a local receiver, expiry."""
import json
import time

import pytest

from geowarn.daemon.cli import main as geowarn
from geowarn.simulators.alarm_devices import AlarmDevices
from geowarn.simulators.publisher import Publisher

from alert_fixtures import role_of
from field_fixtures import FieldChain
from helpers import wait_until
from test_field_reports import _publish_crack

REMINDER_S = 2.0


@pytest.fixture
def chain(tmp_path, mosquitto, monkeypatch):
    c = FieldChain(tmp_path, mosquitto.url, monkeypatch, s2_county="韶山市",
                   rules={"weather": {"reminder_h": REMINDER_S / 3600}})
    devices = AlarmDevices(mosquitto.url).start()
    yield c, devices
    devices.stop()
    c.stop()


def _heard(devices, name, device):
    return [h for h in devices.heard if h.name == name and h.device == device]


def test_a_county_warning_accelerates_patrols_reminds_never_warns_households_and_expires(chain):
    c, devices = chain
    t0 = time.time()
    rc = geowarn(["weather-warning", "--level", "黄色", "--counties", "湘潭县", "--hours", str(8 / 3600),
                  "--id", "HN-2026-117", "--url", f"http://127.0.0.1:{c.svc.http.port}"])
    assert rc == 0
    # S1's national devices get the national warning command with the area; S2 (韶山市) nothing
    assert devices.wait_for(lambda h: _heard(devices, "meteorologicalearlywarning", "S1-GNSS")
                            and _heard(devices, "meteorologicalearlywarning", "S1-CRACK"), 10)
    p = _heard(devices, "meteorologicalearlywarning", "S1-CRACK")[0].params
    assert p["level"] == "2" and p["effective_time"] == "1" and "," in p["lon_range"] and "," in p["lat_range"]
    assert not [h for h in devices.heard if h.device.startswith("S2-")]
    assert not _heard(devices, "meteorologicalearlywarning", "S1-ALARM")
    # the monitor of S1 is told to patrol, in Chinese; nobody at S2
    assert wait_until(lambda: any(r.path.startswith("/S1/monitor/") and "巡查指令" in r.title
                                  for r in c.rx.received), 10)
    assert c.svc.core.site_levels().get("S1", "normal") == "normal", "a weather warning never raises a site"
    # no field report from S1: one reminder after reminder_h
    assert wait_until(lambda: any(r.path.startswith("/S1/monitor/") and "巡查提醒" in r.title
                                  for r in c.rx.received), 10)
    assert time.time() - t0 >= REMINDER_S
    st, listed = c.http("GET", "/api/v1/weather-warnings")
    assert st == 200 and listed[0]["id"] == "HN-2026-117" and listed[0]["state"] == "active"
    # at expiry the devices go back to their normal reporting and the signal lapses
    assert devices.wait_for(lambda h: _heard(devices, "setsensortime", "S1-GNSS")
                            and _heard(devices, "setsensortime", "S1-CRACK"), 20)
    assert _heard(devices, "setsensortime", "S1-CRACK")[0].params["upload_intv"] == "3600"
    assert time.time() - t0 >= 7
    assert wait_until(lambda: c.http("GET", "/api/v1/weather-warnings")[1][0]["state"] == "expired", 5)
    assert c.svc.core.external.active(c.svc.core.series.site_ix["S1"]) == []
    # only monitors heard of the warning (technicians hear of the test network's silent devices)
    assert {role_of(r.path) for r in c.rx.received} - {"technician"} == {"monitor"}
    assert not [r for r in c.rx.received if role_of(r.path) == "technician" and "气象" in r.title + r.message]
    assert len([r for r in c.rx.received if "巡查提醒" in r.title]) == 1


def test_a_warning_over_mqtt_corroborates_a_rising_crack_meter(chain, mosquitto):
    c, devices = chain
    assert c.svc.weather_mqtt.subscribed.wait(10)
    now = time.time()
    warning = {"id": "HN-box", "level": "orange", "box": [112.7, 27.5, 112.9, 27.7],
               "valid_from": now - 60, "valid_to": now + 600}
    with Publisher(mosquitto.url, "province-feed") as pub:
        pub.publish("geowarn/v1/weather/warning", json.dumps({"level": "purple"}))  # refused, logged
        pub.publish("geowarn/v1/weather/warning", json.dumps(warning))
        assert pub.flush()
    assert wait_until(lambda: [w["state"] for w in c.svc.weather.warnings()] == ["active"], 10)
    assert c.svc.weather_mqtt.rejected == 1
    _publish_crack(c, mosquitto.url)
    # one crack meter at an orange rate would be capped at yellow; the warning agrees: orange
    assert wait_until(lambda: c.svc.core.site_levels().get("S1") == "orange", 20)
    assert wait_until(lambda: any(r.path.startswith("/S1/household/") and "气象风险" in r.message
                                  for r in c.rx.received), 20)


def test_bad_warnings_are_refused_with_the_reason(chain):
    c, _ = chain
    now = time.time()
    for body, why in [({"level": "yellow", "valid_from": now, "valid_to": now + 60}, "counties or a box"),
                      ({"level": "yellow", "counties": ["别县"], "valid_from": now, "valid_to": now + 60}, "no site"),
                      ({"level": "yellow", "counties": ["湘潭县"], "valid_from": now, "valid_to": now - 1}, "after"),
                      ({"level": "green", "counties": ["湘潭县"], "valid_from": now, "valid_to": now + 60}, "level")]:
        st, a = c.http("POST", "/api/v1/weather-warnings", body)
        assert st == 422 and why in a["error"], (body, st, a)
    assert c.http("POST", "/api/v1/weather-warnings", {}, token="nope")[0] == 403


def test_an_alert_closing_during_a_warning_leaves_the_devices_accelerated(chain):
    c, devices = chain
    now = time.time()
    st, _ = c.http("POST", "/api/v1/weather-warnings", {"level": "yellow", "counties": ["湘潭县"],
                                                        "valid_from": now - 60, "valid_to": now + 600})
    assert st == 201
    assert devices.wait_for(lambda h: _heard(devices, "meteorologicalearlywarning", "S1-CRACK"), 10)
    st, a = c.report({"site": "S1", "observations": ["new_crack"]})
    assert a["site_level"] == "yellow"
    alert = wait_until(lambda: next(iter(c.http("GET", "/api/v1/alerts")[1]), None), 10)
    assert devices.wait_for(lambda h: _heard(devices, "setworkmode", "S1-CRACK"), 10)  # the alert's own order
    st, _ = c.http("POST", f"/api/v1/alerts/{alert['id']}/stand-down", {"by": "值班员", "reason": "现场核实无险情"})
    assert st == 200
    history = wait_until(lambda: [h["event"] for h in c.http("GET", f"/api/v1/alerts/{alert['id']}")[1]["history"]
                                  if h["event"].startswith("sampling_")], 10)
    assert history == ["sampling_accelerated", "sampling_kept"]
    time.sleep(1.0)
    assert not _heard(devices, "setsensortime", "S1-CRACK"), "the warning still holds the devices accelerated"


def test_overlapping_warnings_restore_reporting_only_when_the_last_expires(chain):
    c, devices = chain
    now = time.time()
    for wid, span in (("short", 3), ("long", 600)):
        st, _ = c.http("POST", "/api/v1/weather-warnings", {"id": wid, "level": "orange", "counties": ["湘潭县"],
                                                            "valid_from": now - 1, "valid_to": now + span})
        assert st == 201
    assert wait_until(lambda: {w["id"]: w["state"] for w in c.svc.weather.warnings()}
                      == {"short": "expired", "long": "active"}, 10)
    time.sleep(1.0)
    assert _heard(devices, "meteorologicalearlywarning", "S1-CRACK")
    assert not _heard(devices, "setsensortime", "S1-CRACK"), "the long warning still holds the devices accelerated"
