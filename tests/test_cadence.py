"""Judgement that follows each series' own cadence (issue 16 part 1): daily survey prisms and
GNSS solutions are judged on windows of readings, with their own noise, without a site
override. Figures: docs/backtest.md, "Daily and sparse series"."""
import numpy as np
import pytest

from geowarn.daemon.core import Core
from geowarn.daemon.core.detectors.cadence import MIN_READINGS, cadence, voight_fit
from geowarn.daemon.model.slots import Slot

import cadence_cases as cc
from corehelp import T0, registry

SEEDS = range(10)


@pytest.fixture(scope="module")
def failing_daily():
    return [cc.failing(seed, 3.0) for seed in SEEDS]


def test_a_daily_survey_warns_orange_three_days_ahead_and_dates_the_failure(failing_daily):
    """Voight α = 2, two prisms, daily, σ = 3 mm with 30–60 mm spikes: ≥ orange at least 72 h
    before failure, and the forecast standing 72 h before failure within ±48 h, in 8 of 10."""
    orange = [r.lead_h("orange") for r in failing_daily]
    errors = [r.forecast_error_h(72) for r in failing_daily]
    assert sum(1 for h in orange if h is not None and h >= 72) >= 8, orange
    assert sum(1 for e in errors if e is not None and abs(e) <= 48) >= 8, errors
    # a forecast from daily readings claims no more than they resolve: never ± a few hours
    assert min(f[2] for r in failing_daily for f in r.forecasts) >= cc.D / 2
    # nor is a daily series ever red from its own forecast (it cannot date a failure to the hour)
    assert all(r.first("red") is None for r in failing_daily)


def test_steady_creep_read_daily_never_goes_orange():
    for sigma in (3.0, 6.0):
        for seed in SEEDS:
            r = cc.steady(seed, sigma)
            assert r.first("orange") is None, (sigma, seed)
            assert not r.forecasts, (sigma, seed)


def test_a_surge_that_does_not_fail_is_seen_but_never_red():
    for seed in SEEDS:
        r = cc.surging(seed)
        surge_days = r.daily_level[60:120]
        assert max(surge_days) >= 2, seed  # at least yellow while it moves at up to 8 mm/day
        assert r.first("red") is None, seed
        # no forecast inside the red horizon (24 h), and none that claims ± a few hours
        assert all(f[1] - f[0] > 24 * 3600 for f in r.forecasts), seed
        assert all(f[2] >= cc.D / 2 for f in r.forecasts), seed


def test_dense_series_keep_the_hourly_windows():
    """A 2-hourly series is judged exactly as before; a daily one on windows of readings."""
    core = Core(registry(("S", [("g1", "gnss"), ("g2", "gnss")])))
    dense, sparse = core.intern("S", "g1", "gnss", "dh"), core.intern("S", "g2", "gnss", "dh")
    t2 = T0 + np.arange(0, 30 * 86400, 7200.0)
    td = T0 + np.arange(0, 30 * 86400, 86400.0)
    rng = np.random.default_rng(1)
    core.process(np.r_[np.full(len(t2), dense), np.full(len(td), sparse)], np.r_[t2, td],
                 np.r_[5.0 * (t2 - T0) / 86400 + rng.normal(0, 1, len(t2)), 5.0 * (td - T0) / 86400 + rng.normal(0, 1, len(td))])
    gaps = cadence(core.win, np.array([dense, sparse]))
    assert list(gaps) == [7200.0, 86400.0]
    # the daily series' 168 h rate window holds 7 readings: it grows to MIN_READINGS and judges
    assert 168 * 3600 < MIN_READINGS * 86400
    rate = core.state.slot_value[[dense, sparse], Slot.RATE]
    assert np.allclose(rate, 5.0, rtol=0.05), rate  # both measure 5 mm/day: blue (2) … yellow (10)
    assert list(core.state.slot_level[[dense, sparse], Slot.RATE]) == [1, 1]


def test_the_displacement_fit_recovers_a_failure_and_refuses_a_straight_line():
    t = np.arange(0, 40.0) * 86400
    tf = 42 * 86400.0
    x = 3 + 12 * -np.log((tf - t) / 86400.0)  # Voight α = 2: failure two days after the last reading
    keep = np.ones((2, len(t)), bool)
    X = np.vstack([x, 0.5 * t / 86400])  # ... and steady creep
    f, lo, hi, r2, b, gain, bounded = voight_fit(np.vstack([t, t]), X, keep, np.array([0.5, 0.5]),
                                                 np.array([t[-1], t[-1]]))
    assert abs(f[0] - tf) < 0.1 * 86400 and lo[0] <= tf <= hi[0] and bounded[0] and gain[0] > 25
    assert abs(b[0] - 12) < 0.5
    assert not bounded[1]  # a straight line has no failure time
