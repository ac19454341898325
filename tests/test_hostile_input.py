"""Every reproduction of issue 22 ("every door holds") as a regression test, against the real
service (Mosquitto, HTTP on a free port, apprise to a local receiver): hostile and malformed
input over HTTP, MQTT and the CLI gets a 4xx or a refusal with its reason, never a 500, never a
poisoned loop."""
import base64
import http.client
import io
import json
import sqlite3
import time

import pytest
from PIL import Image

from geowarn.daemon.cli import main as geowarn
from geowarn.daemon.http.guard import REFUSALS_BURST, REFUSALS_PER_S
from geowarn.daemon.jobs import Jobs
from geowarn.daemon.service import Service
from geowarn.simulators.alarm_devices import AlarmDevices
from geowarn.simulators.publisher import Publisher

from field_fixtures import API_TOKEN, MONITOR_TOKEN, FieldChain
from helpers import journal_count, wait_until

POISON = {"id": "POISON", "level": "orange", "counties": ["湘潭县"], "valid_from": "2026-01-01T00:00:00Z",
          "valid_to": "9999-12-31T23:59:59Z"}


@pytest.fixture
def chain(tmp_path, mosquitto, monkeypatch):
    monkeypatch.setenv("GEOWARN_METRICS_TOKEN", "scraper-token")
    c = FieldChain(tmp_path, mosquitto.url, monkeypatch, http={"port": 0, "metrics_token_env": "GEOWARN_METRICS_TOKEN"})
    devices = AlarmDevices(mosquitto.url).start()
    yield c, devices
    devices.stop()
    c.stop()


def _warning(wid: str, hours: float = 1.0, **kw) -> dict:
    now = time.time()
    return {"id": wid, "level": "orange", "counties": ["湘潭县"], "valid_from": now - 60,
            "valid_to": now + hours * 3600, **kw}


