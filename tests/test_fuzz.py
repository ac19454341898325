"""Hostile input: property-based fuzzing of both wire decoders, the CSV replay reader, the
configuration loader and the rules loader. Over 100,000 generated cases in about a minute.

Properties: no exception escapes; every frame is accounted for (something decoded or a
rejection with a known reason, never a decoder error); every reading that passes the screen is
finite, physically possible and plausibly timed; whatever is decoded can be journaled; a bad
configuration is a ConfigError naming its file. Crashing inputs found here are pinned in
test_fuzz_regressions.py.
"""
from __future__ import annotations

import csv
import io
import json
import math
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geowarn.daemon.config import ConfigError, default_config_path, load_config
from geowarn.daemon.intake import decode_message
from geowarn.daemon.journal import Entry, Journal, Quarantined
from geowarn.daemon.replay import BAD_ROW, COLUMNS, read_rows
from geowarn.daemon.rules import default_rules_dir, load_rules
from geowarn.drivers.base import Reason
from geowarn.drivers.formats import load_formats
from geowarn.drivers.formats.national import Format as National
from geowarn.drivers.formats.native import PREFIX, Format as Native
from geowarn.drivers.kinds import KINDS
from geowarn.drivers.screen import EARLIEST_TS, ScreenLimits

from fuzz_strategies import (CHANNELS, native_messages, national_frames, numeric_text, random_national,
                             random_native, short_text, timestamps)
from yaml_mutations import mutated_yaml, trimmed_registry_text

REASONS = {v for k, v in vars(Reason).items() if k.isupper()}
NOW = time.time()
LIMITS = ScreenLimits()
# property -> (examples, cases per example): together over 100,000 cases, the file about a minute
PLAN = {
    "national_bytes": (600, 25), "national_header": (400, 25), "national_frames": (300, 1),
    "national_bulk": (320, 100), "national_replies": (200, 25), "native_bytes": (300, 25),
    "native_messages": (300, 1), "native_bulk": (280, 120), "journaled": (40, 50),
    "replay_csv": (600, 1), "config": (1000, 1), "rules": (500, 1),
}
COUNTS: Counter = Counter()
# no deadline (a loaded CI box is not a bug); generation is cheap on purpose, health checks off
FUZZ = dict(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)

registry = load_config().registry
DEVICES = [(d.site, d.id) for d in registry.devices]
DEVICE_IDS = [d.id for d in registry.devices]
FORMATS = load_formats(registry)
NATIONAL, NATIVE = National(registry), Native(registry)


def fuzz(name: str):
    return settings(max_examples=PLAN[name][0], **FUZZ)


def batch(strategy, name: str):
    """`per` cases per example: Hypothesis' own cost per example is paid once per batch."""
    per = PLAN[name][1]
    return st.lists(strategy, min_size=per, max_size=per)


def ran(name: str) -> None:
    examples, per = PLAN[name]
    assert COUNTS[name] >= examples * per, f"{name}: {COUNTS[name]} cases, planned {examples * per}"


# --- the properties ----------------------------------------------------------------------------

def check_decoder(fmt, topic: str, payload: bytes) -> None:
    """The format on its own: never raises, accounts for the frame, known reasons only."""
    d = fmt.decode(topic, payload)
    assert d.readings or d.statuses or d.replies or d.rejections, f"frame silently dropped: {topic} {payload!r}"
    for rej in d.rejections:
        assert rej.reason in REASONS and rej.reason != Reason.DECODER_ERROR, (rej, topic, payload)
        assert isinstance(rej.detail, str) and rej.detail


def check_intake(topic: str, payload: bytes):
    """Decode and screen as the intake does; what passes is fit for the journal and the core."""
    decoded, accepted = decode_message(topic, payload, FORMATS, registry, NOW, LIMITS)
    assert all(r.reason in REASONS and r.reason != Reason.DECODER_ERROR for r in decoded.rejections), \
        (decoded.rejections, topic, payload)
    assert len(accepted) <= len(decoded.readings)
    for r in accepted:
        dev = registry.device(r.device)
        assert dev is not None and (r.site is None or r.site == dev.site)
        lo, hi = KINDS[r.kind].limits[r.channel]
        assert math.isfinite(r.value) and lo <= r.value <= hi, (r, payload)
        assert EARLIEST_TS <= r.ts <= NOW + LIMITS.future_s, (r, payload)
    for s in decoded.statuses:
        assert EARLIEST_TS <= s.ts <= NOW + LIMITS.future_s, (s, payload)
        json.dumps(s.fields, ensure_ascii=False).encode("utf-8")  # the journal stores it as UTF-8 JSON
    for q in decoded.rejections:
        (q.detail + (q.device or "")).encode("utf-8")
    for rep in decoded.replies:
        (rep.command + rep.raw + (rep.msgid or "") + (rep.device or "")).encode("utf-8")
    return decoded, accepted


