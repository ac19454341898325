"""The sample broker ACL and TLS, for real: per-device credentials, geowarn's own identity,
server-certificate verification."""
import subprocess
import time
from pathlib import Path

import pytest

from geowarn.daemon.config import IntakeSettings, TLSSettings
from geowarn.daemon.intake import Intake
from geowarn.daemon.journal import Journal
from geowarn.drivers.formats.national import Format as National
from geowarn.drivers.formats.native import Format as Native
from geowarn.simulators.local_broker import Mosquitto, free_port
from geowarn.simulators.publisher import Publisher

from helpers import wait_until

REPO = Path(__file__).resolve().parents[1]


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt",
             "-days", "2", "-subj", f"/CN={name}", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    _make_ca(d, "ca")
    _make_ca(d, "wrong-ca")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "san.ext", cwd=d)
    return d


@pytest.fixture
def secure_broker(tmp_path, pki, registry):
    devices = [d for d in registry.devices if d.kind in ("crack", "alarm")][:1] + \
              [d for d in registry.devices if d.kind == "alarm"][:1]
    passwd = tmp_path / "passwd"
    users = {"geowarn": "gw-secret", **{d.id: f"key-{d.id}" for d in devices}}
    for i, (user, pw) in enumerate(users.items()):
        subprocess.run(["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(passwd), user, pw], check=True)
    port = free_port()
    listener = (f"listener {port} 127.0.0.1\n"
                f"cafile {pki / 'ca.crt'}\ncertfile {pki / 'server.crt'}\nkeyfile {pki / 'server.key'}\n"
                f"allow_anonymous false\npassword_file {passwd}\n"
                f"acl_file {REPO / 'systemd' / 'mosquitto-geowarn.acl'}\n")
    (tmp_path / "mq").mkdir()
    broker = Mosquitto(port=port, workdir=tmp_path / "mq", listener=listener).start()
    yield broker, users, devices
    broker.close()


def _intake(registry, port, pki, ca, tmp_path, monkeypatch):
    monkeypatch.setenv("GEOWARN_MQTT_PASSWORD", "gw-secret")
    settings = IntakeSettings(client_id="geowarn", username="geowarn", batch_wait_ms=5,
                              tls=TLSSettings(ca_file=str(pki / ca)))
    journal = Journal(tmp_path / f"journal-{ca}.sqlite")
    return Intake(registry, settings, journal, broker_url=f"mqtts://127.0.0.1:{port}"), journal


def test_devices_cannot_sound_sirens_or_speak_for_others(secure_broker, registry, pki, tmp_path, monkeypatch):
    broker, users, (crack, alarm) = secure_broker
    intake, journal = _intake(registry, broker.port, pki, "ca.crt", tmp_path, monkeypatch)
    intake.start()
    try:
        assert intake.wait_connected(15), "geowarn could not connect over TLS with its credentials"
        time.sleep(0.3)
        url = f"mqtts://{crack.id}:{users[crack.id]}@127.0.0.1:{broker.port}"
        alarm_url = f"mqtts://{alarm.id}:{users[alarm.id]}@127.0.0.1:{broker.port}"
        heard = []
        siren = Publisher(alarm_url, alarm.id, ca_file=str(pki / "ca.crt")).connect()
        siren.client.on_message = lambda c, u, m: heard.append(m.topic)
        siren.client.subscribe(f"$creq/{alarm.id}/cmd", 1)
        time.sleep(0.3)
        native = Native(registry)
        with Publisher(url, crack.id, ca_file=str(pki / "ca.crt")) as dev:
            now = time.time() - 60
            dev.publish(*native.encode_readings(crack, now, {"width": 1.0}))  # its own: allowed
            other = next(d for d in registry.devices if d.kind == "crack" and d.id != crack.id)
            dev.publish(*native.encode_readings(other, now, {"width": 9.0}))  # as another device
            nat = National(registry)
            dev.publish(nat.command_topic(alarm.id, alarm.site),
                        nat.encode_command("alarm", {"type": "L1_LF", "level": 0}, "evil"))  # a siren
            dev.publish(native.command_topic(alarm.id, alarm.site), b'{"cmd": "alarm"}')
            dev.flush(10)
        assert wait_until(lambda: intake.stats.readings >= 1, timeout=10)
        time.sleep(1.0)
        rows = list(journal.export_rows())
        assert [(r[2], r[5]) for r in rows] == [(crack.id, 1.0)], "a device spoke for another"
        assert heard == [], "a device's credentials sounded a siren"
        # geowarn itself may command the siren
        gw = Publisher(f"mqtts://geowarn:gw-secret@127.0.0.1:{broker.port}", "geowarn-cmd",
                       ca_file=str(pki / "ca.crt")).connect()
        gw.publish(f"$creq/{alarm.id}/cmd", b"$cmd=alarm&type=L1_LF&level=0&msgid=ok")
        gw.flush(10)
        assert wait_until(lambda: heard, timeout=10) == [f"$creq/{alarm.id}/cmd"]
        gw.close()
        siren.close()
    finally:
        intake.stop()
        journal.close()


def test_tls_with_a_wrong_ca_is_refused(secure_broker, registry, pki, tmp_path, monkeypatch):
    broker, _, _ = secure_broker
    intake, journal = _intake(registry, broker.port, pki, "wrong-ca.crt", tmp_path, monkeypatch)
    intake.start()
    try:
        assert not intake.wait_connected(3), "connected to a server whose certificate the CA did not sign"
    finally:
        intake.stop()
        journal.close()
