"""Alert rules: defaults per kind, overrides per site and device, errors naming file, line, key."""
import subprocess
import sys
from pathlib import Path

import pytest

from geowarn.daemon.config import ConfigError, load_config
from geowarn.daemon.core import Core
from geowarn.daemon.model.levels import Level
from geowarn.daemon.rules import default_rules_dir, load_rules

DEFAULTS = default_rules_dir() / "defaults.yaml"


def test_defaults_cover_every_kind_of_the_network():
    rules = load_rules()
    kinds = {d.kind for d in load_config().registry.devices} - {"alarm", "video"}
    assert kinds <= set(rules.kinds)
    rain = rules.for_device("rain")
    assert rain.rainfall.totals_mm[1].table().tolist() == [35, 45, 60, 80]
    assert rain.rainfall.totals_mm[24].table().tolist() == [100, 130, 160, 200]
    assert rain.rainfall.totals_mm[12] is None and rain.rainfall.totals_mm[72] is None


def test_site_file_override_reaches_the_core():
    core = Core(load_config().registry)
    a = core.intern("XTX001", "430321010001", "gnss", "dh")
    b = core.intern("XTX002", "430321010002", "gnss", "dh")
    assert core.p.rate_tab[a, Level.BLUE - 1] == 1.5  # alert_rules/sites/XTX001.yaml
    assert core.p.rate_tab[b, Level.BLUE - 1] == 2.0 and core.p.rate_tab[a, Level.RED - 1] == core.p.rate_tab[b, Level.RED - 1]


def _rules_dir(tmp_path: Path, site_text: str | None = None, defaults_extra: str = "") -> Path:
    d = tmp_path / "rules"
    (d / "sites").mkdir(parents=True)
    (d / "defaults.yaml").write_text(DEFAULTS.read_text() + defaults_extra)
    if site_text is not None:
        (d / "sites" / "S9.yaml").write_text(site_text)
    return d


def test_device_override_in_the_defaults_file(tmp_path):
    d = _rules_dir(tmp_path, defaults_extra="\ndevices:\n  c1:\n    threshold:\n      rate: {red: 100}\n")
    text = (d / "defaults.yaml").read_text().replace("devices: {}\n", "")
    (d / "defaults.yaml").write_text(text)
    rules = load_rules(d)
    assert rules.for_device("crack", "S1", "c1").threshold.rate.red == 100
    assert rules.for_device("crack", "S1", "c2").threshold.rate.red == 430


@pytest.mark.parametrize("text, line, place, problem", [
    ("kinds:\n  crack:\n    threshold:\n      rate: {blue: 10, yellow: 5}\n", 4, "kinds.crack.threshold.rate",
     "thresholds must increase"),
    ("site:\n  hold_h: -3\n", 2, "site.hold_h", "greater than or equal to 0"),
    ("kinds:\n  crack:\n    thresold: {}\n", 3, "kinds.crack.thresold", "Extra inputs are not permitted"),
    ("sirens: true\n", 1, "sirens", "unknown section"),
])
def test_errors_name_file_line_and_key(tmp_path, text, line, place, problem):
    d = _rules_dir(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_rules(d)
    err = e.value
    assert err.file.endswith("S9.yaml") and err.line == line and err.place == place and problem in err.problem


def test_geowarn_check_validates_the_rules(tmp_path):
    d = _rules_dir(tmp_path, "kinds:\n  rain:\n    rainfall:\n      totals_mm:\n        5: {blue: 1}\n")
    cfg = tmp_path / "geowarn.yaml"
    cfg.write_text(f"registry: {load_config().source}\nrules: {d}\n")
    p = subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", "check", "--config", str(cfg)],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert "S9.yaml:5: kinds.rain.rainfall.totals_mm[5]: Input should be 1, 3, 6, 12, 24 or 72" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", "check"], capture_output=True, text=True)
    assert p.returncode == 0 and "alert rules:" in p.stdout and "OK" in p.stdout
