"""The alert lifecycle end to end: events in, real apprise out to a local HTTP receiver."""
import subprocess
import sys
import time

import pytest

from geowarn.daemon.alerts.events import DeviceFault, SiteLevelChange
from geowarn.daemon.config import ConfigError, load_config

from alert_fixtures import Harness, role_of, write_config

T0 = time.time()
REASONS = {"yellow": ["裂缝计 S1-CRACK 速率 8.2 mm/d"],
           "orange": ["裂缝计 S1-CRACK 速率 21.5 mm/d", "24 h 雨量 132 mm"],
           "red": ["裂缝计 S1-CRACK 速率 48.0 mm/d", "切线角 86.1°"]}


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def rise(h, site, levels, t0=T0, drill=False, forecast=None):
    prev = "normal"
    ids = set()
    for i, level in enumerate(levels):
        ids.add(h.manager.handle(SiteLevelChange(site, t0 + 60 * i, level, prev, REASONS.get(level, []),
                                                 forecast_failure_ts=forecast, drill=drill)))
        prev = level
    assert h.wait_idle()
    return ids.pop() if len(ids) == 1 else ids


def test_yellow_orange_red_reach_the_right_roles_in_order(h):
    aid = rise(h, "S1", ["yellow", "orange", "red"], forecast=T0 + 5 * 3600)
    per_path: dict[str, list[str]] = {}
    for r in h.received(site="S1"):
        per_path.setdefault(r.path, []).append(r.title)
    colours = lambda titles: [t.split("】")[0].split("【")[1][:2] for t in titles]  # noqa: E731
    for phone, role in (("13900000001", "monitor"), ("13900000006", "duty_officer"), ("13900000002", "official")):
        assert colours(per_path[f"/S1/{role}/{phone}"]) == ["黄色", "橙色", "红色"], role
    for phone in ("13900000003", "13900000004"):  # households: from orange on
        assert colours(per_path[f"/S1/household/{phone}"]) == ["橙色", "红色"]
    assert not h.received(role="technician")
    assert not h.received(site="S2")
    red_household = h.received(role="household")[-1].message
    for expected in ("测试1号滑坡", "S1", "湘潭县", "测试镇1", "警报级", "48.0 mm/d", "切线角 86.1°",
                     "预测失稳时间", "立即撤离", f"A{aid}"):
        assert expected in red_household, expected
    assert "【演练】" not in red_household
    # the monitor's advice differs from the household's
    assert "立即撤离全部受威胁人员" in h.received(role="monitor")[-1].message


def test_drill_messages_say_so_in_every_message_and_in_english(h):
    rise(h, "S2", ["orange"], drill=True)
    got = h.received(site="S2")
    assert {role_of(r.path) for r in got} == {"monitor", "household"}
    for r in got:
        assert r.title.startswith("【演练】") or r.title.startswith("[DRILL]"), r.title
        assert "【演练】" in r.message or "[DRILL]" in r.message
    english = [r for r in got if r.path.endswith("13900000011")]
    assert english and english[0].title.startswith("[DRILL] Orange alert") and "Evacuate" in english[0].message
    alert = h.manager.alerts()[0]
    assert alert.drill and alert.site == "S2"


def test_ack_stops_repeats(h):
    aid = rise(h, "S1", ["red"])
    repeats = lambda: [r for r in h.received() if "请确认" in r.title]  # noqa: E731
    h.manager.tick(T0 + 599)
    assert h.wait_idle() and repeats() == []
    h.manager.tick(T0 + 601)  # red repeats every 600 s until acknowledged
    assert h.wait_idle()
    assert sorted(role_of(r.path) for r in repeats()) == ["duty_officer", "household", "household", "monitor",
                                                          "official"]
    h.manager.tick(T0 + 1202)
    assert h.wait_idle() and len(repeats()) == 10
    alert = h.manager.ack(f"A{aid}", "王监测", via="test")
    assert alert.acked_by == "王监测" and alert.status == "open"  # ack does not close
    for t in (T0 + 1803, T0 + 2404, T0 + 9000):
        h.manager.tick(t)
    assert h.wait_idle() and len(repeats()) == 10


