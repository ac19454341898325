"""Wire formats and sensor kinds, decoded without a broker."""
import json
import math

import pytest

from geowarn.drivers.base import Reason, Reading
from geowarn.drivers.formats.national import FRAME_DATA, FRAME_STATUS, Format as National, frame
from geowarn.drivers.formats.native import Format as Native
from geowarn.drivers.kinds import KINDS, kind_for_code
from geowarn.drivers.screen import screen
from geowarn.drivers.timestamps import parse_ts

TS = "2026-11-29T06:00:00.000Z"
T0 = parse_ts(TS)


def dp(body, frame_type=FRAME_DATA):
    return frame(frame_type, json.dumps(body).encode())


def by_channel(decoded):
    return {r.channel: r.value for r in decoded.readings}


@pytest.fixture
def national(registry):
    return National(registry)


@pytest.fixture
def native(registry):
    return Native(registry)


def first(registry, kind):
    return next(d for d in registry.devices if d.kind == kind)


@pytest.mark.parametrize("kind, sensor, raw, expected", [
    ("gnss", "L1_GP_1", {"gpsTotalX": 3.0, "gpsTotalY": 4.0, "gpsTotalZ": -2.5}, {"dx": 3, "dy": 4, "dz": -2.5, "dh": 5}),
    ("gnss", "L1_GP_1", "3,4,-2.5", {"dx": 3, "dy": 4, "dz": -2.5, "dh": 5}),
    ("crack", "L1_LF_1", {"value": 12.25}, {"width": 12.25}),
    ("crack", "L1_LF_1", 12.25, {"width": 12.25}),
    ("tilt", "L1_QJ_1", {"X": 0.12, "Y": -0.3, "Z": 89.9, "angle": 0.32, "AZI": 210.0},
     {"x": 0.12, "y": -0.3, "angle": 0.32, "azimuth": 210.0}),
    ("tilt", "L1_QJ_1", {"X": 0.12, "Y": -0.3, "trend": 15}, {"x": 0.12, "y": -0.3, "azimuth": 15.0}),
    ("tilt", "L1_QJ_1", "0.12,-0.3,89.9,0.32,210", {"x": 0.12, "y": -0.3, "angle": 0.32, "azimuth": 210.0}),
    ("pressure", "L2_YL_1", {"value": 182.5}, {"kpa": 182.5}),
    ("rain", "L3_YL_1", {"value": 2.5, "totalValue": 830.5}, {"mm": 2.5, "total": 830.5}),
    ("rain", "L3_YL_1", 0.5, {"mm": 0.5}),
])
def test_national_sensor_values_normalise(national, registry, kind, sensor, raw, expected):
    dev = first(registry, kind)
    d = national.decode("$dp", dp({dev.id: {sensor: {TS: raw}}}))
    assert not d.rejections, d.rejections
    assert by_channel(d) == pytest.approx(expected)
    assert {r.ts for r in d.readings} == {T0} and {r.kind for r in d.readings} == {kind}


def test_national_accel_and_several_timestamps(national, registry):
    dev = first(registry, "gnss")
    body = {dev.id: {"L1_JS_1": {TS: {"gX": 0.01, "gY": -0.02, "gZ": 0.99}},
                     "L1_GP_1": {"2026-11-29T04:00:00.000Z": "1,1,1", TS: "2,2,2"}}}
    d = national.decode("$dp", dp(body))
    assert len(d.readings) == 3 + 2 * 4
    assert {r.kind for r in d.readings} == {"accel", "gnss"}
    assert sorted({r.ts for r in d.readings if r.kind == "gnss"}) == [T0 - 7200, T0]


def test_national_status_frame(national, registry):
    dev = first(registry, "alarm")
    status = {"ext_power_volt": 12.1, "solar_volt": 18.2, "battery_dump_energy": 76, "temp": 21.5,
              "humidity": 80, "signal_4g": -85, "sw_version": "V2.1.3", "sound_state": 0, "pa_state": 1,
              "sensor_state": {"L1_QJ_1": 0, "L1_LF_1": -2}}
    d = national.decode("$dp", dp({dev.id: {"S1_ZT_1": {TS: status}}}, FRAME_STATUS))
    assert not d.rejections and not d.readings
    (s,) = d.statuses
    assert s.device == dev.id and s.ts == T0
    assert s.fields["battery_pct"] == 76 and s.fields["sensor_state"] == {"L1_QJ_1": 0, "L1_LF_1": -2}
    assert s.fields["sw_version"] == "V2.1.3" and s.fields["pa_state"] == 1


@pytest.mark.parametrize("payload, reason", [
    (b"\x02\x00", Reason.BAD_FRAMING),
    (b"\x02\x00\x10{}", Reason.BAD_LENGTH),
    (frame(7, b"{}"), Reason.UNKNOWN_FRAME_TYPE),
    (frame(2, b"\xff\xfe{"), Reason.INVALID_UTF8),
    (frame(2, b"{not json"), Reason.INVALID_JSON),
    (frame(2, b"[1,2]"), Reason.BAD_SCHEMA),
    (frame(2, json.dumps({"999999999999": {"L1_LF_1": {TS: 1}}}).encode()), Reason.UNKNOWN_DEVICE),
    (b"\x02" + (70000).to_bytes(3, "big")[1:] + b"x" * 70000, Reason.BAD_LENGTH),
    (b"\x02\xff\xff" + b"x" * 300_000, Reason.OVERSIZE),
])
def test_national_bad_frames_are_rejected_with_reason(national, payload, reason):
    d = national.decode("$dp", payload)
    assert not d.readings
    assert [r.reason for r in d.rejections] == [reason]


