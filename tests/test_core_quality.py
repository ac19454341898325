"""Data quality: faults for technicians that never raise (or lower) a household level."""
import numpy as np

from geowarn.daemon.core import Core
from geowarn.daemon.model.slots import Slot
from geowarn.drivers.base import DeviceStatus

from corehelp import H, T0, creep, feed, registry


def _crack_core():
    core = Core(registry(("S1", [("c1", "crack"), ("c2", "crack")])))
    return core, core.intern("S1", "c1", "crack", "width")


def test_a_spike_is_a_fault_and_never_a_warning():
    core, sid = _crack_core()
    t, x = creep(20)
    x[120] += 400.0  # far beyond every rate and change threshold
    res = feed(core, sid, t, x)
    assert [f.fault for f in res.faults] == ["spike"]
    assert res.faults[0].ts == t[120] and "left out of all detectors" in res.faults[0].detail
    assert res.signals == [] and res.level_changes == []
    assert core.site_levels()["S1"] == "normal"
    # the spike is out of every window: the change over 30 days stays tiny
    assert core.state.slot_value[sid, Slot.CHANGE] < 5


def test_a_spike_in_a_large_batch_is_judged_the_same():
    core, sid = _crack_core()
    t, x = creep(20)
    x[120] += 400.0
    res = feed(core, sid, t, x, batch=len(t))
    assert [f.fault for f in res.faults] == ["spike"] and res.faults[0].ts == t[120]
    assert core.site_levels()["S1"] == "normal"


def test_a_real_step_is_kept_as_movement():
    core, sid = _crack_core()
    t, x = creep(20)
    x[150:] += 60.0  # a real 60 mm slip that stays
    res = feed(core, sid, t, x)
    assert not [f for f in res.faults if f.fault in ("spike", "jump")]
    assert core.state.slot_value[sid, Slot.CHANGE] > 55  # change over the window sees it
    assert core.state.slot_level[sid, Slot.CHANGE] == 1  # 60 mm reaches the blue change threshold (50 mm)


def test_a_reference_jump_is_removed_from_the_series():
    core = Core(registry(("S1", [("g1", "gnss")])))
    sid = core.intern("S1", "g1", "gnss", "dh")
    t, x = creep(20, noise=2.0, start=100.0)
    x[150:] += 900.0  # antenna moved: a step beyond the 500 mm jump rule
    res = feed(core, sid, t, x)
    assert [f.fault for f in res.faults] == ["jump"]
    assert abs(core.state.offset[sid] - 900.0) < 15
    assert core.state.level[sid] == 0 and core.site_levels()["S1"] == "normal"


def test_out_of_range_is_a_fault_not_data():
    core = Core(registry(("S1", [("g1", "gnss")])))
    sid = core.intern("S1", "g1", "gnss", "dx")
    t, x = creep(5, noise=2.0)
    x[10] = 50_000.0
    res = feed(core, sid, t, x)
    assert [f.fault for f in res.faults] == ["out_of_range"] and "50000" in res.faults[0].detail
    assert core.site_levels()["S1"] == "normal"


def test_flatline_opens_and_clears():
    core = Core(registry(("S1", [("t1", "tilt")])))
    sid = core.intern("S1", "t1", "tilt", "x")
    t = T0 + np.arange(60) * 7200.0
    x = np.full(60, 1.25)
    x[40:] += np.tile([0.001, -0.001], 10)  # varies again, within the noise
    res = feed(core, sid, t, x)
    flat = [(f.active, f.ts) for f in res.faults if f.fault == "flatline"]
    assert flat[0][0] is True and flat[0][1] - T0 >= 48 * H  # after the 48 h rule
    assert flat[-1] == (False, t[40])
    assert core.site_levels()["S1"] == "normal"


def test_offline_and_never_reported_are_relative_to_each_interval():
    core = Core(registry(("S1", [("c1", "crack"), ("r1", "rain")]), interval_s=7200))
    sid = core.intern("S1", "c1", "crack", "width")
    feed(core, sid, [T0], [10.0])
    assert core.tick(T0 + 3 * 3600 - 1).faults == []  # rain gauge: 3 intervals of 1 h
    res = core.tick(T0 + 3 * 3600)
    assert {(f.device, f.fault) for f in res.faults} == {("r1", "never_reported")}
    res = core.tick(T0 + 6 * 3600 + 1)  # crack: 3 x 2 h
    assert {(f.device, f.fault) for f in res.faults} == {("c1", "offline")}
    assert core.tick(T0 + 7 * 3600).faults == []  # reported once, not every tick
    feed(core, sid, [T0 + 7 * 3600], [10.1])
    res = core.tick(T0 + 7 * 3600 + 60)
    assert [(f.device, f.fault, f.active) for f in res.faults] == [("c1", "offline", False)]
    assert core.site_levels()["S1"] == "normal"