def test_no_ack_escalates_to_the_next_tiers_and_an_ack_prevents_it(h):
    s1 = rise(h, "S1", ["red"])
    s2 = rise(h, "S2", ["red"])
    h.manager.ack(s2, "Monitor Two")
    head = lambda: [r for r in h.received(role="township_head")]  # noqa: E731
    office = lambda: [r for r in h.received(role="county_duty_office")]  # noqa: E731
    h.manager.tick(T0 + 899)
    assert h.wait_idle() and not head() and not office()
    h.manager.tick(T0 + 901)
    assert h.wait_idle()
    assert len(head()) == 1 and "上报" in head()[0].title and "测试1号滑坡" in head()[0].message
    assert not office()
    h.manager.tick(T0 + 1801)
    assert h.wait_idle()
    assert len(office()) == 1 and "测试1号滑坡" in office()[0].message  # S2 was acknowledged: never escalated
    assert h.manager.get(s1)[0].tier == 2 and h.manager.get(s2)[0].tier == 0
    # once escalated, the tiers hear the rest: the all-clear reaches them too
    h.manager.handle(SiteLevelChange("S1", T0 + 4000, "normal", "red", []))
    assert h.wait_idle()
    assert "解除" in head()[-1].title and "解除" in office()[-1].title


def test_stand_down_needs_a_reason_is_audited_and_announced(h):
    aid = rise(h, "S1", ["orange"])
    with pytest.raises(ValueError):
        h.manager.stand_down(aid, "值班员", "  ")
    alert = h.manager.stand_down(aid, "值班员 朱志强", "现场核查为施工扰动")
    assert alert.status == "closed" and alert.close_reason == "stood_down" and alert.closed_by == "值班员 朱志强"
    history = h.manager.get(aid)[1]
    assert any(e["event"] == "stood_down" and e["who"] == "值班员 朱志强" and e["reason"] == "现场核查为施工扰动"
               for e in history)
    assert h.wait_idle()
    assert all("撤销" in r.title for r in h.received(role="household")[-2:])
    # the core lowering the level after a stand-down opens nothing new
    assert h.manager.handle(SiteLevelChange("S1", T0 + 100, "yellow", "orange", [])) is None


def test_restart_neither_forgets_nor_notifies_again(tmp_path):
    h = Harness(tmp_path)
    aid = rise(h, "S1", ["orange"])
    sent = len(h.rx.received)
    h.close()
    h2 = Harness(tmp_path)  # same state dir, new processes' worth of objects
    try:
        again = h2.manager.handle(SiteLevelChange("S1", T0, "orange", "normal", REASONS["orange"]))
        assert again == aid and h2.manager.alerts()[0].status == "open"
        h2.manager.tick(T0 + 10)
        assert h2.wait_idle()
        assert len(h2.rx.received) == 0 and sent == 5
        # an acknowledgement from the command line reaches the running manager through the journal
        out = subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", "ack", f"A{aid}", "--state-dir",
                              str(h2.state), "--by", "孙值班"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        h2.manager.tick(T0 + 5000)
        assert h2.wait_idle() and len(h2.rx.received) == 0
        assert h2.manager.get(aid)[0].acked_via == "cli"
        bad = subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", "ack", "A999", "--state-dir",
                              str(h2.state)], capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1 and "no alert 999" in bad.stderr
    finally:
        h2.close()


