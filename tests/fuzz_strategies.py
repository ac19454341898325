"""Hypothesis strategies for hostile input: wire frames that are almost right.

Cheap by design (flat choices, small collections): the fuzz suite runs > 100,000 cases in a
CI-sized minute. JSON documents are built as Python values and serialised, then markers are
swapped for literals Python's json never writes (huge integers, 1e999, NaN/Infinity).
"""
from __future__ import annotations

import json

from hypothesis import strategies as st

from geowarn.drivers.formats.native import PREFIX
from geowarn.drivers.formats.national import frame
from geowarn.drivers.kinds import KINDS
from geowarn.drivers.timestamps import format_ts

# literals spliced into serialised JSON in place of their marker strings
RAW_LITERALS = {
    "@BIGINT@": "1" + "0" * 400,  # parses as a Python int no float can hold
    "@HUGEINT@": "9" * 5000,  # beyond the interpreter's int-parsing limit
    "@BIGEXP@": "1e999",  # parses as inf
    "@NEGEXP@": "-1e400",
    "@NAN@": "NaN",
    "@INF@": "Infinity",
    "@NINF@": "-Infinity",
    "@TINY@": "5e-324",
    "@NEGZERO@": "-0.0",
}
SENSOR_CODES = [c for k in KINDS.values() for c in k.codes]
CHANNELS = sorted({ch for k in KINDS.values() for ch in k.channels})
NATIONAL_KEYS = ["value", "totalValue", "gpsTotalX", "gpsTotalY", "gpsTotalZ", "X", "Y", "Z", "angle", "AZI",
                 "trend", "gX", "gY", "gZ", "battery_dump_energy", "temp", "sw_version", "sensor_state",
                 "sound_state", "lon", "lat"]

# lone UTF-16 surrogates survive json.dumps as \ud800 escapes: JSON parses them, UTF-8 cannot hold them
short_text = st.one_of(st.text(max_size=8), st.sampled_from(["\ud800", "a\udfff", "\ud83d\ude00", "\x00", "é/+#"]))
numbers = st.one_of(
    st.integers(-10**6, 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from([0, -1, 1e308, -1e308, 1e15, 2**63, -2**63 - 1, 7.5e-300]),
)
raw_literal = st.sampled_from(sorted(RAW_LITERALS))
numeric_text = st.one_of(
    st.sampled_from(["1.5", " 2 ", "nan", "inf", "-Infinity", "1e400", "0x10", "1_000", "", ",", "1,2",
                     "1,2,3,4,5", ",,,", "1,,3", "a,b", "1;2"]),
    numbers.map(str),
)
scalar = st.one_of(st.none(), st.booleans(), numbers, raw_literal, numeric_text, short_text)


def junk(depth: int = 2) -> st.SearchStrategy:
    """Any JSON value, biased to what the decoders look for."""
    if depth == 0:
        return scalar
    inner = junk(depth - 1)
    return st.one_of(
        scalar,
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(NATIONAL_KEYS + CHANNELS), short_text), inner, max_size=4),
    )


value_junk = junk(2)

timestamps = st.one_of(
    st.integers(946_684_800, 2_000_000_000).map(lambda t: format_ts(float(t))),
    st.sampled_from(["2020-07-20T08:00:00.000Z", "2020-07-20T08:00:00", "2020-07-20 08:00:00+08:00",
                     "2020-02-30T00:00:00Z", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-14:00",
                     "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "", " ", "NaN", "1e300", "now",
                     "2020-07-20T25:00:00Z", "2020-07-20T08:00:00+24:00", "20200720T080000Z", "2020-W30-1",
                     "\u0662\u0660\u0662\u0660-07-20"]),
    short_text,
)
# numeric and odd timestamps as native `ts` values (national ts are object keys: always strings)
native_ts = st.one_of(timestamps, st.none(), st.booleans(), numbers, raw_literal, st.lists(numbers, max_size=2))


def dump(doc) -> bytes:
    text = json.dumps(doc, allow_nan=True)
    for marker, literal in RAW_LITERALS.items():
        text = text.replace(f'"{marker}"', literal)
    return text.encode()


