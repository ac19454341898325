"""The HTTP API: acknowledgement needs the token; reads are open only when configured."""
import asyncio
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from geowarn.daemon.alerts.events import SiteLevelChange
from geowarn.daemon.http.app import make_app
from geowarn.daemon.http.settings import HttpSettings

from alert_fixtures import Harness

TOKEN = "s3cret-token"
T0 = time.time()


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def call(app, method, path, **kw):
    """`app` is a factory: an aiohttp Application belongs to the event loop it first ran on."""
    async def go():
        async with TestClient(TestServer(app())) as client:
            resp = await client.request(method, path, **kw)
            return resp.status, await resp.json()
    return asyncio.run(go())


def test_ack_over_http_needs_the_token_and_stops_repeats(h):
    aid = h.manager.handle(SiteLevelChange("S1", T0, "red", "normal", ["切线角 86°"]))
    app = lambda: make_app(h.manager, HttpSettings(), environ={"GEOWARN_HTTP_TOKEN": TOKEN})  # noqa: E731
    path = f"/api/v1/alerts/{aid}/ack"
    assert call(app, "POST", path)[0] == 401
    assert call(app, "POST", path, headers={"Authorization": "Bearer wrong"})[0] == 403
    assert h.manager.get(aid)[0].acked_at is None
    status, body = call(app, "POST", path, json={"by": "朱志强"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and body["acked_by"] == "朱志强" and body["acked_via"] == "http" and body["status"] == "open"
    h.manager.tick(T0 + 5000)
    assert h.wait_idle() and not [r for r in h.rx.received if "请确认" in r.title]
    assert call(app, "POST", "/api/v1/alerts/A999/ack", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 404
    assert call(app, "POST", "/api/v1/alerts/xyz/ack", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 404
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert call(app, "POST", path, data=b"{not json", headers={**auth, "Content-Type": "application/json"})[0] == 400
    assert call(app, "POST", path, data=b'{"by": "x"}', headers={**auth, "Content-Type": "text/plain"})[0] == 415


def test_reads_are_closed_by_default_open_when_configured_and_stand_down_needs_a_reason(h):
    aid = h.manager.handle(SiteLevelChange("S1", T0, "orange", "normal", ["雨量 24 h 132 mm"]))
    closed = lambda: make_app(h.manager, HttpSettings(), environ={"GEOWARN_HTTP_TOKEN": TOKEN})  # noqa: E731
    assert call(closed, "GET", "/api/v1/alerts")[0] == 401
    status, alerts = call(closed, "GET", "/api/v1/alerts", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and [a["id"] for a in alerts] == [aid] and alerts[0]["level"] == "orange"
    open_reads = lambda: make_app(h.manager, HttpSettings(open_reads=True),  # noqa: E731
                                  environ={"GEOWARN_HTTP_TOKEN": TOKEN})
    status, one = call(open_reads, "GET", f"/api/v1/alerts/A{aid}")
    assert status == 200 and one["history"][0]["event"] == "opened"
    assert call(open_reads, "POST", f"/api/v1/alerts/{aid}/ack")[0] == 401  # writes always need the token
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert call(closed, "POST", f"/api/v1/alerts/{aid}/stand-down", json={"by": "值班员"}, headers=auth)[0] == 422
    status, body = call(closed, "POST", f"/api/v1/alerts/{aid}/stand-down",
                        json={"by": "值班员", "reason": "误报：施工扰动"}, headers=auth)
    assert status == 200 and body["status"] == "closed" and body["close_reason"] == "stood_down"
    assert call(closed, "POST", f"/api/v1/alerts/{aid}/ack", headers=auth)[0] == 409
    assert call(open_reads, "GET", "/api/v1/alerts")[1] == []
    assert len(call(open_reads, "GET", "/api/v1/alerts?all=1")[1]) == 1


def test_without_a_configured_token_nothing_is_writable(h):
    aid = h.manager.handle(SiteLevelChange("S1", T0, "blue", "normal", []))
    app = lambda: make_app(h.manager, HttpSettings(), environ={})  # noqa: E731
    status, body = call(app, "POST", f"/api/v1/alerts/{aid}/ack", headers={"Authorization": "Bearer "})
    assert status == 503 and "GEOWARN_HTTP_TOKEN" in body["error"]


def test_the_token_may_come_from_a_systemd_credential(h, tmp_path):
    """geowarn.service hands the token over as `LoadCredential=http-token:…`."""
    aid = h.manager.handle(SiteLevelChange("S1", T0, "blue", "normal", []))
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "http-token").write_text(TOKEN + "\n", encoding="utf-8")
    app = lambda: make_app(h.manager, HttpSettings(), environ={"CREDENTIALS_DIRECTORY": str(tmp_path / "creds")})  # noqa: E731
    assert call(app, "POST", f"/api/v1/alerts/{aid}/ack", headers={"Authorization": "Bearer wrong"})[0] == 403
    status, body = call(app, "POST", f"/api/v1/alerts/{aid}/ack", json={"by": "值班员"},
                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and body["acked_by"] == "值班员"


def test_a_silence_over_http_mutes_device_faults_of_that_site_only(h):
    app = lambda: make_app(h.manager, HttpSettings(), environ={"GEOWARN_HTTP_TOKEN": TOKEN})  # noqa: E731
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = {"site": "S1", "until": time.time() + 4 * 3600, "by": "钱运维", "reason": "更换电池"}
    assert call(app, "POST", "/api/v1/silences", json=body)[0] == 401
    assert call(app, "POST", "/api/v1/silences", json={**body, "reason": ""}, headers=auth)[0] == 422
    assert call(app, "POST", "/api/v1/silences", json={**body, "until": "soon"}, headers=auth)[0] == 422
    assert call(app, "POST", "/api/v1/silences", json={**body, "site": "NOPE"}, headers=auth)[0] == 422
    status, out = call(app, "POST", "/api/v1/silences", json=body, headers=auth)
    assert status == 200 and out["id"] >= 1
    from geowarn.daemon.alerts.events import DeviceFault
    muted = h.manager.handle(DeviceFault("S1", "S1-GNSS", "offline", time.time(), "无数据"))
    heard = h.manager.handle(DeviceFault("S2", "S2-GNSS", "offline", time.time(), "无数据"))
    assert h.manager.get(muted)[0].silenced and not h.manager.get(heard)[0].silenced
    assert h.wait_idle()
    assert [r.path.split("/")[1] for r in h.rx.received] == ["S2"]
