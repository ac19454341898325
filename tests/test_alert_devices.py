"""Sirens and accelerated reporting through a real Mosquitto: commands in each device's own wire
format, replies back through the real intake, and what happens when a siren stays silent."""
import time

import pytest

from geowarn.daemon.alerts.events import SiteLevelChange

from alert_fixtures import Harness, role_of
from helpers import wait_until

T0 = time.time()


@pytest.fixture
def make(tmp_path, mosquitto):
    made = []

    def build(**kw):
        h = Harness(tmp_path, broker_url=mosquitto.url, **kw)
        made.append(h)
        return h
    yield build
    for h in made:
        h.close()


def heard(h, device, name):
    return [c for c in h.devices.heard if c.device == device and c.name == name]


def statuses(h, purpose):
    return sorted({r[0] for r in h.rows("SELECT status FROM outbox WHERE purpose = ?", (purpose,))})


def test_red_sounds_the_alarms_in_their_wire_format_and_replies_confirm(make):
    h = make()
    for site in ("S1", "S2"):
        h.manager.handle(SiteLevelChange(site, T0, "red", "normal", ["裂缝计速率 48 mm/d"]))
    assert h.devices.wait_for(lambda _: heard(h, "S1-ALARM", "broadcast") and heard(h, "S2-ALARM", "broadcast"))
    national = heard(h, "S1-ALARM", "alarm")[0]
    assert national.params["level"] == "0" and national.params["type"] == "L1_LF" and national.msgid
    assert national.raw.startswith(b"$cmd=alarm&")
    speech = heard(h, "S1-ALARM", "broadcast")[0]
    text = speech.params["b_content"]  # decoded from GB2312
    assert "测试1号滑坡" in text and "撤离" in text and int(speech.params["b_size"]) == len(text.encode("gb2312"))
    native = heard(h, "S2-ALARM", "alarm")[0]
    assert native.params["level"] == "0"
    # replies ($dr for national, …/cmd/reply for native) confirm every command
    assert wait_until(lambda: statuses(h, "siren") == ["confirmed"]), statuses(h, "siren")
    assert not heard(h, "S1-ALARM", "setworkmode")  # alarms are not sensors: no reporting commands


def test_yellow_accelerates_reporting_and_all_clear_restores_it_and_closes(make):
    h = make()
    aid = h.manager.handle(SiteLevelChange("S1", T0, "yellow", "normal", ["雨量 24 h 132 mm"]))
    h.manager.handle(SiteLevelChange("S2", T0, "yellow", "normal", ["雨量 24 h 132 mm"]))
    assert h.devices.wait_for(lambda _: heard(h, "S1-CRACK", "setworkmode") and heard(h, "S2-CRACK", "setsensortime"))
    assert heard(h, "S1-GNSS", "setworkmode")[0].params["mode"] == "2"
    assert heard(h, "S2-CRACK", "setsensortime")[0].params == {"sample_intv": "60", "upload_intv": "60"}
    assert not heard(h, "S1-ALARM", "alarm")  # yellow sounds no siren by default
    # orange → red on S1 does not accelerate twice
    h.manager.handle(SiteLevelChange("S1", T0 + 60, "orange", "yellow", []))
    h.manager.handle(SiteLevelChange("S1", T0 + 120, "normal", "orange", []))  # the core's all-clear after its hold
    assert h.devices.wait_for(lambda _: len(heard(h, "S1-CRACK", "setsensortime")) == 1)
    modes = [c.params["mode"] for c in heard(h, "S1-CRACK", "setworkmode")]
    assert modes == ["2", "0"]
    restore = heard(h, "S1-CRACK", "setsensortime")[0].params
    assert restore == {"sensor_id": "L1_LF_1", "sample_intv": "3600", "upload_intv": "3600"}
    assert h.manager.get(aid)[0].status == "closed" and h.manager.get(aid)[0].close_reason == "closed"
    assert wait_until(lambda: statuses(h, "sampling") == ["confirmed"]), statuses(h, "sampling")
    assert h.wait_idle()
    closing = [r for r in h.received(site="S1") if "解除" in r.title]
    assert sorted(role_of(r.path) for r in closing) == ["duty_officer", "household", "household", "monitor",
                                                        "official"]  # everyone warned (orange reached households)
    assert not heard(h, "S2-CRACK", "setworkmode")  # S2 is native and still at yellow


def test_a_siren_that_never_replies_raises_siren_failed_to_monitors_and_technicians(make):
    h = make(silent={"S1-ALARM"}, sirens={"reply_timeout_s": 0.3, "retries": 2})
    h.manager.handle(SiteLevelChange("S1", T0, "red", "normal", ["切线角 86°"]))
    for attempt in (1, 2, 3):
        assert h.devices.wait_for(lambda _: len(heard(h, "S1-ALARM", "alarm")) == attempt), attempt  # noqa: B023  -- waited for here
        assert wait_until(lambda: h.rows("SELECT COUNT(*) FROM outbox WHERE purpose = 'siren' AND "
                                         "status = 'published' AND attempts = ?", (attempt,))[0][0] == 2)  # noqa: B023  -- waited for here
        assert not [r for r in h.rx.received if "声光报警器" in r.title]
        h.manager.tick(time.time() + 3600 * attempt)  # the lifecycle's clock does not time a reply out
        assert h.rows("SELECT status FROM outbox WHERE purpose = 'siren' AND id = (SELECT MIN(id) FROM outbox "
                      "WHERE purpose = 'siren')")[0][0] == "published"
        time.sleep(0.35)  # real time does
        h.manager.tick()
    msgids = {c.msgid for c in heard(h, "S1-ALARM", "alarm")}
    assert len(msgids) == 1  # a retry is the same command: the device may act on it once
    assert statuses(h, "siren") == ["failed"]
    assert h.wait_idle()
    failed = [r for r in h.rx.received if "声光报警器未响应" in r.title]
    assert sorted(role_of(r.path) for r in failed) == ["monitor", "technician"]
    assert "S1-ALARM" in failed[0].message
    fault = [a for a in h.manager.alerts() if a.fault == "siren_failed"]
    assert len(fault) == 1 and fault[0].device == "S1-ALARM"


def test_a_broker_that_is_down_raises_siren_failed_and_the_siren_still_sounds_when_it_returns(make, mosquitto):
    h = make(sirens={"retries": 2})
    mosquitto.stop()
    assert wait_until(lambda: not h.sender._connected.is_set(), 30)
    h.manager.handle(SiteLevelChange("S1", T0, "red", "normal", ["切线角 86°"]))
    # not published after its three attempts (express + two backoffs): reported, still retried
    assert wait_until(lambda: h.rows("SELECT attempts FROM outbox WHERE command = 'alarm'")[0][0] >= 3, 30)
    h.manager.tick(time.time())
    assert h.wait_idle()
    failed = [r for r in h.rx.received if "声光报警器未响应" in r.title]
    assert sorted(role_of(r.path) for r in failed) == ["monitor", "technician"]
    assert "not published" in failed[0].message
    mosquitto.start()  # same port: the sender and the intake reconnect, the lane publishes again
    assert h.devices.wait_for(lambda _: heard(h, "S1-ALARM", "alarm"), 60)
    assert wait_until(lambda: h.rows("SELECT status FROM outbox WHERE purpose = 'siren' AND command = 'alarm'")[0][0]
                      == "confirmed", 60)
    assert h.wait_idle()
    cleared = [r for r in h.rx.received if "声光报警器未响应（已恢复）" in r.title]
    assert sorted(role_of(r.path) for r in cleared) == ["monitor", "technician"]
