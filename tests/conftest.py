from pathlib import Path

import pytest

from geowarn.daemon.config import load_config
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