def test_national_bad_values_reject_only_themselves(national, registry):
    dev = first(registry, "crack")
    body = {dev.id: {"L1_LF_1": {TS: {"value": "abc"}, "2026-11-29T05:00:00Z": {"valu": 1},
                                 "yesterday": 1.0, "2026-11-29T04:00:00Z": 7.5},
                     "L9_XX_1": {TS: 1}}}
    d = national.decode("$dp", dp(body))
    assert [(r.channel, r.value) for r in d.readings] == [("width", 7.5)]
    assert sorted(r.reason for r in d.rejections) == sorted(
        [Reason.NON_NUMERIC, Reason.MISSING_VALUE, Reason.BAD_TIMESTAMP, Reason.UNKNOWN_SENSOR])


def test_command_encoding_and_reply(national, native):
    cmd = national.encode_command("broadcast", {"b_num": 1, "b_size": 8, "b_content": "撤离"}, "m1")
    assert cmd == b"$cmd=broadcast&b_num=1&b_size=8&b_content=" + "撤离".encode("gb2312") + b"&msgid=m1"
    assert national.command_topic("430321060001", "XTX001") == "$creq/430321060001/cmd"
    (rep,) = national.decode("$dr", b"$cmd=alarm&result=succ&msgid=m1").replies
    assert rep.ok and rep.command == "alarm" and rep.msgid == "m1"
    (rep,) = native.decode("geowarn/v1/S/D/cmd/reply", b'{"cmd":"alarm","result":"fail","msgid":"m2"}').replies
    assert not rep.ok and rep.device == "D"
    assert json.loads(native.encode_command("setworkmode", {"mode": 2}, "m3")) == {
        "cmd": "setworkmode", "params": {"mode": 2}, "msgid": "m3"}


@pytest.mark.parametrize("kind, values, expected", [
    ("gnss", {"dx": 3, "dy": 4, "dz": 1}, {"dx": 3, "dy": 4, "dz": 1, "dh": 5}),
    ("crack", {"width": 1.5}, {"width": 1.5}),
    ("tilt", {"x": 0.1, "y": 0.2, "azimuth": 30}, {"x": 0.1, "y": 0.2, "azimuth": 30}),
    ("rain", {"mm": 1.0}, {"mm": 1.0}),
    ("pressure", {"kpa": 99.5}, {"kpa": 99.5}),
])
def test_native_readings(native, registry, kind, values, expected):
    dev = first(registry, kind)
    topic, payload = native.encode_readings(dev, T0, values, seq=7)
    assert topic == f"geowarn/v1/{dev.site}/{dev.id}/reading"
    d = native.decode(topic, payload)
    assert not d.rejections
    assert by_channel(d) == pytest.approx(expected)
    assert {(r.ts, r.seq, r.site) for r in d.readings} == {(T0, 7, dev.site)}


@pytest.mark.parametrize("topic, payload, reason", [
    ("geowarn/v1/S/D/other", b"{}", Reason.UNKNOWN_TOPIC),
    ("geowarn/v1/XTX001/nope/reading", b'{"ts": 1, "values": {"width": 1}}', Reason.UNKNOWN_DEVICE),
    ("geowarn/v1/XTX001/430321020001/reading", b'{"ts": "soon", "values": {"width": 1}}', Reason.BAD_TIMESTAMP),
    ("geowarn/v1/XTX001/430321020001/reading", b'{"ts": 1800000000, "values": {}}', Reason.MISSING_VALUE),
    ("geowarn/v1/XTX001/430321020001/reading", b'{"ts": 1800000000, "values": {"width": "x"}}', Reason.NON_NUMERIC),
    ("geowarn/v1/XTX001/430321020001/reading", b'{"ts": true, "values": {"width": 1}}', Reason.BAD_TIMESTAMP),
    ("geowarn/v1/XTX001/430321020001/reading", b'"hello"', Reason.BAD_SCHEMA),
])
def test_native_bad_messages(native, topic, payload, reason):
    d = native.decode(topic, payload)
    assert not d.readings and [r.reason for r in d.rejections] == [reason]


def test_screen_checks_every_reading_the_same_way(registry):
    crack = first(registry, "crack")
    now = T0 + 60
    ok = Reading(crack.id, "crack", "width", T0, 1.0)
    cases = {
        Reason.UNKNOWN_DEVICE: Reading("ghost", "crack", "width", T0, 1.0),
        Reason.SITE_MISMATCH: Reading(crack.id, "crack", "width", T0, 1.0, site="ELSEWHERE"),
        Reason.NON_FINITE: Reading(crack.id, "crack", "width", T0, math.nan),
        Reason.IMPOSSIBLE_VALUE: Reading(crack.id, "crack", "width", T0, 1e9),
        Reason.FUTURE_TIMESTAMP: Reading(crack.id, "crack", "width", now + 601, 1.0),
        Reason.ANCIENT_TIMESTAMP: Reading(crack.id, "crack", "width", 900_000_000.0, 1.0),
    }
    accepted, rejected = screen([ok, *cases.values()], registry, now)
    assert accepted == [ok]
    assert [r.reason for r in rejected] == list(cases)
    assert "600" not in rejected[4].detail and "ahead" in rejected[4].detail


def test_every_kind_has_limits_for_its_channels():
    for kind in KINDS.values():
        assert set(kind.limits) == set(kind.channels), kind.name
        for code in kind.codes:
            assert kind_for_code(code + "_1") is kind