def test_device_fault_reaches_technicians_never_households_and_silences_mute_only_faults(h):
    h.manager.handle(DeviceFault("S1", "S1-GNSS", "offline", T0, "无数据 3 h"))
    assert h.wait_idle()
    assert [role_of(r.path) for r in h.rx.received] == ["technician"]
    assert "设备离线" in h.rx.received[0].title and "S1-GNSS" in h.rx.received[0].message
    h.manager.handle(DeviceFault("S1", "S1-GNSS", "offline", T0 + 60, "无数据 4 h"))  # still active: no news
    h.manager.handle(DeviceFault("S1", "S1-GNSS", "offline", T0 + 120, "恢复上报", active=False))
    assert h.wait_idle()
    assert [r.title.endswith("（已恢复）") for r in h.rx.received] == [False, True]
    # a maintenance window on S1 mutes data-quality alerts ...
    h.manager.silence(site="S1", until=T0 + 3600, who="钱运维", reason="更换电池", starts=T0)
    fid = h.manager.handle(DeviceFault("S1", "S1-CRACK", "low_battery", T0 + 200, "电量 8%"))
    assert h.manager.get(fid)[0].silenced
    h.manager.handle(DeviceFault("S2", "S2-GNSS", "flatline", T0 + 200, "6 h 无变化"))  # not silenced
    # ... and never a hazard warning
    rise(h, "S1", ["orange"], t0=T0 + 300)
    assert h.wait_idle()
    roles = [role_of(r.path) for r in h.rx.received[2:]]
    assert roles.count("technician") == 1 and "household" in roles
    assert not [r for r in h.received(role="household") if "故障" in r.title or "Device" in r.title]


def test_configuration_refuses_faults_to_households_and_unknown_levels(tmp_path):
    path = write_config(tmp_path / "bad.yaml", 9, notify={"fault_roles": {"default": ["technician", "household"]}})
    with pytest.raises(ConfigError, match="never go to households"):
        load_config(path)
    with pytest.raises(ValueError, match="unknown level"):
        SiteLevelChange("S1", T0, "purple", "normal")
    with pytest.raises(ValueError, match="finite"):
        SiteLevelChange("S1", float("nan"), "red", "normal")


def test_unknown_site_is_a_clear_error_and_changes_nothing(h):
    with pytest.raises(ValueError, match="unknown site 'NOPE'"):
        h.manager.handle(SiteLevelChange("NOPE", T0, "red", "normal"))
    with pytest.raises(TypeError):
        h.manager.handle("red")
    assert h.manager.alerts() == []


def test_templates_are_editable_files(tmp_path):
    (tmp_path / "tpl" / "zh").mkdir(parents=True)
    (tmp_path / "tpl" / "zh" / "hazard.txt").write_text(
        "${drill}【${level_colour}】${site_name}\n请${advice}（编号 A${id}）\n", encoding="utf-8")
    h = Harness(tmp_path, notify={"templates_dir": str(tmp_path / "tpl")})
    try:
        aid = rise(h, "S1", ["blue"], drill=True)
        got = h.received(role="monitor")[0]
        assert got.title == "【演练】【蓝色】测试1号滑坡"
        assert got.message == f"请请加强巡查，关注雨情和坡体变化，做好应急准备。（编号 A{aid}）"
        out = subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", "alerts", "--state-dir", str(h.state),
                              "--json"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        import json
        listed = json.loads(out.stdout)
        assert [(a["id"], a["level"], a["drill"], a["acked_at"]) for a in listed] == [(aid, "blue", True, None)]
    finally:
        h.close()


def test_routes_shows_who_each_level_reaches_and_who_cannot_be_reached(tmp_path):
    import json
    path = write_config(tmp_path / "geowarn.yaml", 9, notify={"phone_url": None, "phone_url_by_role": {
        "monitor": "json://127.0.0.1:9/{phone}", "duty_officer": "json://127.0.0.1:9/{phone}"}})
    out = subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", "routes", "--config", str(path), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    s1 = next(r for r in json.loads(out.stdout) if r["site"] == "S1")
    assert s1["levels"] == {"blue": 2, "yellow": 2, "orange": 2, "red": 2}  # monitor and duty officer only
    assert s1["tiers"] == [1, 1] and s1["faults"] == 0
    assert s1["unreachable"] == ["household:张户主", "household:赵户主", "official:李镇长", "technician:钱运维"]
