"""The simulated clock and the fleet's devices, without a broker: deterministic, on a fake wall clock."""
import math
import threading

import pytest

from geowarn.simulators.clock import SimClock
from geowarn.simulators.fleet import Fleet

START = 1_790_000_000.0


class Wall:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def test_a_fast_run_starts_in_the_past_and_ends_at_now_never_ahead_of_the_wall_clock():
    wall = Wall(START)
    clock = SimClock.for_run(24 * 3600, 3600, wall)
    assert clock.start == pytest.approx(START - 24 * 3600 * (1 - 1 / 3600))
    wall.t += 12  # 12 wall seconds at 3600x: 12 simulated hours
    assert clock.now() == pytest.approx(clock.start + 12 * 3600)
    wall.t += 12
    assert clock.now() == pytest.approx(START + 24)  # the end of the run is the wall clock's now
    wall.t += 100
    assert clock.now() == wall.t  # from then on: real time, never ahead
    assert clock.wall_delay(wall.t + 30) == pytest.approx(30)


def test_as_fast_as_possible_jumps_from_event_to_event_but_not_past_the_wall_clock():
    wall = Wall(START)
    clock = SimClock.for_run(3600, math.inf, wall)
    assert clock.start == START - 3600
    assert clock.advance_to(START - 1800) and clock.now() == START - 1800
    stop = threading.Event()
    stop.set()
    assert not clock.advance_to(START + 60, stop)  # would have to wait for the wall clock
    assert clock.now() <= START


def test_speed_changes_without_a_jump():
    wall = Wall(START)
    clock = SimClock(START - 3600, 10, wall)
    wall.t += 60
    before = clock.now()
    clock.set_speed(100)
    assert clock.now() == pytest.approx(before)
    wall.t += 1
    assert clock.now() == pytest.approx(before + 100)


def reading_times(fleet, device_id, until):
    return [e.ts for e in fleet.due(until) if e.what == "reading" and e.device.id == device_id]


def test_setsensortime_changes_intervals_and_bad_commands_fail(registry):
    fleet = Fleet(registry, START)
    tilt = next(d for d in registry.devices if d.kind == "tilt")
    reading_times(fleet, tilt.id, START + 3 * 3600)
    now = START + 3 * 3600
    r = fleet.command(tilt.id, "setsensortime", {"sensor_id": "L1_QJ_1", "sample_intv": "60",
                                                 "upload_intv": "1800", "plus_intv": "30"}, now)
    assert r.ok
    times = reading_times(fleet, tilt.id, now + 6 * 3600)
    assert [b - a for a, b in zip(times, times[1:])] == [1800] * (len(times) - 1) and times[0] - now == 1800
    assert fleet.command(tilt.id, "setworkmode", {"mode": "2"}, now + 6 * 3600).ok
    fast = reading_times(fleet, tilt.id, now + 7 * 3600)
    assert {b - a for a, b in zip(fast, fast[1:])} == {30}
    assert fleet.command(tilt.id, "setworkmode", {"mode": "7"}, now).ok is False
    assert fleet.command(tilt.id, "setsensortime", {"upload_intv": "soon"}, now).ok is False
    assert fleet.command(tilt.id, "setsensortime", {"upload_intv": "0"}, now).ok is False
    assert fleet.command(tilt.id, "alarm", {"level": "0"}, now).ok is False  # no siren on a tiltmeter
    assert fleet.command("000000000000", "alarm", {}, now).ok is None


def test_an_offline_device_neither_reports_nor_answers(registry):
    from geowarn.simulators.scenario import load_scenario

    sc = load_scenario("device-offline", registry)
    f = sc.faults[0]
    fleet = Fleet(registry, START, sc)
    assert reading_times(fleet, f.device, START + 5 * 3600)
    assert fleet.command(f.device, "setworkmode", {"mode": "2"}, START + 5 * 3600).ok
    times = reading_times(fleet, f.device, START + 10 * 3600)
    assert len(times) == 60 and max(times) < START + f.start_h * 3600  # an hour of 1-min reports, then silence
    assert fleet.command(f.device, "setworkmode", {"mode": "2"}, START + 10 * 3600).ok is None


def test_the_same_seed_makes_the_same_world(registry):
    a = [(e.ts, e.device.id, e.values) for e in Fleet(registry, START, seed=3).due(START + 6 * 3600)]
    b = [(e.ts, e.device.id, e.values) for e in Fleet(registry, START, seed=3).due(START + 6 * 3600)]
    c = [(e.ts, e.device.id, e.values) for e in Fleet(registry, START, seed=4).due(START + 6 * 3600)]
    assert a == b and a != c


def test_rough_voight_movement_is_monotonic_continuous_and_follows_the_law_on_average():
    from geowarn.simulators.motion import SlopeMotion

    onset, tf = 36 * 3600.0, 108 * 3600.0
    smooth = SlopeMotion(0.0, 2.0, onset, tf, 2.0)
    t = [onset + k * 300.0 for k in range(int((tf - onset) / 300))]
    ratios = []
    for seed in range(20):
        rough = SlopeMotion(0.0, 2.0, onset, tf, 2.0, roughness=0.15, seed=seed)
        u = [rough.displacement(x) for x in t]
        assert all(b > a for a, b in zip(u, u[1:]))
        assert all(abs(rough.displacement(onset + k * 3600 + d) - rough.displacement(onset + k * 3600 - d)) < 1e-6
                   for k in range(1, 70) for d in (1e-6,))
        steps = [(rough.displacement(onset + (k + 1) * 3600) - rough.displacement(onset + k * 3600))
                 / (smooth.displacement(onset + (k + 1) * 3600) - smooth.displacement(onset + k * 3600))
                 for k in range(70)]
        assert 0.5 < min(steps) and max(steps) < 2.0 and len({round(s, 6) for s in steps}) > 60
        ratios.append(rough.displacement(tf - 3600) / smooth.displacement(tf - 3600))
    assert abs(sum(ratios) / len(ratios) - 1.0) < 0.05
