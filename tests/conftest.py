import time
from pathlib import Path

import pytest

from geowarn.daemon.config import IntakeSettings, load_config
from geowarn.daemon.intake import Intake
from geowarn.daemon.journal import Journal
from geowarn.simulators.local_broker import Mosquitto

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def config():
    return load_config()


@pytest.fixture(scope="session")
def registry(config):
    return config.registry


@pytest.fixture
def mosquitto(tmp_path):
    broker = Mosquitto(workdir=tmp_path / "mosquitto")
    (tmp_path / "mosquitto").mkdir()
    broker.start()
    yield broker
    broker.close()


@pytest.fixture
def intake(mosquitto, registry, tmp_path):
    """The real intake on the test broker, journaling into tmp_path/state."""
    journal = Journal(tmp_path / "state" / "journal.sqlite")
    svc = Intake(registry, IntakeSettings(client_id="geowarn-test", batch_wait_ms=5), journal, broker_url=mosquitto.url)
    svc.start()
    assert svc.wait_connected()
    time.sleep(0.2)  # subscriptions in place
    yield svc
    svc.stop()
    journal.close()
