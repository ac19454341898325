"""Scale-out by site shards: two service instances on one real Mosquitto, each owning the sites
whose id hashes to its index (daemon/shard.py). A witness intake journals the whole network
beside them: the instances' journals must split it exactly, each site judged, warned and
commanded by its owner alone, and a drill on a site of each shard must pass."""
import json
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from helpers import journal_rows

from geowarn.daemon.cli import main
from geowarn.daemon.config import IntakeSettings, default_config_path, load_config
from geowarn.daemon.core import Core
from geowarn.daemon.intake import Intake
from geowarn.daemon.journal import Journal
from geowarn.daemon.rules import rules_for_config
from geowarn.daemon.service import Service
from geowarn.daemon.shard import Shard, shard_of
from geowarn.simulators.drill import run_drill
from geowarn.simulators.scenario import load_scenario

NATIVE_COUNTY = "湘乡市"  # its devices speak native JSON (topics name the site); the rest national `$dp`


def test_assignment_is_a_stable_hash_of_the_site_id():
    # crc32 of the UTF-8 id: the same in every process and Python version (hash() is not)
    assert [shard_of(s, 2) for s in ("YHQ005", "XTX003", "SSS001", "SSS004")] == [1, 0, 0, 1]
    assert shard_of("YHQ005", 7) == 753898643 % 7 == 1 and shard_of("XTX003", 7) == 0
    assert shard_of("YHQ005", 2, {"YHQ005": 0}) == 0  # a pin wins
    sites = [s.id for s in load_config().registry.sites]
    for count in (1, 2, 3, 5):
        owners = [[i for i in range(count) if Shard(i, count).owns(s)] for s in sites]
        assert all(len(o) == 1 for o in owners), "every site has exactly one owner"
        if count > 1:
            assert all(any(o == [i] for o in owners) for i in range(count)), "no shard is empty"


def _config_file(tmp_path, shard: str) -> str:
    cfg = tmp_path / f"geowarn-{len(list(tmp_path.iterdir()))}.yaml"
    cfg.write_text(f"registry: {default_config_path()}\n{shard}", encoding="utf-8")
    return str(cfg)


def test_check_validates_and_reports_the_shard(tmp_path, capsys):
    assert main(["check", "--config", _config_file(tmp_path, "shard: {index: 1, count: 2}\n")]) == 0
    assert "shard 1 of 2: 39 of 80 sites, MQTT client id geowarn-shard-1-of-2" in capsys.readouterr().out
    assert main(["check", "--json", "--config", _config_file(tmp_path, "shard: {index: 0, count: 2}\n")]) == 0
    assert json.loads(capsys.readouterr().out)["shard"]["sites"] == 41
    bad = {"shard: {index: 2, count: 2}\n": ":2: shard: index 2 is not below count 2",
           "shard:\n  index: 0\n  count: 2\n  pin: {NOSUCH: 1}\n": ":5: shard.pin.NOSUCH: no site 'NOSUCH'",
           "shard: {index: 0, count: 2, pin: {YHQ005: 2}}\n": ":2: shard: pin YHQ005: 2 is not a shard index",
           "shard: {index: 0}\n": ":2: shard.count: Field required"}
    for text, problem in bad.items():
        assert main(["check", "--config", _config_file(tmp_path, text)]) == 2
        assert problem in capsys.readouterr().err


def test_each_instance_has_its_own_session_port_and_health_and_keeps_its_shard_on_reload(mosquitto, tmp_path):
    services = []
    try:
        for i in range(2):
            path = _config_file(tmp_path, f"shard: {{index: {i}, count: 2}}\nhttp: {{port: 0}}\n")
            services.append(Service(load_config(path), tmp_path / f"state-{i}", mosquitto.url, config_path=path))
            services[-1].start()
        assert all(svc.intake.wait_connected() for svc in services)  # distinct client ids: no takeover
        for i, svc in enumerate(services):
            with urllib.request.urlopen(f"http://127.0.0.1:{svc.http.port}/healthz", timeout=10) as r:
                shard = json.loads(r.read())["shard"]
            assert (shard["index"], shard["count"], shard["client_id"]) == (i, 2, f"geowarn-shard-{i}-of-2")
            assert shard["sites"] == len(svc.config.registry.sites) == [41, 39][i]
            assert f"shard {i} of 2" in svc.status_line()
        assert services[0].http.port != services[1].http.port
        assert services[0].intake.stats.connected and services[1].intake.stats.connected
        Path(services[1].config_path).write_text(f"registry: {default_config_path()}\nshard: {{index: 1, count: 3}}\n")
        assert services[1].reload() is False and len(services[1].config.registry.sites) == 39
    finally:
        for svc in services:
            svc.stop()


def _mixed_network(tmp_path) -> str:
    """The example network with one county's devices on native JSON, so both kinds of topic
    (site in the topic: subscriptions narrowed; `$dp`: filtered) cross the shards."""
    doc = load_config().registry.doc.model_dump(mode="json")
    for site in doc["sites"]:
        if site["county"] == NATIVE_COUNTY:
            for dev in site["devices"]:
                dev["protocol"] = "native"
    reg = tmp_path / "registry.yaml"
    reg.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    cfg = tmp_path / "geowarn.yaml"
    cfg.write_text(f"registry: {reg}\n", encoding="utf-8")
    return str(cfg)


