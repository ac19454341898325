"""The fleet simulator through a real Mosquitto into the real intake and journal."""
import json
import math
import time

import pytest

from geowarn.daemon.config import IntakeSettings
from geowarn.daemon.intake import Intake
from geowarn.daemon.journal import Journal
from geowarn.daemon.registry import Registry
from geowarn.drivers.formats.national import Format as National
from geowarn.drivers.formats.native import Format as Native
from geowarn.simulators.publisher import Publisher
from geowarn.simulators.scenario import load_scenario
from geowarn.simulators.simulator import Simulator

from helpers import wait_until


def device_times(journal, device_id, channel):
    return [ts for ts, _, dev, _, ch, _ in journal.export_rows() if dev == device_id and ch == channel]


def replies(journal):
    return journal._query("SELECT device, command, ok, msgid FROM replies ORDER BY id")


def send(mosquitto, registry, device, name, params, msgid, protocol="national"):
    fmt = (National if protocol == "national" else Native)(registry)
    with Publisher(mosquitto.url, f"service-{msgid}", clean=True) as pub:
        pub.publish(fmt.command_topic(device.id, device.site), fmt.encode_command(name, params, msgid))
        assert pub.flush()


@pytest.mark.parametrize("protocol", ["national", "native"])
def test_a_simulated_day_of_the_whole_network_is_accepted_in_full(intake, registry, mosquitto, protocol):
    sim = Simulator(registry, mosquitto.url, speed=math.inf, duration_h=24,
                    force_protocol=None if protocol == "national" else "native")
    sim.start()
    assert sim.join(120) and sim.error is None
    sent = sim.counts["readings"] + sim.counts["statuses"]
    assert wait_until(lambda: intake.stats.messages >= sent, timeout=60)
    summary = intake.journal.status_summary()
    assert summary["quarantine"] == {}
    sensors = [d for d in registry.devices if d.kind not in ("alarm", "video")]
    assert sim.counts["statuses"] == len(registry.devices)  # one daily status frame each
    assert len(summary["devices"]) == len(registry.devices)
    assert sum(1 for d in summary["devices"].values() if "last_reading" in d) == len(sensors)
    assert set(summary["readings_by_kind"]) == {d.kind for d in sensors}
    # every reading published is in the journal: gnss carries dh on top of dx dy dz, rain mm + total
    per_msg = {"gnss": 4, "crack": 1, "tilt": 2, "rain": 2, "pressure": 1}
    assert summary["readings"] == sum(per_msg[k] * n for k, n in _messages_by_kind(sim).items())
    # nothing in the future, nothing older than the run
    ts = [row[0] for row in intake.journal.export_rows()]
    assert min(ts) >= sim.start_ts - 1 and max(ts) <= time.time() + 1


def _messages_by_kind(sim):
    from collections import Counter

    from geowarn.simulators.fleet import Fleet

    # the same world, replayed without a broker: deterministic for the seed
    fleet = Fleet(sim.registry, sim.start_ts)
    return Counter(e.device.kind for e in fleet.due(sim.end_ts) if e.what == "reading")


@pytest.mark.parametrize("protocol", ["national", "native"])
def test_emergency_mode_reports_at_the_accelerated_interval_and_normal_mode_restores(
        intake, registry, mosquitto, protocol):
    crack = next(d for d in registry.devices if d.kind == "crack")
    sim = Simulator(registry, mosquitto.url, speed=7200, duration_h=48,
                    force_protocol=None if protocol == "national" else "native")
    sim.start()
    try:
        assert sim.events.wait("hour", 30)
        send(mosquitto, registry, crack, "setworkmode", {"mode": 2}, "m-emergency", protocol)
        cmd = sim.events.wait("command", 30, lambda e: e.detail["msgid"] == "m-emergency")
        assert cmd is not None
        since = lambda: [t for t in device_times(intake.journal, crack.id, "width") if t >= cmd.ts - 1]  # noqa: E731
        assert wait_until(lambda: len(since()) >= 12)
        send(mosquitto, registry, crack, "setworkmode", {"mode": 1}, "m-normal", protocol)
        back = sim.events.wait("command", 30, lambda e: e.detail["msgid"] == "m-normal")
        assert wait_until(lambda: any(t > back.ts + 60 for t in device_times(intake.journal, crack.id, "width")),
                          timeout=30)
    finally:
        sim.stop()
    times = device_times(intake.journal, crack.id, "width")
    before = [t for t in times if t < cmd.ts - 1]
    fast = [t for t in times if cmd.ts - 1 <= t <= back.ts]
    after = [t for t in times if t > back.ts]
    assert all(b - a == crack.interval_s for a, b in zip(before, before[1:]))
    assert fast[0] - cmd.ts < 1  # "report now"
    assert len(fast) >= 12 and all(b - a == crack.accelerated_interval_s for a, b in zip(fast, fast[1:]))
    assert after[0] - back.ts == pytest.approx(crack.interval_s, abs=1)
    assert [(d, c, ok, m) for d, c, ok, m in replies(intake.journal)] == [
        (crack.id, "setworkmode", 1, "m-emergency"), (crack.id, "setworkmode", 1, "m-normal")]
    assert intake.stats.quarantine == {}