def check(fmt, name: str, topic: str, payload: bytes) -> None:
    COUNTS[name] += 1
    check_decoder(fmt, topic, payload)
    check_intake(topic, payload)


def fuzz_messages(name: str, fmt, messages: st.SearchStrategy) -> None:
    """Run one property over (topic, payload) lists drawn from `messages`, then check the count."""
    @fuzz(name)
    @given(messages)
    def prop(batch_):
        for topic, payload in batch_:
            check(fmt, name, topic, payload)

    prop()
    ran(name)


def bulk(name: str, make) -> st.SearchStrategy:
    """`per` messages from plain `random`, seeded by Hypothesis: the cheap bulk of the cases."""
    return st.randoms(use_true_random=True).map(lambda rnd: [make(rnd) for _ in range(PLAN[name][1])])


# --- national $dp / $dr ------------------------------------------------------------------------

def test_national_random_bytes():
    fuzz_messages("national_bytes", NATIONAL, batch(st.tuples(st.just("$dp"), st.binary(max_size=96)), "national_bytes"))


def test_national_right_header_random_body():
    framed = st.tuples(st.integers(0, 255), st.binary(max_size=64)).map(
        lambda t: ("$dp", bytes([t[0]]) + len(t[1]).to_bytes(2, "big") + t[1]))
    fuzz_messages("national_header", NATIONAL, batch(framed, "national_header"))


def test_national_structured_frames():
    fuzz_messages("national_frames", NATIONAL, national_frames(DEVICE_IDS).map(lambda p: [("$dp", p)]))


def test_national_structured_frames_in_bulk():
    fuzz_messages("national_bulk", NATIONAL, bulk("national_bulk", lambda rnd: ("$dp", random_national(rnd, DEVICE_IDS))))


def test_national_replies():
    replies = st.one_of(st.binary(max_size=48), st.text(max_size=48).map(lambda t: ("$cmd=" + t).encode()))
    fuzz_messages("national_replies", NATIONAL,
                  batch(st.tuples(st.sampled_from(["$dr", "$dr/x", "$dr/"]), replies), "national_replies"))


# --- native ------------------------------------------------------------------------------------

def test_native_random_topics_and_bytes():
    topics = (st.tuples(st.sampled_from(DEVICES), st.sampled_from(["reading", "status", "cmd/reply"]))
              .map(lambda t: f"{PREFIX}{t[0][0]}/{t[0][1]}/{t[1]}") | st.text(max_size=24).map(lambda t: PREFIX + t))
    fuzz_messages("native_bytes", NATIVE, batch(st.tuples(topics, st.binary(max_size=96)), "native_bytes"))


def test_native_structured_messages():
    fuzz_messages("native_messages", NATIVE, native_messages(DEVICES).map(lambda m: [m]))


def test_native_structured_messages_in_bulk():
    fuzz_messages("native_bulk", NATIVE, bulk("native_bulk", lambda rnd: random_native(rnd, DEVICES)))


def test_whatever_decodes_can_be_journaled(tmp_path):
    """The real journal takes every decoded batch: a value it cannot store would stop the intake."""
    with Journal(tmp_path / "journal.sqlite", "normal") as journal:
        @fuzz("journaled")
        @given(st.randoms(use_true_random=True))
        def prop(rnd):
            entry = Entry()
            for _ in range(PLAN["journaled"][1]):
                COUNTS["journaled"] += 1
                topic, payload = (("$dp", random_national(rnd, DEVICE_IDS)) if rnd.random() < 0.5
                                  else random_native(rnd, DEVICES))
                decoded, accepted = check_intake(topic, payload)
                entry.readings += [(r, registry.device(r.device).site) for r in accepted]
                entry.statuses += decoded.statuses
                entry.replies += decoded.replies
                entry.quarantined += [Quarantined(topic, payload, rej) for rej in decoded.rejections]
            journal.write(entry)  # one intake batch: raises only sqlite3.Error, which the intake retries

        prop()
        assert journal.count_readings() > 0  # the generator does produce good readings too
    ran("journaled")


# --- CSV replay reader -------------------------------------------------------------------------

def _no_surrogates(s: str) -> bool:  # a CSV file is UTF-8 text: it cannot hold them
    return not any("\ud800" <= c <= "\udfff" for c in s)


