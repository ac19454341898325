"""Rainfall: rolling totals (checked against the Mukilteo record), counters, I-D, antecedent."""
import csv
from collections import defaultdict

import numpy as np

from geowarn.daemon.core import Core
from geowarn.daemon.model.slots import RAIN_WINDOWS_H, Slot

from corehelp import H, T0, feed, registry
from datasets import _utc, data_file
from geowarn.drivers.timestamps import parse_ts


def test_mukilteo_rolling_totals_match_the_file():
    by_station = defaultdict(list)
    with data_file("usgs_mukilteo_RALHS_15min_rain_2015.csv").open() as f:
        for r in csv.DictReader(f):
            by_station[r["station"]].append((parse_ts(_utc(r["datetime"], "%Y-%m-%d %H:%M")), float(r["precip_mm_15min"])))
    core = Core(registry(("MUK", [(s, "rain") for s in by_station])))
    ids, ts, mm = [], [], []
    for st, rows in by_station.items():
        sid = core.intern("MUK", st, "rain", "mm")
        ids += [sid] * len(rows)
        ts += [t for t, _ in rows]
        mm += [v for _, v in rows]
    ids, ts, mm = np.array(ids), np.array(ts), np.array(mm)
    order = np.argsort(ts, kind="stable")
    ids, ts, mm = ids[order], ts[order], mm[order]
    day = np.floor(ts / 86400)
    cuts = [0, *(np.flatnonzero(np.diff(day)) + 1), len(ts)]
    checked = 0
    worst = 0.0
    peak_24h = {}
    for a, b in zip(cuts, cuts[1:]):
        core.process(ids[a:b], ts[a:b], mm[a:b])
        for sid in np.unique(ids[a:b]):
            mine = ids[:b] == sid
            t_last = ts[:b][mine].max()
            got = core.rain_totals(int(sid))
            for w in RAIN_WINDOWS_H:
                inside = mine & (ts[:b] > t_last - w * H)
                want = mm[:b][inside].sum()
                worst = max(worst, abs(got[w] - want))
                checked += 1
            peak_24h[int(sid)] = max(peak_24h.get(int(sid), 0.0), got[24])
    assert checked > 2000
    assert worst < 1e-9
    assert max(peak_24h.values()) > 20


def test_cumulative_counter_with_reset_gives_the_same_totals_as_increments():
    inc = np.array([0.0, 2.0, 5.0, 0.5, 0.0, 8.0, 3.0, 1.0, 0.0, 4.0])
    ts = T0 + np.arange(1, len(inc) + 1) * 600.0
    a = Core(registry(("S1", [("r1", "rain")])))
    sa = a.intern("S1", "r1", "rain", "mm")
    feed(a, sa, ts, inc)
    counter = 1000.0 + np.cumsum(inc)
    counter[6:] = np.cumsum(inc[6:])  # the gauge restarted from zero before the 7th report
    b = Core(registry(("S1", [("r1", "rain")])))
    sb = b.intern("S1", "r1", "rain", "total")
    feed(b, sb, ts, counter, batch=4)
    # (the very first counter value has no predecessor: its increment counts 0, as inc[0] is)
    assert a.rain_totals(sa)[3] == inc.sum() == b.rain_totals(sb)[3]
    assert a.rain_totals(sa)[1] == inc[4:].sum() == b.rain_totals(sb)[1]
    # a gauge sending both: the per-report mm counts, the counter is not added on top
    c = Core(registry(("S1", [("r1", "rain")])))
    cm, ct = c.intern("S1", "r1", "rain", "mm"), c.intern("S1", "r1", "rain", "total")
    for t, m, tot in zip(ts, inc, counter):
        c.process([cm, ct], [t, t], [m, tot])
    assert c.state.level[ct] == 0 and not c.p.judged[ct]
    assert c.rain_totals(cm)[3] == inc.sum()


def test_hunan_table_any_window_reached():
    core = Core(registry(("S1", [("r1", "rain"), ("c1", "crack")])))
    sid = core.intern("S1", "r1", "rain", "mm")
    # 12 mm an hour for 10 hours: 1 h never reaches 35, but 6 h = 72 mm reaches blue (70)
    ts = T0 + np.arange(1, 61) * 600.0
    res = feed(core, sid, ts, np.full(60, 2.0))
    sig = res.signals[0]
    assert sig.detector in ("rain_6h", "intensity_duration")
    assert core.state.slot_level[sid, Slot.RAIN_6H] == 1
    assert core.state.slot_value[sid, Slot.RAIN_6H] == 72.0
    assert core.state.slot_level[sid, Slot.RAIN_1H] == 0


def test_intensity_duration_and_antecedent_rainfall():
    core = Core(registry(("S1", [("r1", "rain")])))
    sid = core.intern("S1", "r1", "rain", "mm")
    # 20 mm once a day for 10 days: EAR = sum 20 * 0.84^i over the days held
    days = T0 - (T0 % 86400) + np.arange(10) * 86400 + 3600
    feed(core, sid, days, np.full(10, 20.0))
    ear = core.state.slot_value[sid, Slot.ANTECEDENT]
    assert abs(ear - sum(20 * 0.84 ** i for i in range(10))) < 1e-9
    assert core.state.slot_level[sid, Slot.ANTECEDENT] == 1  # 103 mm: blue (100)
    # 20 mm in one hour exceeds Caine's I = 14.82 D^-0.39 at D = 1 h
    assert core.state.slot_level[sid, Slot.INTENSITY_DURATION] == 1
    assert abs(core.state.slot_threshold[sid, Slot.INTENSITY_DURATION] - 14.82) < 1e-9