@st.composite
def national_frames(draw, device_ids: list[str]) -> bytes:
    """A `$dp` frame of the right outline with wrong insides: devices known and unknown, sensor
    codes real and invented, timestamps odd, values of every shape; sometimes a bad header."""
    devices = st.one_of(st.sampled_from(device_ids), short_text)
    sensor = st.one_of(st.sampled_from(SENSOR_CODES).map(lambda c: f"{c}_1"), st.sampled_from(SENSOR_CODES),
                       st.just("S1_ZT_1"), short_text)
    series = st.one_of(st.dictionaries(timestamps, value_junk, max_size=3), value_junk)
    doc = draw(st.one_of(
        st.dictionaries(devices, st.one_of(st.dictionaries(sensor, series, max_size=3), value_junk), max_size=3),
        value_junk,
    ))
    body = dump(doc)
    frame_type = draw(st.one_of(st.sampled_from([1, 2, 2, 2]), st.integers(0, 255)))
    built = frame(frame_type, body[:65535])
    shape = draw(st.integers(0, 9))
    if shape == 0:  # the header lies about the length
        delta = draw(st.integers(-3, 3))
        built = built[:1] + max(0, min(65535, len(body) + delta)).to_bytes(2, "big") + built[3:]
    elif shape == 1:  # truncated
        built = built[: draw(st.integers(0, len(built)))]
    return built


@st.composite
def native_messages(draw, devices: list[tuple[str, str]]) -> tuple[str, bytes]:
    """A native topic and payload: sites and devices real, swapped and invented; `ts`, `seq`
    and `values` of every shape."""
    topic_text = st.text(max_size=8)  # MQTT topics are valid UTF-8: no lone surrogates
    site, dev = draw(st.one_of(st.sampled_from(devices), st.tuples(topic_text, topic_text)))
    if draw(st.booleans()):
        site = draw(st.one_of(st.sampled_from([s for s, _ in devices]), topic_text))
    what = draw(st.one_of(st.sampled_from(["reading", "reading", "status", "cmd/reply"]),
                          st.sampled_from(["cmd", "reply", "reading/x", "", "status/"]), topic_text))
    topic = f"{PREFIX}{site}/{dev}/{what}"
    doc = draw(st.one_of(
        st.fixed_dictionaries(
            {"ts": native_ts},
            optional={"seq": st.one_of(st.integers(-2**70, 2**70), scalar),
                      "values": st.one_of(st.dictionaries(st.one_of(st.sampled_from(CHANNELS), short_text),
                                                          value_junk, max_size=4), value_junk),
                      "status": value_junk, "cmd": value_junk, "result": st.sampled_from(["succ", "fail", 1]),
                      "msgid": scalar}),
        value_junk,
    ))
    return topic, dump(doc)


# --- bulk generation -----------------------------------------------------------------------------
# Hypothesis draws the seed; plain `random` builds the frames from the same vocabulary. About
# fifty times cheaper per case than composite strategies, so the bulk of the 100,000 cases comes
# from here; a failure names its frame, which the regression file then pins.
_SCALARS = [None, True, False, 0, -1, 1.5, 1e308, -1e308, 2**63, 7.5e-300, "1.5", " 2 ", "nan", "inf", "1e400",
            "0x10", "1_000", "", ",", "1,2", "1,2,3,4,5", ",,,", "a,b", "wide", "\ud800", "\x00", *RAW_LITERALS]
_TS = ["2020-07-20T08:00:00.000Z", "2020-07-20T08:00:00", "2020-02-30T00:00:00Z", "0001-01-01T00:00:00+05:00",
       "9999-12-31T23:59:59-14:00", "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "", "NaN", "1e300",
       "2020-07-20T25:00:00Z", "20200720T080000Z", "\ud800"]


