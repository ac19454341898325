"""Community monitors' field reports through the real service: HTTP → field store → journal →
core → site level → alert lifecycle → apprise to a local receiver."""
import base64
import io
import time

import pytest
from PIL import Image

from geowarn.drivers.formats import format_classes
from geowarn.simulators.publisher import Publisher

from alert_fixtures import role_of
from field_fixtures import FieldChain
from helpers import wait_until


@pytest.fixture
def chain(tmp_path, mosquitto, monkeypatch):
    c = FieldChain(tmp_path, mosquitto.url, monkeypatch)
    yield c
    c.stop()


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def test_marker_readings_are_journaled_and_judged_per_hour_with_a_trend_check(chain):
    now = time.time()
    st, a = chain.report({"site": "S1", "markers": [{"marker": "A", "distance": 100.0, "unit": "cm",
                                                     "ts": _iso(now - 5 * 3600)}]})
    assert st == 201 and a["status"] == "accepted", a
    assert chain.svc.core.site_levels().get("S1", "normal") == "normal"
    # 12 mm in two hours: an orange rate, but no interval before it moved: the trend check holds it at yellow
    st, a = chain.report({"site": "S1", "markers": [{"marker": "A", "distance": 1012, "unit": "mm",
                                                     "ts": _iso(now - 3 * 3600)}]})
    assert st == 201, a
    assert a["site_level"] == "yellow"
    assert [v for _, v in chain.svc.journal.history("S1-M-A", "distance")] == [1000.0, 1012.0]
    # the lifecycle took it: the site's monitor hears of the marker, in Chinese
    assert wait_until(lambda: any(r.path.startswith("/S1/monitor/") and "裂缝标记" in r.message
                                  for r in chain.rx.received), 20)
    assert any("趋势未确认" in r.message for r in chain.rx.received if r.path.startswith("/S1/monitor/"))
    # a change below what a tape can tell (4 mm) is no movement, however short the interval
    for i, cm in enumerate((50.0, 50.4)):
        st, a = chain.report({"site": "S2", "markers": [{"marker": "A", "distance": cm, "ts": _iso(now - (2 - i) * 3600)}]})
        assert st == 201 and a["site_level"] == "normal", a
    # a second fast interval confirms the trend: orange from the marker, capped at yellow as one
    # instrument alone; the monitor's observation of bulging corroborates it: orange
    st, a = chain.report({"site": "S1", "markers": [{"marker": "A", "distance": 102.5, "ts": _iso(now - 3600)}]})
    assert a["site_level"] == "yellow"
    st, a = chain.report({"site": "S1", "observations": ["bulging"], "text": "后山鼓包"})
    assert st == 201 and a["site_level"] == "orange", a
    assert wait_until(lambda: any(role_of(r.path) == "household" and r.path.startswith("/S1/")
                                  and "地面鼓胀" in r.message for r in chain.rx.received), 20)
    # after a restart the markers and the observation hold the level again, from journal and store
    chain.restart()
    assert chain.svc.core.site_levels()["S1"] == "orange"


def test_bad_reports_get_a_clear_error_and_are_kept_with_the_reason(chain):
    now = time.time()
    cases = [
        ({"site": "S1", "markers": [{"marker": "A", "distance": 10}]}, "nope", 403, "wrong token"),
        ({"site": "S1", "markers": [{"marker": "A", "distance": 10}]}, None, 401, "missing token"),
        ({"site": "S9", "markers": [{"marker": "A", "distance": 10}]}, "ok", 422, "unknown site"),
        ({"site": "S1", "markers": [{"marker": "A", "distance": -3}]}, "ok", 422, "impossible distance"),
        ({"site": "S2", "markers": [{"marker": "Z", "distance": 10}]}, "ok", 422, "unknown marker"),
        ({"site": "S1", "observations": ["ghosts"]}, "ok", 422, "unknown observation"),
        ({"site": "S1", "markers": [{"marker": "B", "distance": 10, "ts": _iso(now + 86400)}]}, "ok", 422, "future"),
        ({"site": "S1", "text": "x", "photo": base64.b64encode(b"j" * 2000).decode()}, "ok", 413, "photo"),
    ]
    for body, token, status, why in cases:
        st, a = chain.report(body, token=chain_token(token))
        assert st == status and why in a["error"], (body, st, a)
    # a declared marker is taken, and a photo within the limit is stored in the state directory
    st, a = chain.report({"site": "S2", "markers": [{"marker": "A", "distance": 10}],
                          "photo": base64.b64encode(tiny_jpeg()).decode()})
    assert st == 201, a
    st, listed = chain.http("GET", "/api/v1/field-reports")
    assert st == 200 and len(listed) == len(cases) + 1
    assert [r["status"] for r in listed] == ["accepted"] + ["rejected"] * len(cases)
    assert [why in r["reason"] for r, (_, _, _, why) in zip(listed[1:], reversed(cases))] == [True] * len(cases)
    assert Image.open(listed[0]["photo"]).size == (8, 8) and listed[0]["photo"].endswith(".jpg")
    assert "photo" not in listed[0]["report"]
    # nothing refused reached the journal or the core
    assert {k.device for k in chain.svc.journal.series().values()} & {"S1-M-A", "S1-M-B", "S2-M-Z"} == set()
    assert chain.http("GET", "/api/v1/field-reports", token="nope")[0] == 403
    st, html = chain.http("GET", "/field", token=None)
    assert st == 200 and "/api/v1/field-reports" in html and "viewport" in html
    st, a = chain.report(b"{not json")  # type: ignore[arg-type]
    assert st == 400 and "not valid JSON" in a["error"] and a["status"] == "rejected", (st, a)


def tiny_jpeg(exif: bytes | None = None) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 90, 60)).save(out, "JPEG", quality=50, **({"exif": exif} if exif else {}))
    return out.getvalue()


def chain_token(token):
    from field_fixtures import MONITOR_TOKEN
    return MONITOR_TOKEN if token == "ok" else token


def _publish_crack(chain, url, site="S1", mm_per_day=150.0):
    """Two days of one crack meter opening at an orange rate; nothing else at the site moves."""
    formats = {n: c(chain.cfg.registry) for n, c in format_classes().items()}
    crack = chain.cfg.registry.device(f"{site}-CRACK")
    now = time.time()
    with Publisher(url, "crack") as pub:
        for i in range(49):
            t = now - (48 - i) * 3600
            pub.publish(*formats[crack.protocol].encode_readings(crack, t, {"width": 10 + mm_per_day / 24 * i}))
        assert pub.flush()


def test_an_observation_corroborates_an_instrument(chain, mosquitto):
    _publish_crack(chain, mosquitto.url)
    core = chain.svc.core
    assert wait_until(lambda: core.site_levels().get("S1") == "yellow", 20)
    time.sleep(0.5)
    assert core.site_levels()["S1"] == "yellow", "one crack meter alone is capped at yellow"
    st, a = chain.report({"site": "S1", "observations": ["muddy_water"]})
    assert st == 201 and a["site_level"] == "orange", a
    # the observation alone at the other site raises no further than its severity
    st, a = chain.report({"site": "S2", "observations": ["seepage"]})
    assert a["site_level"] == "blue", a
