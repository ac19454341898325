"""The intake end to end through a real Mosquitto: frames in, journal rows out."""
import csv
import io
import json
import math
import signal
import subprocess
import sys
import threading
import time

import pytest

from geowarn.daemon.config import IntakeSettings
from geowarn.daemon.intake import Intake
from geowarn.daemon.journal import Journal
from geowarn.drivers.formats.national import FRAME_DATA, FRAME_STATUS, Format as National, frame
from geowarn.drivers.formats.native import Format as Native
from geowarn.drivers.kinds import KINDS
from geowarn.drivers.timestamps import format_ts
from geowarn.simulators.publisher import Publisher

from helpers import journal_count, wait_subscribed, wait_until

NOW = time.time()
T0 = math.floor(NOW / 60) * 60 - 3600  # an hour ago, on the minute


def first(registry, kind, protocol_index=0):
    return [d for d in registry.devices if d.kind == kind][protocol_index]


def dp(body, frame_type=FRAME_DATA):
    return frame(frame_type, json.dumps(body).encode())


def rows_of(journal):
    return {(dev, ch, ts): (kind, v) for ts, site, dev, kind, ch, v in journal.export_rows()}


def test_every_kind_in_both_formats_lands_with_channel_value_unit_and_time(intake, registry, mosquitto):
    national, native = National(registry), Native(registry)
    sample = {"gnss": {"dx": 1.5, "dy": -2.0, "dz": 3.25}, "crack": {"width": 4.75},
              "tilt": {"x": 0.125, "y": -0.5, "angle": 0.515, "azimuth": 104.0},
              "rain": {"mm": 2.5, "total": 1002.5}, "pressure": {"kpa": 151.0}}
    units = {"dx": "mm", "dy": "mm", "dz": "mm", "dh": "mm", "width": "mm", "x": "deg", "y": "deg",
             "angle": "deg", "azimuth": "deg", "mm": "mm", "total": "mm", "kpa": "kPa"}
    expected = {}
    with Publisher(mosquitto.url, "devices") as pub:
        for kind, values in sample.items():
            for i, fmt in enumerate((national, native)):
                dev = first(registry, kind, i)
                ts = T0 + 60 * i
                pub.publish(*fmt.encode_readings(dev, ts, values))
                full = dict(values, **({"dh": math.hypot(values["dx"], values["dy"])} if kind == "gnss" else {}))
                for ch, v in full.items():
                    expected[(dev.id, ch, ts)] = (kind, v)
                    assert KINDS[kind].channels[ch] == units[ch]
        alarm = first(registry, "alarm")
        pub.publish("$dp", dp({alarm.id: {"S1_ZT_1": {format_ts(T0): {"battery_dump_energy": 55, "sound_state": 0}}}},
                              FRAME_STATUS))
        assert pub.flush()
    assert wait_until(lambda: intake.stats.readings >= len(expected) and intake.stats.statuses >= 1)
    got = rows_of(intake.journal)
    assert got.keys() == expected.keys()
    for key, (kind, v) in expected.items():
        assert got[key][0] == kind and got[key][1] == pytest.approx(v)
    assert intake.stats.quarantine == {}
    assert json.loads(intake.journal._query("SELECT fields FROM statuses")[0][0])["battery_pct"] == 55


def test_each_bad_input_is_quarantined_with_its_reason_and_good_data_is_kept(intake, registry, mosquitto):
    crack = first(registry, "crack")
    site = crack.site
    topic = f"geowarn/v1/{site}/{crack.id}/reading"
    good_ts = iter(range(int(T0), int(T0) + 3600, 60))

    def good():
        return topic, json.dumps({"ts": next(good_ts), "values": {"width": 1.0}})

    bad = {
        "unknown_device": ("$dp", dp({"000000000000": {"L1_LF_1": {format_ts(T0): 1.0}}})),
        "bad_framing": ("$dp", b"\x02\x00"),
        "bad_length": ("$dp", b"\x02\x00\x40{}"),
        "unknown_frame_type": ("$dp", frame(9, b"{}")),
        "invalid_json": (topic, b"{nope"),
        "invalid_utf8": (topic, b"\xff\xfe\xfd"),
        "missing_value": (topic, json.dumps({"ts": T0, "values": {"depth": 1}})),
        "non_numeric": (topic, json.dumps({"ts": T0, "values": {"width": "wide"}})),
        "non_finite": (topic, b'{"ts": %d, "values": {"width": NaN}}' % T0),
        "impossible_value": (topic, json.dumps({"ts": T0, "values": {"width": 5e7}})),
        "future_timestamp": (topic, json.dumps({"ts": NOW + 3600, "values": {"width": 1.0}})),
        "ancient_timestamp": (topic, json.dumps({"ts": "1999-12-31T23:59:59Z", "values": {"width": 1.0}})),
        "oversize": (topic, b'{"ts": 1, "values": {"width": 1}, "pad": "' + b"x" * 300_000 + b'"}'),
        "site_mismatch": (f"geowarn/v1/NOWHERE/{crack.id}/reading", json.dumps({"ts": T0, "values": {"width": 1}})),
    }
    with Publisher(mosquitto.url, "devices") as pub:
        for t, p in bad.values():
            pub.publish(*good())
            pub.publish(t, p)
        pub.publish(*good())
        assert pub.flush()
    n_good = len(bad) + 1
    assert wait_until(lambda: intake.stats.readings >= n_good and sum(intake.stats.quarantine.values()) >= len(bad))
    time.sleep(0.2)
    assert intake.stats.readings == n_good
    assert dict(intake.stats.quarantine) == {r: 1 for r in bad}
    summary = intake.journal.status_summary()
    assert summary["quarantine"] == dict(intake.stats.quarantine)
    rows = intake.journal.quarantine_rows(100)
    assert all(r["detail"] for r in rows)
    oversize = next(r for r in rows if r["reason"] == "oversize")
    assert "300" in oversize["detail"] and oversize["topic"] == topic


