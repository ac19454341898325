"""Routing sources and secrets: apprise configuration files (YAML and TEXT) selected by tags,
and `${ENV}` secrets resolved only at send time, never stored."""
import time

import pytest

from geowarn.daemon.alerts.events import SiteLevelChange
from geowarn.simulators.http_receiver import HttpReceiver

from alert_fixtures import Harness
from helpers import wait_until

T0 = time.time()


@pytest.fixture
def rx():
    r = HttpReceiver().start()
    yield r
    r.stop()


@pytest.mark.parametrize("kind", ["yaml", "text"])
def test_apprise_config_files_are_routed_by_role_and_place(tmp_path, rx, kind):
    base = f"json://127.0.0.1:{rx.port}/cfg"
    if kind == "yaml":
        cfg = tmp_path / "apprise.yaml"
        cfg.write_text("urls:\n"
                       f"  - {base}/official/township1:\n      tag: official, 测试镇1\n"
                       f"  - {base}/official/elsewhere:\n      tag: official, 另一个县\n"
                       f"  - {base}/monitor/everywhere:\n      tag: monitor, all\n"
                       f"  - {base}/household/s1:\n      tag: household, S1\n", encoding="utf-8")
        site, level, expected = "S1", "yellow", {"/cfg/official/township1", "/cfg/monitor/everywhere"}
    else:
        cfg = tmp_path / "apprise.txt"
        cfg.write_text(f"household,S2={base}/household/s2\nhousehold,S1={base}/household/s1\n", encoding="utf-8")
        site, level, expected = "S2", "orange", {"/cfg/household/s2"}
    h = Harness(tmp_path, rx=rx, notify={"apprise_config": str(cfg)})
    try:
        h.manager.handle(SiteLevelChange(site, T0, level, "normal", ["测试"]))
        assert h.wait_idle()
        assert {r.path for r in rx.received if r.path.startswith("/cfg/")} == expected
        targets = {r[0] for r in h.rows("SELECT target FROM outbox WHERE target LIKE 'apprise-config:%'")}
        assert len(targets) == len(expected)  # kept by reference: the file's URLs never enter the journal
    finally:
        h.close()


def test_secrets_come_from_the_environment_at_send_time_and_are_never_stored(tmp_path, rx, monkeypatch):
    monkeypatch.delenv("GW_TEST_SMS_KEY", raising=False)
    url = f"json://127.0.0.1:{rx.port}/${{GW_TEST_SMS_KEY}}/{{site}}/{{role}}/{{phone}}"
    h = Harness(tmp_path, rx=rx, notify={"phone_url": url})
    try:
        h.manager.handle(SiteLevelChange("S2", T0, "blue", "normal", ["测试"]))
        assert wait_until(lambda: h.rows("SELECT COUNT(*) FROM outbox_attempts WHERE ok = 0")[0][0] >= 1)
        detail = h.rows("SELECT detail FROM outbox_attempts WHERE ok = 0")[0][0]
        assert "GW_TEST_SMS_KEY is not set" in detail and not rx.received
        monkeypatch.setenv("GW_TEST_SMS_KEY", "top-secret-42")
        assert h.wait_idle()
        assert [r.path for r in rx.received] == ["/top-secret-42/S2/monitor/13900000011"]
        stored = repr([tuple(r) for r in h.rows("SELECT * FROM outbox")]) + repr(
            [tuple(r) for r in h.rows("SELECT * FROM outbox_attempts")])
        assert "top-secret-42" not in stored and "${GW_TEST_SMS_KEY}" in stored
    finally:
        h.close()


def test_households_by_sms_through_smpp_with_the_password_from_the_environment(tmp_path, rx, monkeypatch):
    from geowarn.simulators.smsc import Smsc
    monkeypatch.setenv("GW_TEST_SMPP_PASSWORD", "sms-pw42")
    with Smsc(password="sms-pw42") as smsc:
        sms_url = f"smpp://geowarn:${{GW_TEST_SMPP_PASSWORD}}@127.0.0.1:{smsc.port}/1069012345678/86{{phone}}"
        h = Harness(tmp_path, rx=rx, notify={"phone_url_by_role": {"household": sms_url}})
        try:
            h.manager.handle(SiteLevelChange("S1", T0, "orange", "normal", ["裂缝计速率 21.5 mm/d"]))
            assert h.wait_idle()
            assert sorted(m.destination for m in smsc.messages) == ["8613900000003", "8613900000004"]
            text = smsc.messages[0].text  # Chinese in UCS-2, long messages reassembled from their parts
            assert "橙色预警" in text and "立即按预定路线撤离" in text and "21.5 mm/d" in text
            assert all(m.source == "1069012345678" for m in smsc.messages)
            assert "household" not in {r.path.split("/")[2] for r in rx.received}
            assert {r.path.split("/")[2] for r in rx.received} == {"monitor", "official", "duty_officer"}
        finally:
            h.close()


def test_the_readme_configuration_example_validates_and_reaches_everyone(tmp_path):
    import re
    from pathlib import Path

    from geowarn.daemon.alerts.routing import Router
    from geowarn.daemon.config import default_config_path, load_config
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "apprise.yaml").write_text("urls:\n  - json://127.0.0.1:9/x:\n      tag: monitor, all\n")
    cfg_path = tmp_path / "geowarn.yaml"
    cfg_path.write_text(f"registry: {default_config_path()}\n"
                        + block.replace("/etc/geowarn/apprise.yaml", str(tmp_path / "apprise.yaml")), encoding="utf-8")
    cfg = load_config(cfg_path)
    router = Router(cfg.settings.notify)
    site = cfg.registry.site("XTX001")
    red = router.level(site, "red")
    assert not red.unreachable and {r.role for r in red.recipients} == {"monitor", "duty_officer", "official",
                                                                        "household"}
    assert [len(router.tier(site, i).recipients) for i in range(2)] == [1, 1]
    assert cfg.settings.sirens.levels_for("XTX003") == ("orange", "red")


@pytest.mark.parametrize("content, problem", [(None, "cannot read"), ("urls: [[[\n", "holds no URL apprise can use")])
def test_an_apprise_file_that_gives_no_contact_is_a_configuration_error(tmp_path, capsys, content, problem):
    """apprise alone would give no service, and every contact listed there would be dropped."""
    from geowarn.daemon.cli import main

    from alert_fixtures import write_config

    apprise_file = tmp_path / "apprise.yaml"
    if content is not None:
        apprise_file.write_text(content, encoding="utf-8")
    path = write_config(tmp_path / "geowarn.yaml", 9, notify={"apprise_config": str(apprise_file)})
    assert main(["check", "--config", str(path)]) == 2
    assert problem in capsys.readouterr().err
