"""After a restart the core warms its windows from the journal before judging anything."""
import numpy as np

from geowarn.daemon.core import Core
from geowarn.daemon.journal import Entry, Journal
from geowarn.drivers.base import Reading

from corehelp import T0, registry


def _readings():
    rng = np.random.default_rng(3)
    out = []
    for i in range(24 * 6):  # a day of rain every 10 minutes, a storm in the middle
        t = T0 + i * 600.0
        out.append((Reading("r1", "rain", "mm", t, 8.0 if 60 <= i < 66 else 0.0), "S1"))
        if i % 12 == 0:
            out.append((Reading("c1", "crack", "width", t, 10 + rng.normal(0, 0.2)), "S1"))
    return out


def test_warm_rebuilds_state_silently(tmp_path):
    reg = registry(("S1", [("r1", "rain"), ("c1", "crack")]))
    rows = _readings()
    live = Core(reg)
    changes = []
    with Journal(tmp_path / "j.sqlite", "normal") as j:
        for k in range(0, len(rows), 7):  # the intake commits in small batches
            j.write(Entry(readings=rows[k:k + 7]))
            changes += live.process_readings(rows[k:k + 7]).level_changes
        assert [c.level for c in changes] == ["blue", "yellow"]
        warm = Core(reg)
        last = warm.warm(j, page=50)
        assert last == j.count_readings()  # rowids run 1..n: the cursor is the last row
        assert warm.site_levels() == live.site_levels() == {"S1": "yellow"}
        for a, b in ((warm, live),):
            n = len(a.series)
            assert np.array_equal(a.state.level[:n], b.state.level[:n])
            assert np.array_equal(a.win.count[:n], b.win.count[:n])
        # the next live batch after the restart: the level is not announced again
        nxt = [(Reading("r1", "rain", "mm", T0 + 145 * 600.0, 0.0), "S1")]
        j.write(Entry(readings=nxt))
        assert warm.process_readings(nxt).level_changes == []
        assert warm.warm(j, after=last) > last  # a cursor: only what came after


def test_an_old_storm_in_a_long_page_is_not_a_current_level(tmp_path):
    reg = registry(("S1", [("r1", "rain")]))
    storm = [(Reading("r1", "rain", "mm", T0 + i * 600.0, 10.0), "S1") for i in range(6)]  # 60 mm: orange 1 h
    dry = [(Reading("r1", "rain", "mm", T0 + 2 * 86400 + i * 3600.0, 0.0), "S1") for i in range(30)]
    live = Core(reg)
    live.process_readings(storm)
    for r in dry:
        live.process_readings([r])
    with Journal(tmp_path / "j.sqlite", "normal") as j:
        j.write(Entry(readings=storm + dry))
        warm = Core(reg)
        warm.warm(j)  # one page holds it all
    assert live.site_levels() == warm.site_levels() == {"S1": "normal"}
