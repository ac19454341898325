"""The soak, CI-sized: the same runner as bench/soak.py (real Mosquitto, the service in a process
of its own on a simulated clock), 2.5 simulated days with half a day of journal retention; and the
retention bug it found: pruning judged rows by the wall clock, so a simulated month never pruned."""
from geowarn.daemon.journal import Entry
from geowarn.daemon.service import Service
from geowarn.drivers.base import Reading
from geowarn.simulators.soak import SoakPlan, run_soak, soak_config

DAY = 86400.0


def test_soak_ci_sized_holds_every_property():
    plan = SoakPlan(days=2.5, wall_s=30.0, retention_days=0.5, sample_s=0.5, rss_growth_max=0.25,
                    rows_growth_max=0.15)
    report = run_soak(plan)
    failed = [c for c in report["checks"] if not c["passed"]]
    assert not failed, failed
    assert report["passed"]
    # the properties were really exercised: devices went silent, retention pruned
    dead = report["deadman"]
    assert dead["expected"] >= 4 and dead["raised"] == dead["expected"] and not dead["unexpected"]
    assert any(d["returns"] and d["all_clear"] for d in dead["devices"])
    assert any(not d["returns"] and not d["all_clear"] for d in dead["devices"])
    j = report["journal"]
    assert j["rows_final"] < j["rows_written"] / 2  # 0.5 of 2.5 days kept, about a fifth
    assert report["load_ratio"] >= 10
    assert report["service"]["messages"] == report["messages"] > 0


def _reading(device, ts):
    return Reading(device, "crack", "width", ts, 1.0)


def test_retention_follows_the_service_clock(tmp_path):
    """A simulated month ago is not a wall-clock month ago: rows are stamped received and pruned
    on the service's clock."""
    cfg = soak_config("json://127.0.0.1:9/{site}/{role}/{phone}", retention_days=1.0)
    dev = next(d for d in cfg.registry.devices if d.kind == "crack")
    sim = [1_600_000_000.0]  # a simulated clock, years in the past
    svc = Service(cfg, tmp_path / "state", http=False, clock=lambda: sim[0])
    try:
        for day in range(5):  # one reading received on each of five simulated days
            sim[0] = 1_600_000_000.0 + day * DAY
            svc.journal.write(Entry(readings=[(_reading(dev.id, sim[0]), dev.site)]))
        received = [r[0] for r in svc.journal._query("SELECT received_ms FROM readings ORDER BY received_ms")]
        assert received == [int((1_600_000_000.0 + d * DAY) * 1000) for d in range(5)]
        svc.retention.tick(sim[0] + 0.5 * DAY)  # half a day after the last: only it is within a day
        kept = [r[0] for r in svc.journal._query("SELECT ts_ms FROM readings")]
        assert kept == [int(sim[0] * 1000)]
    finally:
        svc.journal.close()