cells = st.one_of(short_text.filter(_no_surrogates), numeric_text)
csv_rows = st.lists(st.one_of(
    st.tuples(st.one_of(timestamps.filter(_no_surrogates), numeric_text), st.sampled_from(["S1", "S2", ""]),
              st.sampled_from(["d1", "d2", ""]), st.sampled_from([*KINDS, "alarm", "x"]),
              st.sampled_from([*CHANNELS, "x"]), numeric_text).map(list),
    st.lists(cells, max_size=8),
), max_size=6)


@st.composite
def csv_files(draw) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    header = list(COLUMNS) if draw(st.integers(0, 9)) else draw(st.lists(cells, max_size=7))
    w.writerow(header)
    w.writerows(draw(csv_rows))
    data = buf.getvalue().encode("utf-8")
    if draw(st.integers(0, 4)) == 0:  # raw bytes spliced in: NULs, invalid UTF-8, stray quotes
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=6)) + data[at:]
    if draw(st.integers(0, 40)) == 0:  # one field beyond csv's field size limit
        data += b'1,S1,d1,crack,width,"' + b"9" * 140_000 + b'"\n'
    return data


def test_replay_csv_reader():
    path = Path(tempfile.mkdtemp(prefix="geowarn-fuzz-")) / "r.csv"

    @fuzz("replay_csv")
    @given(csv_files())
    def prop(data):
        COUNTS["replay_csv"] += 1
        path.write_bytes(data)
        quarantined: Counter = Counter()
        try:
            rows = read_rows(path, quarantined)
        except ConfigError as e:
            assert e.file == str(path) and e.line, e
            return
        assert set(quarantined) <= REASONS | {BAD_ROW}
        records = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))[1:]
        assert len(rows) + sum(quarantined.values()) == len(records)
        for r in rows:
            assert r.kind in KINDS and r.channel in KINDS[r.kind].channels and r.site and r.device
            assert math.isfinite(r.ts)

    prop()
    ran("replay_csv")


# --- configuration and rules ---------------------------------------------------------------------

def _expect_config_error(e: ConfigError, files: set[str]) -> None:
    assert e.file in files, e
    assert str(e).startswith(e.file) and "Traceback" not in str(e)
    # a problem inside a document that parsed names its place or line
    assert e.place or e.line or e.problem.startswith(("invalid YAML", "cannot read", "the top level", "no sites")), e


def test_config_loader_on_mutated_default_registry():
    base = trimmed_registry_text(default_config_path(), sites=2)
    path = Path(tempfile.mkdtemp(prefix="geowarn-fuzz-")) / "geowarn.yaml"
    path.write_text(base, encoding="utf-8")
    assert len(load_config(path).registry.sites) == 2  # the unmutated text is valid

    @fuzz("config")
    @given(mutated_yaml(base))
    def prop(text):
        COUNTS["config"] += 1
        path.write_bytes(text)
        try:
            load_config(path)
        except ConfigError as e:
            # a mutation may add `registry: FILE`: then the error may name that file
            _expect_config_error(e, {str(path), e.file} if e.file.startswith(str(path.parent)) else {str(path)})

    prop()
    ran("config")


def test_rules_loader_on_mutated_default_rules():
    src = default_rules_dir()
    base = (src / "defaults.yaml").read_text(encoding="utf-8")
    site = (src / "sites" / "XTX001.yaml").read_text(encoding="utf-8")
    d = Path(tempfile.mkdtemp(prefix="geowarn-fuzz-"))
    (d / "sites").mkdir()
    pairs = [(k, "XTX001", "dev1") for k in KINDS]

    @fuzz("rules")
    @given(mutated_yaml(base, max_ops=3), st.one_of(st.just(site.encode()), mutated_yaml(site, max_ops=2)))
    def prop(defaults, override):
        COUNTS["rules"] += 1
        (d / "defaults.yaml").write_bytes(defaults)
        (d / "sites" / "XTX001.yaml").write_bytes(override)
        try:
            load_rules(d).check_all(pairs)
        except ConfigError as e:
            _expect_config_error(e, {str(d / "defaults.yaml"), str(d / "sites" / "XTX001.yaml")})

    prop()
    ran("rules")


def test_over_100k_generated_cases():
    """Runs last: the whole file generated what it planned (skipped when run piecemeal)."""
    if set(COUNTS) != set(PLAN):
        pytest.skip("run the whole file to count its cases")
    assert sum(e * per for e, per in PLAN.values()) >= 100_000
    assert sum(COUNTS.values()) >= 100_000, COUNTS