def _rscalar(rnd):
    r = rnd.random()
    if r < 0.4:
        return rnd.choice(_SCALARS)
    if r < 0.7:
        return rnd.uniform(-2e5, 2e5)
    if r < 0.85:
        return rnd.randint(-10**6, 10**6)
    return "".join(chr(rnd.randint(32, 0x2FFF)) for _ in range(rnd.randint(0, 6)))


def _rvalue(rnd, depth: int = 2):
    r = rnd.random()
    if depth == 0 or r < 0.5:
        return _rscalar(rnd)
    if r < 0.65:
        return [_rvalue(rnd, depth - 1) for _ in range(rnd.randint(0, 3))]
    keys = NATIONAL_KEYS + CHANNELS
    return {(rnd.choice(keys) if rnd.random() < 0.8 else str(_rscalar(rnd))): _rvalue(rnd, depth - 1)
            for _ in range(rnd.randint(0, 5))}


def _rts(rnd) -> str:
    r = rnd.random()
    if r < 0.5:
        return format_ts(rnd.uniform(946_684_800, 2_000_000_000))
    return rnd.choice(_TS) if r < 0.9 else str(_rscalar(rnd))


def random_national(rnd, device_ids: list[str]) -> bytes:
    doc: object
    if rnd.random() < 0.9:
        doc = {}
        for _ in range(rnd.randint(0, 3)):
            dev = rnd.choice(device_ids) if rnd.random() < 0.85 else str(_rscalar(rnd))
            if rnd.random() < 0.1:
                doc[dev] = _rvalue(rnd)
                continue
            sensors = {}
            for _ in range(rnd.randint(0, 3)):
                code = rnd.choice(SENSOR_CODES + ["S1_ZT"])
                sensor = f"{code}_{rnd.choice(['1', '2', 'x', ''])}" if rnd.random() < 0.9 else str(_rscalar(rnd))
                sensors[sensor] = ({_rts(rnd): _rvalue(rnd) for _ in range(rnd.randint(0, 3))}
                                   if rnd.random() < 0.9 else _rvalue(rnd))
            doc[dev] = sensors
    else:
        doc = _rvalue(rnd)
    body = dump(doc)[:65535]
    frame_type = rnd.choice([1, 2, 2, 2]) if rnd.random() < 0.9 else rnd.randint(0, 255)
    built = frame(frame_type, body)
    r = rnd.random()
    if r < 0.05:
        built = built[:1] + max(0, min(65535, len(body) + rnd.randint(-3, 3))).to_bytes(2, "big") + built[3:]
    elif r < 0.1:
        built = built[: rnd.randint(0, len(built))]
    return built


def random_native(rnd, devices: list[tuple[str, str]]) -> tuple[str, bytes]:
    site, dev = rnd.choice(devices)
    if rnd.random() < 0.1:
        site = rnd.choice(devices)[0]
    if rnd.random() < 0.05:
        dev = str(_rscalar(rnd)).replace("/", "").replace("\ud800", "")
    what = rnd.choice(["reading"] * 5 + ["status", "status", "cmd/reply", "cmd", "reading/x", ""])
    doc: object = {}
    if rnd.random() < 0.95:
        doc["ts"] = (rnd.uniform(946_684_800, 2_000_000_000) if rnd.random() < 0.5 else
                     _rts(rnd) if rnd.random() < 0.7 else _rscalar(rnd))
        if rnd.random() < 0.3:
            doc["seq"] = rnd.choice([0, 1, -1, 2**70, "1", None, 1.5, True])
        if rnd.random() < 0.9:
            doc["values" if rnd.random() < 0.8 else "status"] = (
                {(rnd.choice(CHANNELS) if rnd.random() < 0.85 else str(_rscalar(rnd))): _rvalue(rnd, 1)
                 for _ in range(rnd.randint(0, 4))} if rnd.random() < 0.9 else _rvalue(rnd))
        for k in ("cmd", "result", "msgid"):
            if rnd.random() < 0.1:
                doc[k] = _rvalue(rnd, 1)
    else:
        doc = _rvalue(rnd)
    return f"{PREFIX}{site}/{dev}/{what}", dump(doc)
