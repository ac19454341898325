"""What a reload (SIGHUP, `systemctl reload geowarn`) must change, in a running service, through
real parts: readings over Mosquitto, device-side alarms answering, messages through apprise to a
local HTTP receiver, field reports over HTTP. No restart in between: `Service.reload()` is what
the SIGHUP handler calls (tests/test_service.py sends the signal itself)."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from geowarn.daemon.cli import main
from geowarn.simulators.alarm_devices import AlarmDevices

from alert_fixtures import publish_accelerating_slope, role_of
from field_fixtures import MONITOR_TOKEN, FieldChain
from helpers import journal_rows, wait_until

NEW_SITE = {  # a site the running service has never heard of, with an alarm and its people
    "id": "S3", "name": "新增3号滑坡", "county": "湘潭县", "township": "测试镇3", "hazard": "landslide",
    "lon": 112.81, "lat": 27.61, "households": 2, "people": 5,
    "contacts": {"monitor": [{"name": "周监测", "phone": "13900000031"}],
                 "official": [{"name": "吴村长", "phone": "13900000032"}],
                 "household": [{"name": "郑户主", "phone": "13900000033"}]},
    "devices": [{"id": "S3-GNSS", "kind": "gnss", "protocol": "national"},
                {"id": "S3-CRACK", "kind": "crack", "protocol": "national", "interval_s": 3600,
                 "accelerated_interval_s": 60},
                {"id": "S3-ALARM", "kind": "alarm", "protocol": "national"}],
}
OLD_PHONE, NEW_PHONE = "13900000003", "13900000093"  # S1's household 张户主


class Chain(FieldChain):
    """The field tests' running service (two sites, monitors with tokens, HTTP), with alarms
    that answer and a way to rewrite its configuration file and reload it."""

    def __init__(self, tmp_path: Path, broker_url: str, monkeypatch, **sections):
        self.alarms = AlarmDevices(broker_url).start()
        super().__init__(tmp_path, broker_url, monkeypatch, **sections)

    def rewrite(self, change: Callable[[dict], None]) -> bool:
        doc = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        change(doc)
        self.path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        return self.svc.reload()

    def to(self, phone: str) -> list:
        return [r for r in self.rx.received if r.path.rstrip("/").endswith("/" + phone)]

    def outbox(self, sql: str) -> list:
        return journal_rows(self.state / "journal.sqlite", sql)

    def hazards(self) -> list:
        return [a for a in self.svc.alerts.manager.alerts() if a.kind == "hazard"]

    def close(self) -> None:
        self.svc.stop()
        self.alarms.stop()
        self.rx.stop()


@pytest.fixture
def chain(tmp_path, mosquitto, monkeypatch):
    made: list[Chain] = []

    def make(**sections) -> Chain:
        made.append(Chain(tmp_path, mosquitto.url, monkeypatch, **sections))
        return made[-1]

    yield make
    for c in made:
        c.close()


def _site(doc: dict, site_id: str) -> dict:
    return next(s for s in doc["sites"] if s["id"] == site_id)


def test_a_site_added_by_reload_is_judged_its_siren_sounds_and_its_people_are_told(chain, mosquitto):
    c = chain()
    assert c.svc.network.site("S3") is None
    assert c.rewrite(lambda doc: doc["sites"].append(NEW_SITE))
    publish_accelerating_slope(c.svc.network, mosquitto.url, "S3")
    assert c.alarms.wait_for(lambda heard: any(h.device == "S3-ALARM" and h.name == "alarm" for h in heard), 30), \
        "the new site's siren was never commanded"
    assert wait_until(lambda: {"monitor", "official", "household"} <= {
        role_of(r.path) for r in c.rx.received if r.path.startswith("/S3/")}, 30)
    household = c.to("13900000033")[0]
    assert "红色" in household.title + household.message and "新增3号滑坡" in household.title + household.message
    alerts = c.outbox("SELECT site, level, status FROM alerts WHERE kind = 'hazard'")
    assert alerts == [("S3", "red", "open")]


def test_a_reload_amid_red_repeats_keeps_the_alert_and_the_next_warning_goes_to_the_new_phone(chain, mosquitto):
    """The household's phone changes while S1 is red and repeating: the alert stays the same one,
    nobody is told of it afresh, the siren is not sounded again, and from the next repeat on the
    household is reached at the new number, never again at the old one."""
    c = chain(notify={"levels": {"red": {"roles": ["monitor", "official", "household"], "repeat_s": 2}},
                      "escalation": []})
    publish_accelerating_slope(c.svc.network, mosquitto.url, "S1")
    assert wait_until(lambda: len(c.to(OLD_PHONE)) >= 2, 30), "no repeat to the household before the reload"
    assert c.hazards() and wait_until(lambda: not c.outbox(
        "SELECT 1 FROM outbox WHERE status IN ('pending', 'sending')"), 10)
    (before,) = c.hazards()
    sirens = c.outbox("SELECT COUNT(*) FROM outbox WHERE purpose = 'siren'")

    def new_phone(doc: dict) -> None:
        household = next(h for h in _site(doc, "S1")["contacts"]["household"] if h["phone"] == OLD_PHONE)
        household["phone"] = NEW_PHONE

    assert c.rewrite(new_phone)
    reloaded = time.time()
    assert wait_until(lambda: len(c.to(NEW_PHONE)) >= 2, 30), "the repeats never reached the new number"
    assert c.outbox(f"SELECT COUNT(*) FROM outbox WHERE target LIKE '%{OLD_PHONE}' AND created >= {reloaded}") \
        == [(0,)], "a warning to the old number was queued after the reload"
    old = c.outbox(f"SELECT COUNT(*) FROM outbox WHERE target LIKE '%{OLD_PHONE}'")[0][0]
    assert wait_until(lambda: len(c.to(OLD_PHONE)) == old, 10)  # what was queued before, once each
    assert all("红色" in r.title + r.message for r in c.to(NEW_PHONE))
    (after,) = c.hazards()
    assert (after.id, after.status, after.level, after.opened_at) == (before.id, "open", "red", before.opened_at)
    assert after.round > before.round  # repeats went on, counting from where they were
    events = [e for (e,) in c.outbox(f"SELECT event FROM alert_history WHERE alert_id = {after.id}")]
    assert events.count("opened") == 1 and events.count("notified_opened") == 1
    assert c.outbox("SELECT COUNT(*) FROM outbox WHERE purpose = 'siren'") == sirens
    assert [h.device for h in c.alarms.heard if h.name == "alarm"] == ["S1-ALARM"]  # sounded once


def test_an_escalation_tier_changed_by_reload_is_the_next_one_followed(chain, mosquitto):
    c = chain(notify={"escalation": [{"name": "乡镇", "after_s": 3600, "roles": ["township_head"]}]})
    publish_accelerating_slope(c.svc.network, mosquitto.url, "S1")
    assert wait_until(c.hazards, 30)
    assert c.rewrite(lambda doc: doc["notify"].update(
        escalation=[{"name": "县值班室", "after_s": 1, "roles": ["county_duty_office"]}]))
    assert wait_until(lambda: [r for r in c.rx.received if r.path.startswith("/county/county_duty_office/")], 30), \
        "the new tier was never escalated to"
    assert not [r for r in c.rx.received if role_of(r.path) == "township_head"]
    history = c.outbox("SELECT detail FROM alert_history WHERE event = 'escalated'")
    assert [json.loads(d)["tier"] for (d,) in history] == ["县值班室"]


def test_a_monitor_token_added_by_reload_is_accepted(chain, monkeypatch):
    c = chain()
    monkeypatch.setenv("GEOWARN_FIELD_LI", "li-secret")
    report = {"site": "S1", "observations": ["new_crack"]}
    status, answer = c.report(report, token="li-secret")
    assert status == 403, answer
    assert c.rewrite(lambda doc: doc["field"]["monitors"].update({"李监测": "GEOWARN_FIELD_LI"}))
    status, answer = c.report(report, token="li-secret")
    assert status == 201 and answer["status"] == "accepted", answer
    assert c.report(report, token=MONITOR_TOKEN)[0] == 201  # the monitors already there still are


def test_what_only_a_restart_changes_is_refused_by_name_and_nothing_else_applies(chain, tmp_path, capsys):
    c = chain()
    port = c.svc.http.port

    def move_and_add(doc: dict) -> None:
        doc["http"]["port"] = port + 1
        doc["intake"]["client_id"] = "another"
        doc["sites"].append(NEW_SITE)

    assert not c.rewrite(move_and_add)
    assert c.svc.network.site("S3") is None and c.svc.alerts.manager.setup.registry.site("S3") is None
    # `geowarn check` says the same against the running service's state directory
    assert main(["check", "--config", str(c.path), "--state-dir", str(c.state)]) == 1
    out = capsys.readouterr().out
    assert "a reload would be refused" in out and "http.port" in out and "intake.client_id" in out
    assert c.rewrite(lambda doc: (doc["http"].update(port=0), doc["intake"].update(client_id="geowarn-test")))
    assert main(["check", "--config", str(c.path), "--state-dir", str(c.state), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["restart_needed"] == []


def test_a_broken_file_or_an_unreadable_apprise_file_is_refused_and_the_last_good_one_runs(chain, tmp_path):
    c = chain()
    assert not c.rewrite(lambda doc: (doc["sites"].append(NEW_SITE),
                                      doc["notify"].update(apprise_config=str(tmp_path / "missing.yaml"))))
    assert not c.rewrite(lambda doc: (doc["notify"].pop("apprise_config"), _site(doc, "S3").update(hazard="volcano")))
    assert c.svc.network.site("S3") is None and c.svc.alerts.manager.setup.registry.site("S3") is None
    assert c.rewrite(lambda doc: _site(doc, "S3").update(hazard="landslide"))
    assert c.svc.alerts.manager.setup.registry.site("S3") is not None and c.svc.core.registry.site("S3") is not None


def test_a_site_removed_with_an_open_alert_keeps_it_until_stood_down_and_opens_no_new_one(tmp_path):
    """The lifecycle alone (the decision documented in docs/alerts.md): the alert goes on with
    the contacts the site had (repeats, stand-down announced to them); nothing new opens for it."""
    from geowarn.daemon.alerts.events import DeviceFault, SiteLevelChange
    from geowarn.daemon.alerts.setup import AlertSetup
    from geowarn.daemon.registry import Registry

    from alert_fixtures import Harness, network

    h = Harness(tmp_path, notify={"levels": {"red": {"roles": ["monitor", "household"], "repeat_s": 60}}})
    try:
        t0 = time.time()
        aid = h.manager.handle(SiteLevelChange("S2", t0, "red", "normal", ["切线角 86°"]))
        assert h.wait_idle() and h.received(site="S2", role="household")
        s = h.cfg.settings
        h.manager.reconfigure(AlertSetup.build(Registry.from_dict(network(("S1",))), s.notify, s.sirens, s.sampling))
        heard = len(h.received(site="S2"))
        h.manager.tick(t0 + 61)  # a repeat is due: it goes to S2's people as they were
        assert h.wait_idle() and len(h.received(site="S2")) == 2 * heard
        assert h.manager.handle(DeviceFault("S2", "S2-GNSS", "offline", t0 + 62, "silent")) is None
        assert [a.id for a in h.manager.alerts()] == [aid]
        closed = h.manager.stand_down(aid, "孙值班", "监测点已撤销")
        assert closed.status == "closed" and h.wait_idle()
        assert "监测点已撤销" in h.received(site="S2", role="household")[-1].message
        assert h.manager.handle(SiteLevelChange("S2", t0 + 63, "red", "normal", [])) is None
        assert h.manager.alerts() == []
        h.manager.reconfigure(h.manager.setup)  # no open alert holds S2 any more: it is forgotten
        with pytest.raises(ValueError, match="unknown site 'S2'"):
            h.manager.handle(SiteLevelChange("S2", t0 + 64, "red", "normal", []))
    finally:
        h.close()


def test_cap_messages_follow_a_reload(chain, mosquitto):
    c = chain()
    publish_accelerating_slope(c.svc.network, mosquitto.url, "S1")
    assert wait_until(c.hazards, 30)
    assert c.rewrite(lambda doc: doc.update(cap={"sender": "centre@reload.example"}))
    (alert,) = c.hazards()
    c.svc.alerts.manager.stand_down(alert.id, "孙值班", "演练结束")
    xml = c.outbox(f"SELECT event, xml FROM cap_messages WHERE alert_id = {alert.id} ORDER BY version")
    assert xml[-1][0] == "stood_down" and b"<sender>centre@reload.example</sender>" in xml[-1][1]
    assert b"centre@reload.example" not in xml[0][1]  # issued before the reload


def test_weather_rules_and_video_units_follow_a_reload(chain, tmp_path):
    """The weather desk acts on the reloaded rules (patrol orders from blue on), and a video unit
    added by the reload sends its still, linked at the reloaded public address."""
    import http.server
    import threading

    still = b"\xff\xd8\xff\xe0 the slope after the reload \xff\xd9"

    class Camera(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(still)))
            self.end_headers()
            self.wfile.write(still)

        def log_message(self, *a):
            pass

    cam = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Camera)
    threading.Thread(target=cam.serve_forever, daemon=True).start()
    try:
        c = chain(rules={"weather": {"patrol_from": "yellow"}})  # the packaged rules, copied beside the config
        now = time.time()
        blue = {"level": "blue", "counties": ["湘潭县"], "valid_from": now - 60, "valid_to": now + 3600}
        assert c.http("POST", "/api/v1/weather-warnings", {**blue, "id": "before"})[0] == 201
        rules = c.path.parent / "rules" / "defaults.yaml"
        doc = yaml.safe_load(rules.read_text(encoding="utf-8"))
        doc["weather"]["patrol_from"] = "blue"
        rules.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        assert c.rewrite(lambda d: (_site(d, "S1")["devices"].append(
            {"id": "S1-VIDEO", "kind": "video", "snapshot_url": f"http://127.0.0.1:{cam.server_address[1]}/s.jpg"}),
            d.update(video={"public_url": "http://reloaded.example"})))
        assert c.http("POST", "/api/v1/weather-warnings", {**blue, "id": "after"})[0] == 201
        patrol = lambda: [r for r in c.rx.received if "巡查指令" in r.title or "patrol order" in r.title]  # noqa: E731
        assert wait_until(lambda: {r.path.split("/")[1] for r in patrol()} == {"S1", "S2"}, 15)
        keys = [k for (k,) in c.outbox("SELECT key FROM outbox WHERE key LIKE 'w%:patrol:%'")]
        assert len(keys) == 2 and all(k.startswith("wafter:") for k in keys), keys  # none before the reload
        st, answer = c.report({"site": "S1", "observations": ["new_crack"]})
        assert st == 201 and answer["site_level"] == "yellow"
        (alert,) = wait_until(c.hazards, 10)
        assert wait_until(lambda: c.svc.video.latest(alert.id) is not None, 10)
        assert c.svc.video.latest(alert.id).read_bytes() == still
        link = f"http://reloaded.example/api/v1/alerts/{alert.id}/snapshot"
        assert wait_until(lambda: [r for r in c.rx.received if link in r.message], 15)
    finally:
        cam.shutdown()
        cam.server_close()
