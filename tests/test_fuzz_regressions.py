"""Inputs the fuzz suite found crashing or slipping through, pinned: each once escaped as an
exception (or, worse, decoded into something the journal could not store, which stopped the
intake's writer thread for good)."""
from __future__ import annotations

import time
from collections import Counter

import pytest

from geowarn.daemon.config import ConfigError, load_config
from geowarn.daemon.intake import decode_message
from geowarn.daemon.journal import Entry, Journal, Quarantined
from geowarn.daemon.replay import read_rows
from geowarn.drivers.base import Reason
from geowarn.drivers.formats import load_formats
from geowarn.drivers.formats.national import Format as National, frame
from geowarn.drivers.formats.native import Format as Native
from geowarn.drivers.screen import ScreenLimits

registry = load_config().registry
CRACK = next(d for d in registry.devices if d.kind == "crack")
NATIVE_READING = f"geowarn/v1/{CRACK.site}/{CRACK.id}/reading"
NATIVE_STATUS = f"geowarn/v1/{CRACK.site}/{CRACK.id}/status"
NATIVE_REPLY = f"geowarn/v1/{CRACK.site}/{CRACK.id}/cmd/reply"
DEV = CRACK.id.encode()


def dp(body: bytes, frame_type: int = 2) -> bytes:
    return frame(frame_type, body)


def through_intake(topic: str, payload: bytes, journal: Journal):
    """Decode, screen and journal one message exactly as the intake's writer does."""
    decoded, accepted = decode_message(topic, payload, load_formats(registry), registry, time.time(), ScreenLimits())
    journal.write(Entry(readings=[(r, CRACK.site) for r in accepted], statuses=decoded.statuses,
                        replies=decoded.replies,
                        quarantined=[Quarantined(topic, payload, rej) for rej in decoded.rejections]))
    return decoded, accepted


CASES = {
    # an integer literal no float holds: OverflowError from float()
    "huge integer value": ("$dp", dp(b'{"%s": {"L1_LF_1": {"2020-07-20T08:00:00Z": 1%s}}}' % (DEV, b"0" * 400)),
                           Reason.IMPOSSIBLE_VALUE),
    "huge integer native value": (NATIVE_READING, b'{"ts": 1, "values": {"width": 1%s}}' % (b"0" * 400),
                                  Reason.IMPOSSIBLE_VALUE),
    "huge integer timestamp": (NATIVE_READING, b'{"ts": 1%s, "values": {"width": 1}}' % (b"0" * 400),
                               Reason.BAD_TIMESTAMP),
    # beyond the interpreter's 4300-digit limit: a ValueError that is not a JSONDecodeError
    "integer past the parsing limit": (NATIVE_READING, b'{"ts": 1, "values": {"width": %s}}' % (b"9" * 5000),
                                       Reason.INVALID_JSON),
    # json accepts unpaired surrogate escapes; sqlite cannot encode them: the writer thread died
    "unpaired surrogate device id": ("$dp", dp(b'{"\\ud800": {}}'), Reason.INVALID_UTF8),
    "unpaired surrogate in status": ("$dp", dp(b'{"%s": {"S1_ZT_1": {"2020-07-20T08:00:00Z": {"sw_version": "\\udc00"}}}}'
                                               % DEV, 1), Reason.INVALID_UTF8),
    "unpaired surrogate msgid": (NATIVE_REPLY, b'{"cmd": "alarm", "msgid": "\\ud800"}', Reason.INVALID_UTF8),
    # a status time beyond SQLite's integers: OverflowError in the journal, the writer thread died
    "status from the far future": (NATIVE_STATUS, b'{"ts": 1e300, "status": {"battery_pct": 50}}',
                                   Reason.FUTURE_TIMESTAMP),
    "status from before 2000": (NATIVE_STATUS, b'{"ts": -1e300, "status": {}}', Reason.ANCIENT_TIMESTAMP),
    "status with a huge integer field": (
        NATIVE_STATUS, b'{"ts": %d, "status": {"battery_pct": 1%s}}' % (time.time(), b"0" * 400), None),
    # frames that carried nothing used to vanish without a trace
    "device with no sensors": ("$dp", dp(b'{"%s": {}}' % DEV), Reason.MISSING_VALUE),
    "sensor with no timestamps": ("$dp", dp(b'{"%s": {"L1_LF_1": {}}}' % DEV), Reason.MISSING_VALUE),
}