def test_redelivery_is_stored_once(intake, registry, mosquitto):
    dev = first(registry, "gnss")
    topic, payload = Native(registry).encode_readings(dev, T0, {"dx": 1, "dy": 1, "dz": 1})
    with Publisher(mosquitto.url, "devices") as pub:
        for _ in range(5):
            pub.publish(topic, payload)
        assert pub.flush()
    assert wait_until(lambda: intake.stats.messages >= 5)
    assert intake.journal.count_readings() == 4  # dx dy dz dh, once
    assert intake.stats.duplicates == 16


def _crack_messages(registry, n):
    """n single-reading native messages spread over the crack meters, oldest first."""
    cracks = [d for d in registry.devices if d.kind == "crack"]
    native = Native(registry)
    start = T0 - n * 60
    for i in range(n):
        dev = cracks[i % len(cracks)]
        yield native.encode_readings(dev, start + i * 60, {"width": round(i * 0.001, 3)}, seq=i)


def _start_service(url, state_dir, client_id="geowarn-svc"):
    cfg = state_dir.parent / "geowarn.yaml"
    cfg.write_text(f"registry: {__import__('geowarn.daemon.config', fromlist=['x']).default_config_path()}\n"
                   f"intake:\n  client_id: {client_id}\n")
    return subprocess.Popen([sys.executable, "-m", "geowarn.daemon.cli", "--log-level", "WARNING", "run",
                             "--config", str(cfg), "--broker", url, "--state-dir", str(state_dir)],
                            stdout=subprocess.DEVNULL, stderr=open(state_dir.parent / "service.log", "ab"))