def _raw(c, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, bytes, str]:
    """A request exactly as given (bytes headers too), as a hostile client sends it."""
    conn = http.client.HTTPConnection("127.0.0.1", c.svc.http.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, r.read(), r.getheader("Content-Type", "")
    finally:
        conn.close()


def _outbox_keys(c, like: str) -> int:
    return journal_count(c.state, f"SELECT COUNT(*) FROM outbox WHERE key LIKE '{like}'")


# --- 1. nothing poisons a loop -------------------------------------------------------------------

def test_a_warning_valid_until_9999_is_refused_at_every_door_and_sends_nothing(chain, mosquitto):
    c, devices = chain
    st, a = c.http("POST", "/api/v1/weather-warnings", POISON)
    assert st == 422 and "valid_to" in a["error"], a
    for span_days in (31, 365):
        st, a = c.http("POST", "/api/v1/weather-warnings", _warning("LONG", hours=24 * span_days))
        assert st == 422 and "30 days" in a["error"], a
    st, a = c.http("POST", "/api/v1/weather-warnings", {**_warning("C5"), "counties": 5})
    assert st == 422 and "counties" in a["error"], a
    assert c.svc.weather_mqtt.subscribed.wait(10)
    with Publisher(mosquitto.url, "province-feed") as pub:
        pub.publish("geowarn/v1/weather/warning", json.dumps(POISON))
        pub.publish("geowarn/v1/weather/warning", json.dumps({**_warning("C5"), "counties": 5}))
        pub.publish("geowarn/v1/weather/warning", b"[" * 100_000)
        assert pub.flush()
    assert wait_until(lambda: c.svc.weather_mqtt.rejected == 3, 10)
    rc = geowarn(["weather-warning", "--level", "橙色", "--counties", "湘潭县", "--to", "9999-12-31T23:59:59Z",
                  "--url", f"http://127.0.0.1:{c.svc.http.port}"])
    assert rc == 2
    assert c.svc.weather.warnings() == []
    # a good warning after all of them is acted on at once
    st, _ = c.http("POST", "/api/v1/weather-warnings", _warning("GOOD"))
    assert st == 201
    assert devices.wait_for(lambda h: any(x.name == "meteorologicalearlywarning" for x in h), 10)
    assert _outbox_keys(c, "wPOISON%") == 0 and _outbox_keys(c, "wC5%") == 0
    assert not [r for r in c.svc.health()[1] if "weather" in r]


def test_a_poison_warning_stored_before_the_bounds_is_set_aside_shown_and_blocks_nothing(chain):
    c, devices = chain
    c.svc.stop()
    db = sqlite3.connect(c.state / "weather.sqlite")  # as an older geowarn kept it
    db.execute("INSERT INTO warnings (id, received, source, doc, state) VALUES (?,?,?,?, 'pending')",
               ("POISON", time.time(), "http", json.dumps({**POISON, "valid_from": time.time() - 60,
                                                           "valid_to": 253402300799.0, "box": None,
                                                           "text": ""})))
    db.commit()
    db.close()
    c.svc = Service(c.cfg, c.state, c.broker_url, config_path=str(c.path))
    c.svc.start()
    assert wait_until(lambda: [w["state"] for w in c.svc.weather.warnings()] == ["set_aside"], 10)
    listed = c.http("GET", "/api/v1/weather-warnings")[1]
    assert listed[0]["id"] == "POISON" and "valid_to" in listed[0]["error"]
    st, health = c.http("GET", "/healthz")
    assert health["status"] == "degraded" and any("POISON" in r for r in health["reasons"]), health
    # later warnings are acted on; the poison sent nothing
    st, _ = c.http("POST", "/api/v1/weather-warnings", _warning("LATER"))
    assert st == 201
    assert wait_until(lambda: {w["id"]: w["state"] for w in c.svc.weather.warnings()}
                      == {"POISON": "set_aside", "LATER": "active"}, 10)
    assert _outbox_keys(c, "wPOISON%") == 0 and _outbox_keys(c, "wLATER%") > 0


def test_a_warning_that_keeps_failing_is_set_aside_and_the_others_go_on(chain, monkeypatch):
    c, _ = chain
    desk = c.svc.weather
    activate = desk._activate

    def breaks_on_bad(w, now):  # a fault of ours in acting on one warning
        if w.id == "BAD":
            raise RuntimeError("cannot act on BAD")
        activate(w, now)
    monkeypatch.setattr(desk, "_activate", breaks_on_bad)
    assert c.http("POST", "/api/v1/weather-warnings", _warning("BAD"))[0] == 201
    assert c.http("POST", "/api/v1/weather-warnings", _warning("OK"))[0] == 201
    assert wait_until(lambda: {w["id"]: w["state"] for w in desk.warnings()} == {"BAD": "set_aside", "OK": "active"},
                      10)
    assert "cannot act on BAD" in next(w["error"] for w in desk.warnings() if w["id"] == "BAD")


def test_a_job_that_keeps_failing_is_named_by_healthz_and_stops_no_other(chain, monkeypatch):
    c, _ = chain
    assert wait_until(lambda: c.svc.jobs.state("deadman checks"), 10)
    monkeypatch.setattr(c.svc.weather, "tick", lambda now: 1 / 0)
    deadman_runs = c.svc.jobs.state("deadman checks").runs
    assert wait_until(lambda: any("weather warnings" in r for r in c.http("GET", "/healthz")[1]["reasons"]), 10)
    assert c.svc.jobs.state("deadman checks").runs > deadman_runs + 2
    assert c.http("GET", "/healthz")[1]["status"] == "degraded"


def test_jobs_count_failures_in_a_row_and_recover():
    jobs, calls = Jobs(), []

    def flaky():
        calls.append(1)
        if len(calls) <= 3:
            raise OSError("disk full")
    for _ in range(3):
        assert not jobs.run("retention", flaky)
    assert jobs.failing() == ["job 'retention' failing: 3 times in a row, last OSError: disk full"]
    assert jobs.run("retention", flaky) and jobs.failing() == []
    assert not jobs.run("hourly", lambda: 1 / 0, failing_after=1) and len(jobs.failing()) == 1


def test_silences_are_bounded_at_every_door(chain):
    c, _ = chain
    now = time.time()
    body = {"site": "S1", "until": now + 3600, "by": "钱运维", "reason": "更换电池"}
    for bad, why in [({"until": "10000-01-01T00:00:00Z"}, "until"), ({"until": "9999-12-31T23:59:59Z"}, "until"),
                     ({"until": now + 31 * 86400}, "30 days"), ({"by": 5}, "string"), ({"by": "x" * 101}, "100"),
                     ({"reason": ["r"]}, "string"), ({"reason": "x" * 1001}, "1000"), ({"until": 1e300}, "until")]:
        st, a = c.http("POST", "/api/v1/silences", {**body, **bad})
        assert st == 422 and why in a["error"], (bad, st, a)
    assert c.http("POST", "/api/v1/silences", body)[0] == 200
    args = ["silence", "--state-dir", str(c.state), "--config", str(c.path), "--site", "S1", "--by", "钱运维",
            "--reason", "更换电池", "--until"]
    assert geowarn(args + ["9999-12-31T23:59:59Z"]) == 2
    assert geowarn(args + ["1000h"]) == 2


# --- 2. 4xx for every bad input, never 500 ----------------------------------------------------

def test_malformed_bodies_get_4xx_and_field_refusals_are_kept_with_the_reason(chain):
    c, _ = chain
    deep = b"[" * 30_000 + b"]" * 30_000  # within the body limits: refused for its depth
    mon = {"Authorization": f"Bearer {MONITOR_TOKEN}", "Content-Type": "application/json"}
    api = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    cases = [
        ("/api/v1/field-reports", mon, b"{not json", 400),
        ("/api/v1/field-reports", mon, b"[1]", 400),
        ("/api/v1/field-reports", mon, b"\xff\xfe{}", 400),
        ("/api/v1/field-reports", mon, deep, 400),
        ("/api/v1/field-reports", mon, b'{"site": "S1", "text": "\\ud800"}', 400),
        ("/api/v1/field-reports", mon, b'{"site": "S1", "markers": [{"marker": "A", "distance": NaN}]}', 400),
        ("/api/v1/field-reports", {**mon, "Content-Type": "text/plain"}, b'{"site": "S1", "text": "x"}', 415),
        ("/api/v1/alerts/1/ack", api, deep, 400),
        ("/api/v1/alerts/1/stand-down", api, b'{"by": "\\udc00", "reason": "r"}', 400),
        ("/api/v1/weather-warnings", api, deep, 400),
        ("/api/v1/weather-warnings", api, b'{"level": "red", "valid_from": Infinity}', 400),
        ("/api/v1/silences", api, deep, 400),
    ]
    for path, headers, body, status in cases:
        st, raw, ctype = _raw(c, "POST", path, body, headers)
        assert st == status and ctype.startswith("application/json") and "error" in json.loads(raw), \
            (path, body[:40], st, raw[:200])
    listed = c.http("GET", "/api/v1/field-reports")[1]
    assert len(listed) == 7 and {r["status"] for r in listed} == {"rejected"} and all(r["reason"] for r in listed)
    assert all(r["monitor"] == "王监测" for r in listed)


def test_hostile_ids_and_tokens_get_4xx(chain, mosquitto):
    c, _ = chain
    big = "9223372036854775808"
    assert c.http("GET", f"/api/v1/alerts/{big}")[0] == 404
    assert c.http("GET", f"/api/v1/alerts/{'9' * 5000}")[0] == 404
    assert c.http("POST", f"/api/v1/alerts/{big}/ack", {"by": "x"})[0] == 404
    assert c.http("GET", f"/api/v1/alerts/{big}/snapshot")[0] == 404
    assert c.http("GET", "/api/v1/alerts/%D9%A1%D9%A2")[0] == 404  # Arabic-Indic digits are no alert id
    # a token that is not UTF-8 is a wrong token, on every route
    for method, path in [("GET", "/api/v1/alerts"), ("POST", "/api/v1/field-reports"), ("GET", "/api/v1/network"),
                         ("POST", "/api/v1/silences"), ("GET", "/metrics")]:
        st, raw, _ = _raw(c, method, path, b"{}", {"Authorization": b"Bearer \xff\xfe\xfd",
                                                     "Content-Type": "application/json"})
        assert st == 403, (path, st, raw[:200])
    # the scheme in any case (RFC 7235)
    st, raw, _ = _raw(c, "GET", "/api/v1/alerts", headers={"Authorization": f"bearer {API_TOKEN}"})
    assert st == 200, raw
    st, raw, _ = _raw(c, "GET", "/api/v1/alerts", headers={"Authorization": f"BEARER {API_TOKEN}"})
    assert st == 200, raw
    # over the MQTT acknowledgement topic: refused with the reason, the listener lives on
    acks = c.svc.alerts.acks
    assert acks.subscribed.wait(10)
    with Publisher(mosquitto.url, "handset") as pub:
        for payload in ({"alert": big, "by": "王"}, {"alert": int(big), "by": "王"}, {"alert": "A1", "by": 5},
                        {"alert": [1], "by": "王"}):
            pub.publish("geowarn/v1/ack", json.dumps(payload))
        pub.publish("geowarn/v1/ack", b"[" * 100_000)
        assert pub.flush()
    assert wait_until(lambda: acks.refused == 5, 10)


def test_oversize_bodies_are_refused_counted_and_kept(chain):
    c, _ = chain
    big = json.dumps({"site": "S1", "text": "x" * 3_000_000}).encode()
    st, raw, _ = _raw(c, "POST", "/api/v1/field-reports", big,
                      {"Authorization": f"Bearer {MONITOR_TOKEN}", "Content-Type": "application/json"})
    assert st == 413, raw[:200]
    st, raw, _ = _raw(c, "POST", "/api/v1/silences", b'{"x": "' + b"y" * 100_000 + b'"}',
                      {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"})
    assert st == 413, raw[:200]
    listed = c.http("GET", "/api/v1/field-reports")[1]
    assert len(listed) == 1 and listed[0]["status"] == "rejected" and "bytes" in listed[0]["reason"]
    metrics = c.http("GET", "/metrics")[1]
    assert 'geowarn_http_refused_total{what="oversize"} 2.0' in metrics, metrics[-2000:]


# --- 3. unauthenticated requests cost almost nothing ----------------------------------------------

def test_unauthenticated_reports_cost_a_bounded_record_and_are_throttled(chain):
    c, _ = chain
    size0 = _field_bytes(c)
    body = json.dumps({"site": "S1", "text": "x" * 1_000_000}).encode()
    t0 = time.monotonic()
    statuses = [_raw(c, "POST", "/api/v1/field-reports", body, {"Content-Type": "text/plain"})[0] for _ in range(30)]
    refilled = (time.monotonic() - t0) * REFUSALS_PER_S  # the budget refills while we send
    assert statuses[:REFUSALS_BURST] == [401] * REFUSALS_BURST and set(statuses) == {401, 429}, statuses
    assert statuses.count(401) <= REFUSALS_BURST + refilled + 1
    grown = _field_bytes(c) - size0
    assert grown < 200_000, grown  # 30 MB sent
    listed = c.http("GET", "/api/v1/field-reports")[1]
    assert len(listed) == statuses.count(401) and all(len(json.dumps(r)) < 1000 for r in listed)
    assert listed[0]["report"]["from"] == "127.0.0.1" and listed[0]["report"]["preview"].startswith('{"site": "S1"')
    # the budget is per address and for refusals only: a valid token still passes
    assert c.http("GET", "/api/v1/alerts")[0] == 200
    assert c.report({"site": "S1", "observations": ["seepage"]})[0] == 201
    metrics = c.http("GET", "/metrics")[1]
    assert f'geowarn_http_refused_total{{what="throttled"}} {statuses.count(429)}.0' in metrics


def _field_bytes(c) -> int:
    return sum(p.stat().st_size for p in c.state.glob("field.sqlite*"))


def test_json_is_written_strictly(chain):
    c, _ = chain
    st, raw, _ = _raw(c, "POST", "/api/v1/field-reports",
                      b'{"site": "S1", "markers": [{"marker": "A", "distance": 1e999}]}',
                      {"Authorization": f"Bearer {MONITOR_TOKEN}", "Content-Type": "application/json"})
    assert st == 400, raw  # 1e999 would parse as inf in Python: no number
    st, raw, _ = _raw(c, "GET", "/api/v1/field-reports", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert st == 200 and b"NaN" not in raw and b"Infinity" not in raw
    json.loads(raw, parse_constant=lambda name: pytest.fail(f"{name} in the answer"))


# --- 4. the smaller holes --------------------------------------------------------------------------

def test_metrics_follow_the_read_rule_with_a_scraper_token_of_their_own(chain):
    c, _ = chain
    assert c.http("GET", "/metrics", token=None)[0] == 401
    assert c.http("GET", "/metrics", token="nope")[0] == 403
    st, text = c.http("GET", "/metrics", token="scraper-token")
    assert st == 200 and "geowarn_site_level" in text
    assert c.http("GET", "/metrics")[0] == 200
    assert c.http("GET", "/api/v1/alerts", token="scraper-token")[0] == 403  # that token opens nothing else


def test_weather_warnings_over_mqtt_come_from_the_configured_broker(chain, mosquitto):
    c, devices = chain
    c.svc.stop()
    c.svc = Service(c.cfg, c.state, None, config_path=str(c.path))  # no --broker: the configuration's
    c.svc.start()
    assert c.svc.weather_mqtt.subscribed.wait(10)
    with Publisher(mosquitto.url, "province-feed") as pub:
        pub.publish("geowarn/v1/weather/warning", json.dumps(_warning("CFG")))
        assert pub.flush()
    assert wait_until(lambda: [w["state"] for w in c.svc.weather.warnings()] == ["active"], 10)


def _jpeg_with_gps_and_a_script() -> bytes:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (27.0, 36.0, 0.0), 3: "E", 4: (112.0, 48.0, 0.0)}  # GPSInfo
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(out, "JPEG", exif=exif)
    return out.getvalue() + b"\n#!/bin/sh\nrm -rf /\n"


def test_photos_must_be_images_and_are_stored_re_encoded(chain):
    c, _ = chain
    script = base64.b64encode(b"#!/bin/sh\nrm -rf /\n").decode()
    st, a = c.report({"site": "S1", "text": "照片", "photo": script})
    assert st == 422 and "photo" in a["error"], a
    photo = _jpeg_with_gps_and_a_script()
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(0x8825)  # the phone's position
    st, a = c.report({"site": "S1", "text": "照片", "photo": base64.b64encode(photo).decode()})
    assert st == 201, a
    listed = c.http("GET", "/api/v1/field-reports")[1]
    stored = open(listed[0]["photo"], "rb").read()
    assert listed[0]["photo"].endswith(".jpg") and b"rm -rf" not in stored
    img = Image.open(io.BytesIO(stored))
    assert img.format == "JPEG" and img.size == (8, 8) and not img.getexif().get_ifd(0x8825)
    png = io.BytesIO()
    Image.new("L", (4, 4)).save(png, "PNG")
    st, a = c.report({"site": "S1", "text": "png", "photo": base64.b64encode(png.getvalue()).decode()})
    assert st == 201 and c.http("GET", "/api/v1/field-reports")[1][0]["photo"].endswith(".png")
    assert [r["status"] for r in c.http("GET", "/api/v1/field-reports")[1]] == ["accepted", "accepted", "rejected"]


def test_field_strings_are_typed_and_bounded(chain):
    c, _ = chain
    for body, why in [({"site": 5, "text": "x"}, "unknown site"), ({"site": "S1", "text": 5}, "text"),
                      ({"site": "S1", "observations": [["bulging"]]}, "observation"),
                      ({"site": "S1", "markers": [{"marker": ["A"], "distance": 1}]}, "marker"),
                      ({"site": "S1", "markers": [{"marker": "A", "distance": True}]}, "number"),
                      ({"site": "S1", "observations": ["seepage"] * 101}, "at most")]:
        st, a = c.report(body)
        assert st == 422 and why in a["error"], (body, st, a)


def test_a_status_on_another_sites_topic_is_quarantined_as_site_mismatch(chain, mosquitto):
    c, _ = chain
    with Publisher(mosquitto.url, "intruder") as pub:
        pub.publish("geowarn/v1/S1/S2-CRACK/status", json.dumps({"ts": time.time(), "status": {"battery_pct": 1}}))
        pub.publish("geowarn/v1/S2/S2-CRACK/status", json.dumps({"ts": time.time(), "status": {"battery_pct": 77}}))
        assert pub.flush()
    assert wait_until(lambda: c.svc.intake.stats.quarantine.get("site_mismatch") == 1, 10)
    assert wait_until(lambda: journal_count(c.state, "SELECT COUNT(*) FROM statuses") == 1, 10)
    assert c.svc.journal.latest_statuses(["S2-CRACK"])["S2-CRACK"][1]["battery_pct"] == 77