def test_sirens_answer_succ_and_a_broken_siren_stays_silent(intake, registry, mosquitto):
    scenario = load_scenario("broken-siren", registry)
    broken = registry.device(next(f.device for f in scenario.faults if f.type == "broken_siren"))
    healthy = next(d for d in registry.devices if d.kind == "alarm" and d.id != broken.id)
    sim = Simulator(registry, mosquitto.url, scenario, speed=3600)
    sim.start()
    try:
        for dev in (broken, healthy):
            send(mosquitto, registry, dev, "alarm", {"type": "L1_LF", "level": 0}, f"a-{dev.id}")
            send(mosquitto, registry, dev, "broadcast", {"b_num": 1, "b_size": 10, "b_content": "请立即撤离"},
                 f"b-{dev.id}")
        answered = lambda: [r for r in sim.events.of("reply")]  # noqa: E731
        assert wait_until(lambda: len(answered()) == 4)
        assert wait_until(lambda: len(replies(intake.journal)) >= 2)
    finally:
        sim.stop()
    by_device = {(e.device, e.detail["cmd"]): e.detail["result"] for e in sim.events.of("reply")}
    assert by_device == {(broken.id, "alarm"): "none", (broken.id, "broadcast"): "none",
                         (healthy.id, "alarm"): "succ", (healthy.id, "broadcast"): "succ"}
    heard = next(e for e in sim.events.of("command") if e.detail["cmd"] == "broadcast")
    assert heard.detail["params"]["b_content"] == "请立即撤离"  # GB2312 on the wire, decoded
    assert sorted(replies(intake.journal)) == sorted([
        (healthy.id, "alarm", 1, f"a-{healthy.id}"), (healthy.id, "broadcast", 1, f"b-{healthy.id}")])


def test_a_siren_that_answers_fail_and_commands_it_cannot_do(intake, registry, mosquitto, tmp_path):
    text = (load_scenario("broken-siren").model_dump_json())
    doc = json.loads(text)
    doc["name"] = "siren-fails"
    doc["faults"][0]["reply"] = "fail"
    path = tmp_path / "siren-fails.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    scenario = load_scenario(path, registry)
    broken = registry.device(scenario.faults[0].device)
    crack = next(d for d in registry.devices if d.kind == "crack")
    sim = Simulator(registry, mosquitto.url, scenario, speed=3600)
    sim.start()
    try:
        send(mosquitto, registry, broken, "alarm", {"type": "L1_LF", "level": 0}, "x1")
        send(mosquitto, registry, crack, "alarm", {"type": "L1_LF", "level": 0}, "x2")  # no siren there
        send(mosquitto, registry, crack, "reboot", {}, "x3")  # unknown command
        assert wait_until(lambda: len(replies(intake.journal)) >= 3)
    finally:
        sim.stop()
    assert sorted(replies(intake.journal)) == sorted([(broken.id, "alarm", 0, "x1"), (crack.id, "alarm", 0, "x2"),
                                                      (crack.id, "reboot", 0, "x3")])


def test_the_simulator_runs_on_the_embedded_broker_in_native_json(registry, tmp_path):
    """What `make demo` has where Mosquitto is not installed: amqtt, MQTT 3.1.1, no $-topics."""
    from geowarn.simulators.embedded_broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        journal = Journal(tmp_path / "journal.sqlite", "normal")
        svc = Intake(registry, IntakeSettings(client_id="geowarn-emb", protocol="3.1.1", batch_wait_ms=5), journal,
                     broker_url=broker.url)
        svc.start()
        try:
            assert svc.wait_connected()
            time.sleep(0.3)
            sim = Simulator(registry, broker.url, speed=7200, duration_h=24, force_protocol="native")
            sim.start()
            alarm = next(d for d in registry.devices if d.kind == "alarm")
            assert sim.events.wait("hour", 30)
            send(broker, registry, alarm, "alarm", {"type": "L1_LF", "level": 0}, "emb-1", "native")
            assert sim.events.wait("reply", 30)
            sim.stop()
            assert sim.error is None
            sent = sim.counts["readings"] + sim.counts["statuses"] + sim.counts["replies"]
            assert wait_until(lambda: svc.stats.messages >= sent, timeout=30)
        finally:
            svc.stop()
        assert svc.stats.quarantine == {} and svc.stats.readings > 0
        assert replies(journal) == [(alarm.id, "alarm", 1, "emb-1")]
        journal.close()


def test_a_drill_can_fast_forward_to_the_onset_react_and_see_the_failure(intake, registry, mosquitto):
    """What a drill runner does in-process: hooks on scenario moments, speed changes, commands."""
    scenario = load_scenario("slope-failure", registry)
    site = registry.site(scenario.accelerations[0].site)
    crack = next(d for d in site.devices if d.kind == "crack")
    one_site = Registry(registry.doc.model_copy(update={"sites": (site,)}))  # the rest would only cost time
    sim = Simulator(one_site, mosquitto.url, scenario, speed=math.inf)

    def on_onset(event):
        sim.clock.set_speed(144000)  # the interesting part, slower: a day in 0.6 s
        send(mosquitto, registry, crack, "setworkmode", {"mode": 2}, "drill-1")

    sim.events.on("onset", on_onset)
    sim.start()
    assert sim.join(120) and sim.error is None
    failure = sim.events.wait("failure", 0)
    tf = sim.failure_times[site.id]
    assert failure.site == site.id and failure.ts == tf == sim.sim_time(scenario.accelerations[0].failure_h)
    assert wait_until(lambda: intake.stats.messages >= sum(sim.counts[k] for k in ("readings", "statuses", "replies")))
    times = device_times(intake.journal, crack.id, "width")
    fast = [b - a for a, b in zip(times, times[1:]) if a >= tf - 24 * 3600]
    assert fast and set(fast) == {crack.accelerated_interval_s}  # every minute through the last day
    assert tf - 60 <= times[-1] < tf  # and nothing after the slope has gone
    widths = [v for ts, _, dev, _, ch, v in intake.journal.export_rows() if dev == crack.id]
    assert widths[-1] - widths[0] > 20  # tens of millimetres of opening
    assert intake.stats.quarantine == {}
