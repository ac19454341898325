"""InfluxDB export against a real VictoriaMetrics (Debian's victoria-metrics speaks the InfluxDB
v2 write API) started on a free port per test. /api/v1/export returns raw samples, duplicates
included, so "exactly once" is checked for real."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from geowarn.daemon.config import ConfigError, InfluxSettings, default_config_path, load_config
from geowarn.daemon.influx_export import EventRow, InfluxExporter, export_events, resolve_token
from geowarn.daemon.journal import Entry, Journal, Quarantined, prune_journal
from geowarn.drivers.base import DeviceStatus, Reading, Rejection
from geowarn.simulators.journal_fill import fill
from geowarn.simulators.local_victoria import VictoriaMetrics

REG = load_config().registry
START = time.time() - 86400  # inside VictoriaMetrics' default one-month retention


@pytest.fixture
def vm(tmp_path):
    v = VictoriaMetrics(workdir=tmp_path / "vm")
    v.start()
    yield v
    v.close()


@pytest.fixture
def jpath(tmp_path) -> Path:
    return tmp_path / "state" / "journal.sqlite"


def settings(vm: VictoriaMetrics, **kw) -> InfluxSettings:
    base = dict(url=vm.url, batch_size=2000, backoff_initial_s=0.02, backoff_max_s=0.2, poll_s=0.02, timeout_s=5)
    return InfluxSettings(**(base | kw))


def wait_for(cond, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


def assert_readings_exactly_once(vm: VictoriaMetrics, journal_path: Path, n: int) -> None:
    """Every journal reading is one sample in the database: right tags, value and timestamp."""
    with Journal(journal_path) as j:
        expected = {(dev, ch, round(ts * 1000)): (site, kind, v) for ts, site, dev, kind, ch, v in j.export_rows()}
    assert len(expected) == n
    rows = vm.export_until('{__name__=~"reading_.+"}', n)
    seen: Counter = Counter()
    for r in rows:
        m = r["metric"]
        channel = m["__name__"].removeprefix("reading_")
        dev = REG.device(m["device"])
        assert m == {"__name__": m["__name__"], "site": dev.site, "device": dev.id, "kind": dev.kind,
                     "county": REG.site(dev.site).county}
        for ts, v in zip(r["timestamps"], r["values"]):
            key = (m["device"], channel, ts)
            seen[key] += 1
            assert key in expected, f"not in the journal: {key}"
            assert v == expected[key][2], key
    dupes = [k for k, c in seen.items() if c > 1]
    assert not dupes, f"{len(dupes)} readings written more than once, e.g. {dupes[:3]}"
    missing = expected.keys() - seen.keys()
    assert not missing, f"{len(missing)} readings missing, e.g. {sorted(missing)[:3]}"


def cursor_of(journal_path: Path, stream: str) -> int:
    with sqlite3.connect(journal_path) as db:
        try:
            row = db.execute("SELECT rowid FROM export_cursor WHERE stream = ?", (stream,)).fetchone()
        except sqlite3.OperationalError:  # the exporter has not created its table yet
            return 0
    return row[0] if row else 0


def test_outage_costs_delay_not_data_50k_readings(vm, jpath):
    journal = Journal(jpath, "normal")
    ex = InfluxExporter(jpath, settings(vm), REG, read_ahead=2)  # pages read ahead when the outage hits
    stop = threading.Event()
    runner = threading.Thread(target=ex.run, args=(stop,))
    runner.start()
    try:
        fill(journal, REG, 10_000, START)
        wait_for(lambda: ex.backlog()["readings"] == 0, "the first 10,000 exported")
        vm.stop()
        fill(journal, REG, 20_000, START, first=10_000)  # while the database is down
        wait_for(lambda: ex.stats.failures >= 3, "failed attempts during the outage")
        assert ex.backlog()["readings"] == 20_000  # the cursor waits for a confirmed write
        assert "Connection refused" in (ex.stats.last_error or "") or "NewConnectionError" in ex.stats.last_error
        vm.start()
        fill(journal, REG, 20_000, START, first=30_000)  # still flowing as it comes back
        wait_for(lambda: ex.backlog()["readings"] == 0 and ex.stats.failures == 0, "the backlog drained")
    finally:
        stop.set()
        runner.join(30)
        ex.close()
        journal.close()
    assert not runner.is_alive()
    assert ex.stats.quarantined == 0
    assert_readings_exactly_once(vm, jpath, 50_000)


def _config(tmp_path: Path, vm: VictoriaMetrics, extra: str = "") -> Path:
    cfg = tmp_path / "geowarn.yaml"
    cfg.write_text(f"registry: {default_config_path()}\n"
                   "journal: {synchronous: normal}\n"
                   f"influx: {{url: '{vm.url}', batch_size: 1000, backoff_initial_s: 0.02, backoff_max_s: 0.2,"
                   f" poll_s: 0.02, timeout_s: 5}}\n{extra}")
    return cfg


def _geowarn(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geowarn.daemon.cli", *args], capture_output=True, text=True,
                          timeout=120, **kw)


def test_exporter_restarted_mid_outage_loses_nothing(vm, tmp_path, jpath):
    cfg = _config(tmp_path, vm)
    state = str(jpath.parent)
    journal = Journal(jpath, "normal")
    fill(journal, REG, 5000, START)
    log = tmp_path / "export.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "geowarn.daemon.cli", "export-influx",
                                 "--state-dir", state, "--config", str(cfg)], stderr=err)
    try:
        wait_for(lambda: cursor_of(jpath, "readings") == 5000, "the exporter process to catch up")
        vm.stop()
        fill(journal, REG, 10_000, START, first=5000)
        wait_for(lambda: "InfluxDB write failed" in log.read_text(), "the exporter to meet the outage")
        proc.send_signal(signal.SIGKILL)  # a crash, in the middle of the outage
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert cursor_of(jpath, "readings") == 5000

    # geowarn comes back while the database is still down: nothing goes, nothing is lost
    fill(journal, REG, 5000, START, first=15_000)
    r = _geowarn("export-influx", "--state-dir", state, "--config", str(cfg), "--once")
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert out["points"] == 0 and out["backlog"]["readings"] == 15_000 and out["error"]

    vm.start()
    r = _geowarn("export-influx", "--state-dir", state, "--config", str(cfg), "--once")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["backlog"] == {"readings": 0, "statuses": 0, "quarantine": 0, "events": 0}
    assert out["error"] is None and out["quarantined"] == 0
    journal.close()
    assert_readings_exactly_once(vm, jpath, 20_000)


def test_rejected_point_is_quarantined_and_the_rest_of_its_batch_lands(vm, jpath):
    journal = Journal(jpath, "normal")
    fill(journal, REG, 500, START)
    t0 = time.time() - 3600
    # far longer than a line may be (VictoriaMetrics: 256 KiB, enforced once its read buffer
    # has grown past that without a newline, hence 1 MB). First in its batch: VictoriaMetrics,
    # like InfluxDB's partial write, keeps the lines before a bad one, and a good line re-sent
    # by the bisection would show as a duplicate here (InfluxDB overwrites it).
    export_events(jpath, "alert", [EventRow(t0, {"site": "XTX001", "level": "red"},
                                            {"level_code": 3, "reason": "x" * 1_000_000})])
    good = [EventRow(t0 + i, {"site": "XTX002", "level": "yellow"}, {"level_code": float(i)}) for i in range(40)]
    export_events(jpath, "alert", good[:20])
    with sqlite3.connect(jpath) as db:  # a row some buggy module wrote behind export_events' back
        db.execute("INSERT INTO export_events (measurement, tags, fields, ts_ms, created_ms) VALUES (?,?,?,?,?)",
                   ("alert", '{"site": "XTX003"}', '{"level_code": NaN}', int(t0 * 1000), 0))
    export_events(jpath, "alert", good[20:])

    with InfluxExporter(jpath, settings(vm, batch_size=1000), REG) as ex:
        written = ex.run_once()
        assert ex.backlog() == {"readings": 0, "statuses": 0, "quarantine": 0, "events": 0}
        bad = sorted(ex.quarantined(), key=lambda q: q["source_rowid"])
        assert [q["stream"] for q in bad] == ["events", "events"]
        assert bad[0]["reason"].startswith("HTTP 400") and "too long line" in bad[0]["reason"]
        assert bad[0]["line"].startswith("alert,level=red,site=XTX001 ")
        assert "non-finite" in bad[1]["reason"]
        assert ex.stats.quarantined == 2
        assert ex.run_once() == 0  # quarantined points are not retried forever
    assert written == ex.stats.points
    rows = vm.export_until('{__name__="alert_level_code"}', 40)
    assert [r["metric"] for r in rows] == [{"__name__": "alert_level_code", "site": "XTX002", "level": "yellow"}]
    assert rows[0]["timestamps"] == [round((t0 + i) * 1000) for i in range(40)]
    assert rows[0]["values"] == [float(i) for i in range(40)]
    journal.close()
    assert_readings_exactly_once(vm, jpath, 500)


def test_statuses_and_journal_quarantine_are_exported(vm, jpath):
    tilt = next(d for d in REG.devices if d.kind == "tilt")
    alarm = next(d for d in REG.devices if d.kind == "alarm")
    ts = time.time() - 600
    entry = Entry(
        statuses=[DeviceStatus(tilt.id, ts, {"battery_pct": 87, "temp_c": 21.5, "sw_version": 2.1,
                                             "sensor_state": {"L1_QJ_1": -2}}),
                  DeviceStatus(alarm.id, ts, {"battery_pct": 55.0, "sound_state": "ok"})],
        quarantined=[Quarantined("$dp", b"\x00", Rejection("bad_framing", "short", tilt.id)),
                     Quarantined("$dp", b"\x00", Rejection("bad_framing", "short", tilt.id)),
                     Quarantined("$dp", b"{}", Rejection("unknown_device", "who?", "999999999999"))])
    with Journal(jpath, "normal") as j:
        j.write(entry, now=ts)
    with InfluxExporter(jpath, settings(vm), REG) as ex:
        assert ex.run_once() == 4  # 2 statuses, 2 (reason, device) quarantine counts
    county = REG.site(tilt.site).county
    rows = {(r["metric"]["__name__"], r["metric"].get("device")): r
            for r in vm.export_until('{__name__=~"(device_status|quarantine)_.+"}', 6)}
    r = rows[("device_status_battery_pct", tilt.id)]
    assert r["metric"] == {"__name__": "device_status_battery_pct", "site": tilt.site, "device": tilt.id,
                           "kind": "tilt", "county": county}
    assert r["values"] == [87] and r["timestamps"] == [round(ts * 1000)]
    assert rows[("device_status_sensor_state_L1_QJ_1", tilt.id)]["values"] == [-2]
    assert rows[("device_status_battery_pct", alarm.id)]["metric"]["kind"] == "alarm"
    q = rows[("quarantine_count", tilt.id)]
    assert q["metric"]["reason"] == "bad_framing" and q["values"] == [2]
    unknown = rows[("quarantine_count", None)]  # an unknown id never becomes a tag
    assert unknown["metric"] == {"__name__": "quarantine_count", "reason": "unknown_device"}
    assert unknown["values"] == [1]


def test_retention_never_prunes_what_is_not_exported(vm, jpath):
    old = time.time() - 10 * 86400
    with Journal(jpath, "normal") as j:
        fill(j, REG, 3000, START, now=old)  # received ten days ago
    with InfluxExporter(jpath, settings(vm, batch_size=1000), REG) as ex:
        def prune() -> dict:  # as the service's retention does: behind what the server confirmed
            return prune_journal(jpath, 1, cursors=ex.cursors())

        ex.run_once(max_batches=1)  # the first page: part of the readings
        exported = cursor_of(jpath, "readings")
        assert 0 < exported <= 1000
        vm.stop()
        assert ex.run_once() == 0 and ex.stats.failures == 1
        assert prune() == {"readings": exported}  # only what the server has
        with sqlite3.connect(jpath) as db:
            assert db.execute("SELECT MIN(rowid), COUNT(*) FROM readings").fetchone() == (exported + 1, 3000 - exported)
        vm.start()
        ex.run_once()
        assert ex.backlog()["readings"] == 0
        assert prune() == {"readings": 3000 - exported - 1}  # the newest row stays: rowids are never reused
        with Journal(jpath, "normal") as j:
            fill(j, REG, 100, START + 86400 / 2, first=3000)  # received now: kept, and exported
        ex.run_once()
        assert ex.backlog()["readings"] == 0
        assert prune() == {"readings": 1}  # the old newest row, no longer the newest
    rows = vm.export_until('{__name__=~"reading_.+"}', 3100)
    assert sum(len(r["timestamps"]) for r in rows) == 3100
    assert all(len(set(r["timestamps"])) == len(r["timestamps"]) for r in rows)


def test_without_influx_the_journal_alone_prunes_by_age(jpath):
    with Journal(jpath, "normal") as j:
        fill(j, REG, 300, START, now=time.time() - 5 * 86400)
        fill(j, REG, 200, START, first=300)
    assert prune_journal(jpath, 3, cursors={}) == {}  # as if InfluxDB were configured: none exported
    assert prune_journal(jpath, 3) == {"readings": 300}
    with Journal(jpath) as j:
        assert j.count_readings() == 200


def test_influx_config_section_and_token(tmp_path, monkeypatch):
    tok = tmp_path / "influx.token"
    tok.write_text("# InfluxDB API token\ns3cret\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"registry: {default_config_path()}\n"
                   "influx:\n  url: http://127.0.0.1:8086\n  org: xt\n  token_file: influx.token\n")
    influx = load_config(cfg).settings.influx
    assert (influx.org, influx.bucket, influx.batch_size) == ("xt", "geowarn", 5000)
    assert resolve_token(influx, cfg.parent) == "s3cret"
    monkeypatch.setenv("GEOWARN_INFLUX_TOKEN", "from-env")
    assert resolve_token(InfluxSettings(url="http://x:1"), None) == "from-env"
    with pytest.raises(ConfigError, match="cannot read"):
        resolve_token(InfluxSettings(url="http://x:1", token_file=str(tmp_path / "none")))
    cfg.write_text(f"registry: {default_config_path()}\ninflux:\n  url: influx.example:8086\n")
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert e.value.place == "influx.url" and e.value.line == 3
    assert load_config().settings.influx is None


def test_cli_without_influx_section_says_so(tmp_path):
    r = _geowarn("export-influx", "--state-dir", str(tmp_path))
    assert r.returncode == 2 and "no `influx:` section" in r.stderr and "Traceback" not in r.stderr


def test_events_refuse_ids_as_tags_and_bad_values(jpath):
    Journal(jpath).close()
    with pytest.raises(ValueError, match="alert_id"):
        export_events(jpath, "alert", [EventRow(0.0, {"alert_id": "42"}, {"level": 3})])
    with pytest.raises(ValueError, match="non-finite"):
        export_events(jpath, "alert", [EventRow(0.0, {"site": "XTX001"}, {"level": float("inf")})])
    with pytest.raises(ValueError, match="measurement"):
        export_events(jpath, "bad name", [EventRow(0.0, {}, {"level": 1})])
    conn = sqlite3.connect(jpath)  # with a connection, events join the caller's transaction
    conn.execute("CREATE TABLE alert_state (site TEXT)")
    conn.commit()
    conn.execute("INSERT INTO alert_state VALUES ('XTX001')")
    export_events(conn, "alert", [EventRow(0.0, {"site": "XTX001"}, {"level": 3})])
    conn.rollback()
    export_events(conn, "alert", [EventRow(1.0, {"site": "XTX002"}, {"level": 2})])
    conn.commit()
    conn.close()
    with InfluxExporter(jpath, InfluxSettings(url="http://127.0.0.1:9")) as ex:  # never posts here
        assert ex.backlog()["events"] == 1


def test_extreme_readings_land_bit_exact_and_unwritable_ones_are_quarantined(vm, jpath):
    gnss = next(d for d in REG.devices if d.kind == "gnss")
    ts = time.time() - 600
    # dx..dh at one instant: SQLite formats the ordinary values, Python's repr the ones beyond
    # printf's exact range; inf cannot be written at all
    values = {"dx": 11.503, "dy": 0.1 + 0.2, "dz": 1e300, "dh": -2.5e-200}
    entry = Entry(readings=[(Reading(gnss.id, "gnss", ch, ts, v), gnss.site) for ch, v in values.items()]
                  + [(Reading(gnss.id, "gnss", "dx", ts + 60, float("inf")), gnss.site),
                     (Reading(gnss.id, "gnss", "dy", ts + 60, -7.25), gnss.site)])
    with Journal(jpath, "normal") as j:
        j.write(entry, now=ts)
    with sqlite3.connect(jpath) as db:  # a row whose series is gone (a hand-edited journal)
        db.execute("INSERT INTO readings (series, ts_ms, value, received_ms) VALUES (9999, 1, 1.0, 1)")
    with InfluxExporter(jpath, settings(vm), REG) as ex:
        page = ex._page_readings(0, 100)
        sent = page.body.decode().split("\n")
        # what a rejected batch is bisected over is exactly what was sent
        assert sorted(sent) == sorted(text for text, _ in page.lines())
        assert len(sent) == page.points == 5  # a line per reading: dx..dh, then dy (inf quarantined)
        assert {reason.split(" ")[0] for _, reason, _ in page.bad} == {"unknown", "non-finite"}
        fields = [line.split(" ")[1].split("=") for line in sent]
        # every double round-trips through its text (VictoriaMetrics itself keeps ~15 digits)
        assert sorted((ch, float(text)) for ch, text in fields) == sorted([*values.items(), ("dy", -7.25)])
        assert ex.run_once() == 5
        assert ex.stats.quarantined == 2 and ex.backlog()["readings"] == 0
    got = {r["metric"]["__name__"].removeprefix("reading_"): r for r in vm.export_until('{__name__=~"reading_.+"}', 5)}
    for ch, v in values.items():
        assert got[ch]["values"][0] == pytest.approx(v, rel=1e-12), ch
        assert got[ch]["timestamps"][0] == round(ts * 1000)
    assert got["dy"]["values"][1] == -7.25 and len(got["dx"]["values"]) == 1  # inf was not sent


def test_a_page_aggregated_out_of_order_is_formatted_line_by_line(jpath):
    """The page body takes its first line's prefix from the first row by rowid; were SQLite to
    aggregate the rows in another order, that prefix would tag the wrong reading. The check
    notices and makes the lines one by one."""
    with Journal(jpath, "normal") as j:
        fill(j, REG, 300, START)
    with InfluxExporter(jpath, InfluxSettings(url="http://127.0.0.1:9"), REG, read_ahead=0) as ex:
        in_order = ex._page_readings(0, 1000)
        expected = sorted(text for text, _ in in_order.lines())
        ex._reader().execute("PRAGMA reverse_unordered_selects = ON")  # scans run backwards now
        reversed_scan = ex._page_readings(0, 1000)
    assert len(expected) == in_order.points == 300
    assert sorted(in_order.body.decode().split("\n")) == expected
    assert sorted(reversed_scan.body.decode().split("\n")) == expected


def test_a_rejected_reading_is_bisected_out_of_its_page_and_the_rest_lands_once(vm, jpath):
    gnss = next(d for d in REG.devices if d.kind == "gnss")
    with Journal(jpath, "normal") as j:
        with sqlite3.connect(jpath) as db:  # a channel name far longer than a line may be (see above)
            db.execute("INSERT INTO series (id, site, device, kind, channel) VALUES (9000, ?, ?, 'gnss', ?)",
                       (gnss.site, gnss.id, "x" * 1_000_000))
            # the journal's first reading, so its line comes first in the page's body
            db.execute("INSERT INTO readings (series, ts_ms, value, received_ms) VALUES (9000, ?, 1.5, 0)",
                       (round(START * 1000) - 60_000,))
        fill(j, REG, 500, START)
    with InfluxExporter(jpath, settings(vm), REG) as ex:
        written = ex.run_once()
        assert ex.backlog()["readings"] == 0 and ex.stats.failures == 0
        (bad,) = ex.quarantined()
        assert (bad["stream"], bad["source_rowid"]) == ("readings", 1)
        assert bad["reason"].startswith("HTTP 400") and bad["line"].startswith("reading,county=")
    rows = vm.export_until('{__name__=~"reading_.+"}', 500)
    samples = [(r["metric"]["__name__"], r["metric"]["device"], ts) for r in rows for ts in r["timestamps"]]
    assert len(samples) == len(set(samples)) == 500  # every good reading, once
    assert written == ex.stats.points and ex.stats.quarantined == 1
