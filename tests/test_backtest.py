"""Back-tests on real monitoring data (../shared/data) and on synthetic Voight-law creep."""
import numpy as np
import pytest

from geowarn.daemon.core import Core
from geowarn.daemon.replay import run_replay

import datasets
from corehelp import registry

LEVELS = ["normal", "blue", "yellow", "orange", "red"]


def _peak(outcome):
    peak = {}
    for e in outcome.result.level_changes:
        peak[e.site] = max(peak.get(e.site, 0), LEVELS.index(e.level))
    return peak


@pytest.fixture(scope="module")
def lamosano(tmp_path_factory):
    return run_replay(datasets.lamosano(tmp_path_factory.mktemp("lam") / "lamosano.csv"), auto_register=True)


@pytest.fixture(scope="module")
def dynaslope(tmp_path_factory):
    return run_replay(datasets.dynaslope(tmp_path_factory.mktemp("dyn") / "dynaslope.csv"), auto_register=True)


def test_lamosano_never_reaches_red(lamosano):
    assert lamosano.readings == 162 + 50497  # every displacement and rain row
    assert lamosano.quarantined == {}
    peak = _peak(lamosano)
    assert peak["LAMOSANO"] < LEVELS.index("orange")
    # the 11-day displacement is judged without a site override: on windows of its own readings
    rates = [r for r in lamosano.report()["rates"] if r["device"] == "p5"]
    assert rates and rates[0]["judged"] > 100
    assert 0 < rates[0]["last_per_day"] < 0.2 and rates[0]["last_se_per_day"] > 0
    assert not lamosano.result.forecasts  # a slow creep forecasts no failure
    # the 2017-06-25 cloudburst (51.2 mm in one hour) is what raised yellow, not the creep
    yellow = [e for e in lamosano.result.level_changes if e.level == "yellow"]
    assert yellow and all("rain" in " ".join(e.reasons_en) for e in yellow)


def test_dynaslope_markers_never_reach_red(dynaslope):
    peak = _peak(dynaslope)
    assert len(peak) > 20
    assert max(peak.values()) < LEVELS.index("red")
    assert "red" not in dynaslope.final_levels.values()
    # Oslao's >10 m reference changes never become movement: out of the physical range of a
    # crack meter they are quarantined, and what is left raises nothing
    assert peak.get("OSL", 0) <= LEVELS.index("blue")
    assert dynaslope.quarantined.get("impossible_value", 0) > 0
    faults = {f.fault for f in dynaslope.result.faults}
    assert {"spike", "jump"} <= faults


@pytest.mark.parametrize("seed", [12])
def test_voight_creep_warns_early_and_forecasts_failure(seed):
    core = Core(registry(("VOIGHT", [("cm1", "crack"), ("cm2", "crack")])))
    r = datasets.run_voight_closed_loop(core, "VOIGHT", ["cm1", "cm2"], seed=seed)
    tf, onset = r["tf"], r["t_onset"]
    first = {}
    for ts, level in r["levels"]:
        first.setdefault(level, ts)
    # orange comes days before failure, red at least half a day before
    assert tf - first["orange"] > 2 * 86400
    assert tf - first["red"] > 12 * 3600
    assert "red" not in [lv for ts, lv in r["levels"] if ts < onset]
    # the spikes were caught and raised nothing
    assert [f.fault for f in r["faults"]] and {f.fault for f in r["faults"]} == {"spike"}
    # over the last 20 % of the time to failure the forecast is within ±10 % of the time left
    # (down to 2 h before failure; see docs/backtest.md for the last hours)
    T = tf - onset
    late = [(ts, f) for ts, s, f, r2, sg in r["forecasts"] if 2 * 3600 <= tf - ts <= 0.2 * T]
    assert len(late) > 100
    err = np.array([abs(f - tf) / (tf - ts) for ts, f in late])
    assert err.max() <= 0.10, err.max()
    # and a forecast exists all along that stretch (at least hourly)
    times = np.array(sorted({ts for ts, _ in late}))
    assert np.diff(times).max() <= 3600 and times[0] - (tf - 0.2 * T) < 3 * 3600


def test_voight_reasons_carry_velocity_and_acceleration():
    core = Core(registry(("VOIGHT", [("cm1", "crack"), ("cm2", "crack")])))
    r = datasets.run_voight_closed_loop(core, "VOIGHT", ["cm1", "cm2"], seed=12, stop_before_s=5 * 86400)
    tangent = [s for s in r["signals"] if s.detector == "tangent"]
    assert tangent, "the tangent angle raised the accelerating slope"
    assert "acceleration" in tangent[-1].reason_en and "加速度" in tangent[-1].reason_zh
    sid = core.series.get("VOIGHT", "cm1", "width")
    # 5 days before failure under Voight's law (alpha = 2): v = 2 mm/day * 20/5, a = v²/(v0·T) > 0
    assert core.state.v_now[sid] > 4 and core.state.accel[sid] > 0
