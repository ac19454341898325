import re
import subprocess
import sys

import pytest

from geowarn.simulators.fleet import readings


@pytest.mark.parametrize("broker", ["auto", "embedded"])
def test_demo_ingests_a_day_of_the_whole_network(tmp_path, registry, broker):
    r = subprocess.run([sys.executable, "-m", "geowarn.simulators.demo", "--broker", broker,
                        "--state-dir", str(tmp_path / "demo")], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    expected = sum(len(values) + (1 if dev.kind == "gnss" else 0) for dev, _, values in readings(registry, 0.0, 24))
    m = re.search(r"journal .*: (\d+) readings", r.stdout)
    assert m and int(m.group(1)) == expected, r.stdout
    assert "sites reporting: 80/80" in r.stdout
    assert "impossible_value 1" in r.stdout and "unknown_device 1" in r.stdout and "invalid_json 1" in r.stdout
    assert ("Mosquitto" if broker == "auto" else "EmbeddedBroker") in r.stdout
