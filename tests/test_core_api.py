"""The core's contract: fixed memory, ring windows, stale and bad input, the network at large."""
import numpy as np
import pytest

from geowarn.daemon.config import load_config
from geowarn.daemon.core import Core
from geowarn.daemon.core.buffers import RAW
from geowarn.simulators.network_readings import network_readings

from corehelp import T0, registry


def test_memory_per_series_is_fixed_and_under_64_kib():
    core = Core(registry(("S1", [("c1", "crack")])))
    assert core.memory_per_series() <= 64 * 1024
    sid = core.intern("S1", "c1", "crack", "width")
    before = core.win.raw_v.nbytes
    t = T0 + np.arange(5000) * 60.0
    core.process(np.full(5000, sid), t, 10 + np.sin(t / 3600))
    assert core.win.raw_v.nbytes == before  # no growth with data, only with series
    assert core.win.count[sid] == 5000
    ts, v, present = core.win.raw_last(np.array([sid]), RAW)
    assert present.all() and ts[0, -1] == t[-1] and ts[0, 0] == t[-RAW]


def test_stale_duplicate_and_bad_input():
    core = Core(registry(("S1", [("c1", "crack")])))
    sid = core.intern("S1", "c1", "crack", "width")
    r = core.process([sid, sid, sid], [T0, T0, T0 + 60], [1.0, 1.0, np.nan])
    assert (r.readings, r.stale) == (1, 2)
    assert core.process([sid], [T0 - 60], [1.0]).stale == 1  # older than what the series holds
    assert core.process([sid, sid], [T0 - 60, T0 - 30], [1.0, 1.0]).stale == 2
    with pytest.raises(ValueError, match="differ in length"):
        core.process([sid], [T0, T0 + 1], [1.0])
    with pytest.raises(ValueError, match="unknown series id 7"):
        core.process([7], [T0], [1.0])
    assert core.process([], [], []).readings == 0
    r = core.process([sid, sid], [T0 + 120, T0 + 7200], [1.0, 1.0], now=T0 + 180)
    assert (r.readings, r.stale) == (1, 1)  # an hour ahead of the clock: dropped


def test_thirty_calm_days_of_the_network_stay_calm():
    """The 80-site example network with slow creep and ordinary storms: the deformation
    detectors stay quiet, faults stay empty, only rain may raise a level."""
    cfg = load_config()
    core = Core(cfg.registry)
    nr = network_readings(cfg.registry, 30)
    m = np.array([core.intern(*k) for k in zip(nr.site, nr.device, nr.kind, nr.channel)])
    sid = m[nr.series]
    day = np.floor(nr.ts / 86400)
    cuts = [0, *(np.flatnonzero(np.diff(day)) + 1), len(sid)]
    changes, faults = [], []
    for a, b in zip(cuts, cuts[1:]):
        r = core.process(sid[a:b], nr.ts[a:b], nr.value[a:b])
        changes += r.level_changes
        faults += r.faults
    assert len(core.series) == 577
    assert not [f for f in faults if f.fault not in ("spike",)]
    # Gaussian tails only: well under one false spike per 10,000 readings
    assert len([f for f in faults if f.fault == "spike"]) < len(sid) / 10_000
    for e in changes:
        assert all(ev["channel"] == "mm" for ev in e.evidence), e.reasons_en