def test_battery_and_sensor_state_faults():
    core = Core(registry(("S1", [("t1", "tilt")])))
    res = core.observe_status(DeviceStatus("t1", T0, {"battery_pct": 12.0, "sensor_state": {"L1_QJ_1": -2}}))
    assert sorted(f.fault for f in res.faults) == ["low_battery", "sensor_state:L1_QJ_1"]
    assert any("data error" in f.detail for f in res.faults)
    assert core.observe_status(DeviceStatus("t1", T0 + 60, {"battery_pct": 12.0, "sensor_state": {"L1_QJ_1": -2}})).faults == []
    res = core.observe_status(DeviceStatus("t1", T0 + 120, {"battery_pct": 80.0, "sensor_state": {"L1_QJ_1": 0}}))
    assert sorted((f.fault, f.active) for f in res.faults) == [("low_battery", False), ("sensor_state:L1_QJ_1", False)]
    assert core.observe_status(DeviceStatus("nobody", T0, {"battery_pct": 1})).faults == []
    assert core.site_levels()["S1"] == "normal"


def test_offline_is_judged_on_the_accelerated_interval_at_yellow():
    core = Core(registry(("S1", [("c1", "crack"), ("r1", "rain")]), interval_s=7200))
    c1 = core.intern("S1", "c1", "crack", "width")
    r1 = core.intern("S1", "r1", "rain", "mm")
    feed(core, c1, [T0], [10.0])
    feed(core, r1, T0 + np.arange(1, 7) * 600.0, [10, 10, 10, 10, 10, 0])  # 50 mm in an hour: yellow
    assert core.site_levels()["S1"] == "yellow"
    rise = T0 + 3000.0
    feed(core, c1, [rise + 7200], [10.0])  # the crack meter after one normal interval
    feed(core, r1, [rise + 7200], [0.0])
    # accelerated (60 s): silent for 15 minutes (the floor) is offline now, not after 6 h
    res = core.tick(rise + 7200 + 16 * 60)
    assert {(f.device, f.fault) for f in res.faults} == {("c1", "offline"), ("r1", "offline")}
    assert "limit 0.2 h" in res.faults[0].detail


def _gnss_network(n: int):
    core = Core(registry(*[(f"S{i}", [(f"g{i}", "gnss"), (f"c{i}", "crack")]) for i in range(n)], interval_s=3600))
    ids = np.array([[core.intern(f"S{i}", f"g{i}", "gnss", ch) for ch in ("dx", "dy", "dz", "dh")]
                    for i in range(n)])
    return core, ids


def _gnss_hour(rng, n: int, shift=None) -> np.ndarray:
    """One hour of solutions of n still stations: σ 2.5 mm horizontal, 6 mm vertical."""
    dx, dy, dz = rng.normal(0, 2.5, n), rng.normal(0, 2.5, n), rng.normal(0, 6.0, n)
    if shift is not None:
        dx, dy = dx + shift, dy + shift
    return np.stack([dx, dy, dz, np.hypot(dx, dy)], axis=1)


def test_gnss_scatter_from_a_cold_start_raises_nothing():
    """Sixty still stations, hourly, from their first solution for two weeks: the rate, change
    and trend tests see windows fill from a ragged edge with a young noise estimate, and must
    not take scatter for movement (before: blues from the first partly filled rate block and
    from the noise estimate of a few dozen readings)."""
    n = 60
    core, ids = _gnss_network(n)
    rng = np.random.default_rng(7)
    out = []
    for h in range(340):
        v = _gnss_hour(rng, n)
        t = np.full(ids.shape, T0 + h * H)
        out += core.process(ids.ravel(), t.ravel(), v.ravel()).level_changes
    assert [(e.site, e.level, e.reasons_en) for e in out] == []
    assert set(core.site_levels().values()) == {"normal"}


def test_a_gnss_antenna_jump_is_a_fault_and_no_warning():
    """A still station steps 30 mm east and north and stays there: a `jump` fault for the
    technician, removed from the series, so neither rate nor change warns."""
    n = 3
    core, ids = _gnss_network(n)
    rng = np.random.default_rng(3)
    faults, changes = [], []
    for h in range(120):
        v = _gnss_hour(rng, n, shift=np.array([30.0 if h >= 60 else 0.0, 0.0, 0.0]))
        t = np.full(ids.shape, T0 + h * H)
        r = core.process(ids.ravel(), t.ravel(), v.ravel())
        faults += r.faults
        changes += r.level_changes
    assert {(f.site, f.fault) for f in faults} == {("S0", "jump")}
    assert changes == []
    dh = ids[0, 3]
    assert abs(core.win.last_v[dh]) < 15  # the 42 mm horizontal step is gone from the series


def test_a_step_at_a_site_already_moving_stays_movement():
    """At yellow or above something at the site moves: the same step is movement, not a jump."""
    core, ids = _gnss_network(1)
    crack = core.intern("S0", "c0", "crack", "width")
    rng = np.random.default_rng(5)
    t_c, x_c = creep(6, rate_mm_day=30.0, noise=0.05, every_s=3600.0)  # the crack opens 30 mm/day
    faults = []
    for h in range(120):
        ts = T0 + h * H
        if h < len(t_c):
            core.process([crack], [t_c[h]], [x_c[h]])
        v = _gnss_hour(rng, 1, shift=np.array([30.0 if h >= 100 else 0.0]))
        faults += core.process(ids.ravel(), np.full(4, ts), v.ravel()).faults
    assert core.site_levels()["S0"] in ("yellow", "orange", "red")
    assert [f for f in faults if f.fault == "jump"] == []
    assert core.win.last_v[ids[0, 3]] > 30  # kept in the series