@pytest.mark.parametrize("name", CASES)
def test_wire_regressions_are_quarantined_and_journal_safely(name, tmp_path):
    topic, payload, reason = CASES[name]
    fmt = National(registry) if topic.startswith("$") else Native(registry)
    fmt.decode(topic, payload)  # raised before
    with Journal(tmp_path / "j.sqlite", "normal") as journal:
        decoded, accepted = through_intake(topic, payload, journal)
        assert journal.count_readings() == 0
    reasons = [r.reason for r in decoded.rejections]
    if reason is None:  # an advisory status field that makes no sense is dropped, the status kept
        assert reasons == [] and decoded.statuses and "battery_pct" not in decoded.statuses[0].fields
    else:
        assert reasons == [reason], decoded.rejections


def test_paired_surrogate_escapes_are_fine(tmp_path):
    payload = b'{"cmd": "alarm", "result": "succ", "msgid": "\\ud83d\\ude00"}'
    with Journal(tmp_path / "j.sqlite", "normal") as journal:
        decoded, _ = through_intake(NATIVE_REPLY, payload, journal)
    assert decoded.rejections == [] and decoded.replies[0].msgid == "\U0001F600"


@pytest.mark.parametrize("data, line", [
    (b"ts,site,device,kind,channel,value\n1,S1,d1,crack,width,1\n\xff\xfe,S1\n", 3),  # invalid UTF-8
    (b'ts,site,device,kind,channel,value\n1,S1,d1,crack,width,"' + b"9" * 140_000 + b'"\n', 2),  # csv field limit
])
def test_replay_reader_reports_unreadable_csv_as_config_error(tmp_path, data, line):
    path = tmp_path / "r.csv"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as e:
        read_rows(path, Counter())
    assert e.value.file == str(path) and e.value.line == line


@pytest.mark.parametrize("text", [
    "sites:\n- id: a\n  name: 2020-13-45\n",  # YAML resolves it as a date, the constructor raises ValueError
    "sites: 2020-02-30\n",
    'registry: "a\\0b"\n',  # a NUL in the registry path: ValueError from the file system call
    "sites: !!timestamp 2020-99-99\n",  # PyYAML's timestamp constructor: AttributeError
])
def test_config_loader_reports_bad_yaml_as_config_error(tmp_path, text):
    path = tmp_path / "geowarn.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert e.value.file.startswith(str(tmp_path)) and "Traceback" not in str(e.value)


@pytest.mark.parametrize("site_file, place", [
    ("kinds: [1]\n", "kinds"),  # AttributeError: 'list' object has no attribute 'items'
    ("devices: [1]\n", "devices"),
    ("kinds: {gnss: [1]}\n", "kinds.gnss"),  # was reported as kinds.gnss.kinds.gnss
    ("kinds: {gnss: {threshold: {rate: {blue: .nan}}}}\n", "kinds.gnss.threshold.rate.blue"),  # NaN: never fires
])
def test_rules_loader_reports_bad_site_overrides_with_their_place(tmp_path, site_file, place):
    import shutil

    from geowarn.daemon.rules import default_rules_dir, load_rules

    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules)
    (rules / "sites" / "XTX001.yaml").write_text(site_file)
    with pytest.raises(ConfigError) as e:
        load_rules(rules)
    assert e.value.file == str(rules / "sites" / "XTX001.yaml") and e.value.place == place and e.value.line == 1