def test_kill_9_while_publishing_loses_and_duplicates_nothing(mosquitto, registry, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    n = 20_000
    svc = _start_service(mosquitto.url, state)
    try:
        wait_subscribed(state, registry, mosquitto.url, T0)
        messages = list(_crack_messages(registry, n))
        pub = Publisher(mosquitto.url, "fleet").connect()
        thread = threading.Thread(target=lambda: [pub.publish(t, p) for t, p in messages])
        thread.start()
        assert wait_until(lambda: journal_count(state) > 4_000, timeout=60), "intake made no progress"
        svc.send_signal(signal.SIGKILL)
        svc.wait(10)
        killed_at = journal_count(state)
        thread.join()
        assert pub.flush(120)
        pub.close()
        assert killed_at < n + 1, "the kill came too late to prove anything"
        svc = _start_service(mosquitto.url, state)
        assert wait_until(lambda: journal_count(state) >= n + 1, timeout=120)
        time.sleep(1.0)  # anything extra would show up now
    finally:
        svc.send_signal(signal.SIGTERM)
        svc.wait(20)
    assert journal_count(state) == n + 1  # + the marker
    with Journal(state / "journal.sqlite") as j:
        values = sorted(v for ts, site, dev, kind, ch, v in j.export_rows() if kind == "crack")
    assert values == pytest.approx([round(i * 0.001, 3) for i in range(n)])


def test_broker_restart_mid_stream_loses_nothing(mosquitto, registry, intake):
    n = 6_000
    messages = list(_crack_messages(registry, n))
    pub = Publisher(mosquitto.url, "fleet").connect()
    for t, p in messages[: n // 2]:
        pub.publish(t, p)
    assert wait_until(lambda: intake.stats.readings > 500, timeout=30)
    mosquitto.restart()  # persistence on: queued messages for our session survive
    for t, p in messages[n // 2:]:
        pub.publish(t, p)
    assert pub.flush(120), "publisher never got its acknowledgements back"
    pub.close()
    assert wait_until(lambda: intake.journal.count_readings() >= n, timeout=60)
    assert intake.journal.count_readings() == n
    assert intake.stats.connected


def test_status_and_export_commands(intake, registry, mosquitto, tmp_path):
    with Publisher(mosquitto.url, "devices") as pub:
        for t, p in list(_crack_messages(registry, 30)):
            pub.publish(t, p)
        pub.publish("$dp", b"\x02\x00")
        assert pub.flush()
    assert wait_until(lambda: intake.stats.readings >= 30 and intake.stats.quarantine)
    state = str(tmp_path / "state")

    def geowarn(*args):
        r = subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", *args], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    status = json.loads(geowarn("status", "--state-dir", state, "--json"))
    assert status["readings_by_kind"] == {"crack": 30}
    assert status["quarantine"] == {"bad_framing": 1}
    assert len(status["devices"]) == 30 and all(d["last_reading"].endswith("Z") for d in status["devices"].values())
    rows = list(csv.reader(io.StringIO(geowarn("export", "--state-dir", state))))
    assert rows[0] == ["ts", "site", "device", "kind", "channel", "value"]
    assert len(rows) == 31 and rows[1][3:5] == ["crack", "width"] and rows[1][0].endswith("Z")
    site = rows[5][1]
    only = list(csv.reader(io.StringIO(geowarn("export", "--state-dir", state, "--site", site))))
    assert 1 < len(only) < 31 and {r[1] for r in only[1:]} == {site}
    since = list(csv.reader(io.StringIO(geowarn("export", "--state-dir", state, "--since", rows[11][0]))))
    assert len(since) == 21
    r = subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", "status", "--state-dir", str(tmp_path / "none")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no journal" in r.stderr and "Traceback" not in r.stderr


def test_a_blocked_journal_stops_acknowledgement_bounds_memory_and_loses_nothing(mosquitto, registry, tmp_path):
    import sqlite3

    path = tmp_path / "state" / "journal.sqlite"
    journal = Journal(path)
    settings = IntakeSettings(client_id="geowarn-blocked", receive_maximum=50, batch_max=20, batch_wait_ms=5)
    svc = Intake(registry, settings, journal, broker_url=mosquitto.url)
    svc.start()
    assert svc.wait_connected()
    time.sleep(0.2)
    blocker = sqlite3.connect(path, timeout=1)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database: every commit fails
    try:
        n = 2_000
        with Publisher(mosquitto.url, "fleet") as pub:
            for t, p in _crack_messages(registry, n):
                pub.publish(t, p)
            assert pub.flush(60)  # the broker took them all
            peak = 0
            deadline = time.monotonic() + 30
            while svc.stats.journal_errors == 0 and time.monotonic() < deadline:
                peak = max(peak, svc.queued)
                time.sleep(0.05)
        assert svc.stats.readings == 0 and svc.stats.messages == 0, "acknowledged without a journal"
        assert svc.stats.journal_errors >= 1 and "locked" in svc.stats.last_error
        assert 0 < peak <= settings.receive_maximum + settings.batch_max
    finally:
        blocker.rollback()
        blocker.close()
    assert wait_until(lambda: journal.count_readings() >= n, timeout=60)
    svc.stop()
    assert journal.count_readings() == n and svc.stats.last_error is None
    journal.close()


class _PoisonedJournal(Journal):
    """A real journal that cannot store one particular value (as an encoding bug would)."""

    def write(self, entry, now=None):
        if any(r.value == 13.13 for r, _ in entry.readings):
            raise ValueError("cannot store 13.13")
        return super().write(entry, now)


def test_a_message_the_journal_cannot_store_costs_that_message_only(mosquitto, registry, tmp_path):
    journal = _PoisonedJournal(tmp_path / "state" / "journal.sqlite")
    svc = Intake(registry, IntakeSettings(client_id="geowarn-poison", batch_wait_ms=50), journal,
                 broker_url=mosquitto.url)
    svc.start()
    assert svc.wait_connected()
    time.sleep(0.2)
    crack = first(registry, "crack")
    native = Native(registry)
    with Publisher(mosquitto.url, "devices") as pub:
        for i, value in enumerate((1.0, 2.0, 13.13, 3.0)):
            pub.publish(*native.encode_readings(crack, T0 + 60 * i, {"width": value}))
        assert pub.flush()
        assert wait_until(lambda: svc.stats.messages >= 4, timeout=20)
        pub.publish(*native.encode_readings(crack, T0 + 600, {"width": 4.0}))  # the writer still lives
        assert pub.flush()
    assert wait_until(lambda: journal.count_readings() >= 4, timeout=20)
    svc.stop()
    assert sorted(v for *_, v in journal.export_rows()) == [1.0, 2.0, 3.0, 4.0]
    (q,) = journal.quarantine_rows()
    assert q["reason"] == "decoder_error" and "13.13" in q["detail"] and "13.13" in q["payload"]
    journal.close()