READINGS = "SELECT s.site, s.device, s.channel, r.ts_ms, r.value FROM readings r JOIN series s ON s.id = r.series"


@pytest.mark.parametrize("name,site,shard,level", [("device-offline", "XTX003", 0, "normal"),
                                                   ("slope-failure", "YHQ005", 1, "red")])
def test_two_instances_split_the_network_and_a_drill_on_each_shard_passes(name, site, shard, level, mosquitto,
                                                                          tmp_path, capsys):
    cfg_path = _mixed_network(tmp_path)
    registry = load_config(cfg_path).registry
    shards = [Shard(i, 2) for i in range(2)]
    scenario = load_scenario(name, registry)
    witness_journal = Journal(tmp_path / "witness" / "journal.sqlite")
    witness = Intake(registry, IntakeSettings(client_id="witness", batch_wait_ms=5), witness_journal,
                     broker_url=mosquitto.url)
    witness.start()
    assert witness.wait_connected()
    try:
        speed = max(3600.0, scenario.duration_h * 3600 / 20)
        report = run_drill(name, config=cfg_path, broker_url=mosquitto.url, speed=speed, timeout_s=240,
                           shards=2, state_dir=tmp_path / "drill")
        time.sleep(0.5)  # the witness commits what the broker still had in flight to it
    finally:
        witness.stop()
        witness_journal.close()
    failed = [c for c in report["checks"] if not c["passed"]]
    assert report["passed"], json.dumps(failed, ensure_ascii=False)

    # every reading in exactly one instance's journal: its site's owner's
    journals = [tmp_path / "drill" / f"state-{i}" / "journal.sqlite" for i in range(2)]
    held = [set(journal_rows(j, READINGS)) for j in journals]
    everything = set(journal_rows(tmp_path / "witness" / "journal.sqlite", READINGS))
    assert held[0] | held[1] == everything and not held[0] & held[1]
    for i, rows in enumerate(held):
        assert rows and all(shards[i].owns(site) for site, *_ in rows)
        assert main(["status", "--json", "--state-dir", str(journals[i].parent)]) == 0
        assert json.loads(capsys.readouterr().out)["shard"] == {"index": i, "count": 2}

    # each site judged, warned and commanded by its owner alone; the drill's site by its shard
    by_shard = report["shards"]
    assert [s["index"] for s in by_shard] == [0, 1] and by_shard[0]["sites"] + by_shard[1]["sites"] == 80
    outbox_sites = [{s for (s,) in journal_rows(j, "SELECT DISTINCT site FROM outbox")} for j in journals]
    for i, s in enumerate(by_shard):
        assert all(shards[i].owns(judged) for judged in s["judged_sites"])
        assert all(shards[i].owns(sent) for sent in outbox_sites[i]), outbox_sites[i]  # messages and commands
    assert shard_of(site, 2) == shard and site in report["notifications"]
    assert site in by_shard[shard]["judged_sites"] and site in outbox_sites[shard]

    # what each instance dropped: shard 1 subscribes to its own sites' native topics only, so it
    # drops exactly the `$dp`/`$dr` items of shard 0's national devices; shard 0 keeps wildcards
    witness_db = tmp_path / "witness" / "journal.sqlite"
    items = journal_rows(witness_db, "SELECT s.device FROM readings r JOIN series s ON s.id = r.series") \
        + journal_rows(witness_db, "SELECT device FROM statuses") + journal_rows(witness_db, "SELECT device FROM replies")

    def foreign_to(i: int, protocol: str) -> int:
        return sum(1 for (dev,) in items if registry.device(dev).protocol == protocol
                   and not shards[i].owns(registry.device(dev).site))

    assert by_shard[1]["not_my_shard"] == foreign_to(1, "national")
    assert by_shard[0]["not_my_shard"] == foreign_to(0, "national") + foreign_to(0, "native")

    # re-sharding: the drill's site pinned to the other shard, which takes its history from an
    # export of the old owner's journal and warms to the same level without warning again
    other = 1 - shard
    assert main(["export", "--state-dir", str(journals[shard].parent)]) == 0
    export = tmp_path / "export.csv"
    export.write_text(capsys.readouterr().out, encoding="utf-8")
    moved = tmp_path / "moved.yaml"
    moved.write_text(Path(cfg_path).read_text(encoding="utf-8")
                     + f"shard: {{index: {other}, count: 2, pin: {{{site}: {other}}}}}\n", encoding="utf-8")
    assert main(["shard-import", "--config", str(moved), "--state-dir", str(journals[other].parent), str(export)]) == 0
    counts = json.loads(capsys.readouterr().out)
    site_rows = {r for r in held[shard] if r[0] == site}
    assert counts["imported"] == len(site_rows) and counts["other_shards"] == len(held[shard]) - len(site_rows)
    assert {r for r in journal_rows(journals[other], READINGS) if r[0] == site} == site_rows
    final = dict(report["levels"]).get(site, [("", "normal")])[-1][1]
    assert final == level
    cfg = load_config(moved)
    with Journal(journals[other]) as j:
        core = Core(Shard.of(cfg.settings.shard).view(cfg.registry), rules_for_config(cfg))
        core.warm(j)
    assert core.site_levels()[site] == final
