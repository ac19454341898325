"""Site levels: corroboration, raise fast, lower only after a hold with data, reasons."""
import numpy as np

from geowarn.daemon.core import Core

from corehelp import H, T0, creep, feed, registry


def _moving(days_calm=20, days_fast=3, fast=500.0, seed=0):
    t, x = creep(days_calm + days_fast, rate_mm_day=0.1, seed=seed)
    fast_part = t >= T0 + days_calm * 86400
    x[fast_part] += fast * (t[fast_part] - T0 - days_calm * 86400) / 86400
    return t, x


def test_one_instrument_alone_is_capped_at_yellow():
    core = Core(registry(("S1", [("c1", "crack"), ("c2", "crack")])))
    s1 = core.intern("S1", "c1", "crack", "width")
    t, x = _moving()
    res = feed(core, s1, t, x, batch=12)
    assert core.state.level[s1] == 4  # the crack meter itself is at red (rate >= 430 mm/day)
    assert [s.level for s in res.signals if s.device == "c1"][-1] == "red"
    assert core.site_levels()["S1"] == "yellow"
    # all at once: the site goes straight to the cap, and says why
    core = Core(registry(("S1", [("c1", "crack"), ("c2", "crack")])))
    s1 = core.intern("S1", "c1", "crack", "width")
    res = feed(core, s1, t, x, batch=len(t))
    (last,) = res.level_changes
    assert (last.previous, last.level) == ("normal", "yellow")
    assert any("限为警示级" in r for r in last.reasons_zh)
    assert any("not corroborated" in r for r in last.reasons_en)
    assert any("mm/day" in r and "430" in r for r in last.reasons_en)


def test_a_second_instrument_corroborates():
    core = Core(registry(("S1", [("c1", "crack"), ("c2", "crack")])))
    s1 = core.intern("S1", "c1", "crack", "width")
    s2 = core.intern("S1", "c2", "crack", "width")
    t, x = _moving()
    t2, x2 = _moving(fast=10.0, seed=1)  # c2 moves at 10 mm/day: blue rate
    ids = np.r_[np.full(len(t), s1), np.full(len(t2), s2)]
    ts, xs = np.r_[t, t2], np.r_[x, x2]
    order = np.argsort(ts, kind="stable")
    levels = []
    for i in range(0, len(order), 24):
        k = order[i:i + 24]
        levels += [(e.level, e.reasons_en) for e in core.process(ids[k], ts[k], xs[k]).level_changes]
    assert levels[-1][0] == "red"
    assert any("c2" in r for r in levels[-1][1])  # the agreeing instrument is named
    assert core.site_levels()["S1"] == "red"


def _rain_core():
    core = Core(registry(("S1", [("r1", "rain")])))
    return core, core.intern("S1", "r1", "rain", "mm")


def test_raise_fast_lower_after_hold_and_never_on_silence():
    core, sid = _rain_core()
    ts = T0 + np.arange(1, 7) * 600.0  # 50 mm within an hour
    res = feed(core, sid, ts, [5, 10, 10, 10, 10, 5])
    assert [(e.previous, e.level) for e in res.level_changes] == [("normal", "blue"), ("blue", "yellow")]
    e = res.level_changes[-1]
    assert e.ts == ts[-2]  # 45 mm after five reports
    assert any("1h 累计雨量 45 mm ≥ 黄色阈值 45 mm" in r for r in e.reasons_zh)
    assert any("1h rainfall 45 mm ≥ yellow threshold 45 mm" in r for r in e.reasons_en)
    # silence for three days: nothing lowers
    assert core.tick(T0 + 3 * 86400).level_changes == []
    assert core.site_levels()["S1"] == "yellow"
    # dry data again: below yellow, but held for 24 h of data before lowering
    dry = T0 + 3 * 86400 + np.arange(1, 30) * 3600.0
    changes = []
    for t in dry:
        changes += [(t, e.level, e.reasons_en[0]) for e in core.process([sid], [t], [0.0]).level_changes]
    assert changes == [(dry[0] + 24 * H, "normal", "yellow → normal (below yellow for 24 h with data present)")]


def test_rain_alone_is_capped_too():
    core, sid = _rain_core()
    ts = T0 + np.arange(1, 7) * 600.0
    feed(core, sid, ts, [15, 15, 15, 15, 15, 15])  # 90 mm in an hour: red by the table
    assert core.state.level[sid] == 4
    assert core.site_levels()["S1"] == "yellow"


def test_signals_name_detector_value_and_threshold():
    core, sid = _rain_core()
    res = feed(core, sid, [T0 + 600], [36.0])
    (sig,) = res.signals
    assert (sig.level, sig.detector, sig.value, sig.threshold, sig.unit) == ("blue", "rain_1h", 36.0, 35.0, "mm")
    assert "36" in sig.reason_zh and "35" in sig.reason_zh
