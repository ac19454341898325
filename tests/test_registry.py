import json
import subprocess
import sys

import pytest
import yaml

from geowarn.daemon.boundaries import Boundaries

from geowarn.daemon.config import ConfigError, default_config_path, load_config

EXPECTED = {"gnss": 51, "crack": 68, "tilt": 61, "rain": 51, "pressure": 10, "alarm": 52, "video": 3}
XIANGTAN_BOX = (111.8, 113.2, 27.2, 28.2)  # lon, lon, lat, lat


def geowarn(*args):
    return subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", *args], capture_output=True, text=True)


def test_default_network_matches_the_city_plan():
    reg = load_config().registry
    assert reg.example is True and "EXAMPLE" in reg.note
    assert len(reg.sites) == 80
    counts = reg.summary()["devices"]
    assert {k: counts[k] for k in EXPECTED} == EXPECTED
    assert len(reg.devices) == 296
    counties = {s.county for s in reg.sites}
    assert {"湘潭县", "湘乡市", "韶山市", "雨湖区", "岳塘区"} <= counties
    for s in reg.sites:
        assert XIANGTAN_BOX[0] < s.lon < XIANGTAN_BOX[1] and XIANGTAN_BOX[2] < s.lat < XIANGTAN_BOX[3], s.id
        assert s.households > 0 and s.people >= s.households
        assert s.contacts["monitor"] and s.contacts["official"] and s.contacts["household"]
        deformation = [d for d in s.devices if d.kind in ("gnss", "crack", "tilt", "pressure")]
        assert len(deformation) >= 2, f"{s.id} cannot corroborate with one instrument"
    for d in reg.devices:
        assert d.site and d.interval_s > 0
        if d.kind not in ("alarm", "video"):
            assert d.sensors, d.id


def test_every_example_site_lies_in_the_county_it_names():
    outlines = Boundaries.load()  # the built-in outlines the console draws
    sites = load_config().registry.sites
    assert sorted(a.name for a in outlines.areas) == sorted({s.county for s in sites})
    # ray-cast over the real outlines: in its own county and in no other, all 80
    assert {s.id: outlines.areas_at(s.lon, s.lat) for s in sites} == {s.id: [s.county] for s in sites}
    assert len(sites) == 80 and outlines.misplaced(sites) == []
    # and the ray cast itself: a point of 湘潭县 is not in 湘乡市, a point off the map in nothing
    assert outlines.areas_at(112.85, 27.55) == ["湘潭县"] and outlines.areas_at(111.0, 27.0) == []
    assert {s.division_code for s in sites} == {a.code for a in outlines.areas}


def test_check_warns_of_sites_outside_their_county_and_refuses_broken_outlines(tmp_path):
    text = default_config_path().read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    doc["sites"][0]["lon"], doc["sites"][0]["lat"] = 112.4, 27.9  # in 湘乡市, named 湘潭县
    cfg = tmp_path / "geowarn.yaml"
    cfg.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    r = geowarn("check", "--config", str(cfg))
    assert r.returncode == 0 and "warning: site XTX001 (112.4, 27.9) names 湘潭县 but lies in" in r.stdout, r.stdout
    assert json.loads(geowarn("check", "--json", "--config", str(cfg)).stdout)["misplaced"][0].startswith("XTX001")
    (tmp_path / "bad.geojson").write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", '
                                          '"properties": {}, "geometry": {"type": "Point"}}]}')
    doc["http"] = {"boundaries": "bad.geojson"}
    cfg.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    r = geowarn("check", "--config", str(cfg))
    assert r.returncode == 2 and "http.boundaries" in r.stderr and "properties.name" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_check_json_prints_the_counts():
    r = geowarn("check", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["sites"] == 80
    assert {k: doc["devices"][k] for k in EXPECTED} == EXPECTED


def test_devices_json_lists_every_device():
    r = geowarn("devices", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 296
    gnss = next(x for x in rows if x["kind"] == "gnss")
    assert {"id", "site", "kind", "sensors"} <= gnss.keys() and gnss["sensors"] == ["L1_GP_1"]


@pytest.mark.parametrize("mutate, place, words", [
    (lambda t: t.replace("kind: tilt\n", "kind: tilz\n", 1), "sites[", "unknown device kind 'tilz'"),
    (lambda t: t.replace("lat: ", "lat: north", 1), "sites[0].lat", "valid number"),
    (lambda t: t.replace("hazard: landslide", "hazard: volcano", 1), "sites[0].hazard", "landslide"),
    (lambda t: t + "\n- {id: XTX001, name: dup, county: x, hazard: collapse, lon: 112.5, lat: 27.5}\n",
     "", "duplicate site id 'XTX001'"),
    (lambda t: t.replace("sites:\n", "sites: [\n", 1), "", "invalid YAML"),
    (lambda t: t + "\nintake: {receive_maximum: 0}\n", "intake.receive_maximum", "greater than or equal to 1"),
])
def test_broken_configuration_names_file_place_and_problem(tmp_path, mutate, place, words):
    bad = tmp_path / "network.yaml"
    bad.write_text(mutate(default_config_path().read_text(encoding="utf-8")), encoding="utf-8")
    r = geowarn("check", "--config", str(bad))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert str(bad) in r.stderr and place in r.stderr and words in r.stderr, r.stderr


def test_config_can_name_a_registry_file(tmp_path):
    cfg = tmp_path / "geowarn.yaml"
    cfg.write_text(f"registry: {default_config_path()}\nintake:\n  broker: mqtt://127.0.0.1:1999\n")
    c = load_config(cfg)
    assert len(c.registry.sites) == 80 and c.settings.intake.broker.endswith(":1999")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")
