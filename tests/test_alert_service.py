"""AlertService: the wiring the running service uses (manager, in-process worker, command
sender, ticker), with the real intake feeding replies through `on_committed`."""
import dataclasses
import json
import time

from geowarn.daemon.alerts.events import SiteLevelChange
from geowarn.daemon.alerts.service import AlertService
from geowarn.daemon.config import IntakeSettings, load_config
from geowarn.daemon.intake import Intake
from geowarn.daemon.journal import Journal
from geowarn.simulators.alarm_devices import AlarmDevices
from geowarn.simulators.http_receiver import HttpReceiver

from alert_fixtures import role_of, write_config
from helpers import wait_until


def test_the_service_wiring_sounds_confirms_and_ticks_by_itself(tmp_path, mosquitto):
    with HttpReceiver() as rx, AlarmDevices(mosquitto.url, silent={"S2-ALARM"}) as devices:
        cfg = load_config(write_config(tmp_path / "geowarn.yaml", rx.port, mosquitto.url,
                                       sirens={"reply_timeout_s": 0.5, "retries": 0}))
        svc = AlertService(cfg, tmp_path / "state", mosquitto.url, tick_s=0.1).start()
        journal = Journal(tmp_path / "state" / "journal.sqlite")
        intake = Intake(cfg.registry, IntakeSettings(client_id="geowarn-svc-test", batch_wait_ms=2), journal,
                        broker_url=mosquitto.url, sink=svc.on_committed)
        intake.start()
        try:
            assert intake.wait_connected() and svc.sender.wait_connected()
            for site in ("S1", "S2"):
                svc.handle(SiteLevelChange(site, time.time(), "red", "normal", ["切线角 86°"]))
            rows = lambda: {r[0]: r[1] for r in svc.manager.db.query(  # noqa: E731
                "SELECT device, status FROM outbox WHERE purpose = 'siren' AND command = 'alarm'")}
            # S1 answers (confirmed through the intake); S2 stays silent: the ticker fails it
            assert wait_until(lambda: rows() == {"S1-ALARM": "confirmed", "S2-ALARM": "failed"}, 30), rows()
            failed = lambda: [r for r in rx.received  # noqa: E731  (S2's monitor reads English)
                              if "声光报警器未响应" in r.title or "alarm did not respond" in r.title]
            assert wait_until(lambda: len(failed()) >= 2, 30)
            failed = failed()
            assert {role_of(r.path) for r in failed} == {"monitor", "technician"}
            assert all(r.path.startswith("/S2/") for r in failed)
            assert len([h for h in devices.heard if h.name == "alarm"]) == 2  # one each: no duplicate sends
        finally:
            intake.stop()
            journal.close()
            svc.stop()


def test_acknowledgement_over_mqtt_and_malformed_ones_are_dropped(tmp_path, mosquitto):
    from geowarn.simulators.publisher import Publisher
    with HttpReceiver() as rx:
        cfg = load_config(write_config(tmp_path / "geowarn.yaml", rx.port, mosquitto.url))
        svc = AlertService(cfg, tmp_path / "state", mosquitto.url, tick_s=3600).start()
        try:
            aid = svc.handle(SiteLevelChange("S1", time.time(), "orange", "normal", ["雨量 24 h 132 mm"]))
            other = svc.handle(SiteLevelChange("S2", time.time(), "orange", "normal", ["雨量 24 h 132 mm"]))
            with Publisher(mosquitto.url, "handset-1", clean=True) as handset:
                assert svc.acks.subscribed.wait(10)
                for junk in (b"not json", b'{"alert": "A1"}', b'{"alert": "A999", "by": "x"}', b"[1,2]"):
                    handset.publish("geowarn/v1/ack", junk)
                # an acknowledgement naming another site than the alert's is not for this alert
                handset.publish("geowarn/v1/ack", json.dumps({"alert": f"A{other}", "by": "张", "site": "S1"}))
                handset.publish("geowarn/v1/ack", json.dumps({"alert": f"A{aid}", "by": "王监测", "site": "S1"}))
                assert handset.flush(10)
            assert wait_until(lambda: svc.manager.get(aid)[0].acked_at is not None, 10)
            alert = svc.manager.get(aid)[0]
            assert alert.acked_by == "王监测" and alert.acked_via == "mqtt" and alert.status == "open"
            assert svc.manager.get(other)[0].acked_at is None  # the junk acknowledged nothing
        finally:
            svc.stop()


def test_a_sharded_instance_takes_only_acknowledgements_naming_its_own_site(tmp_path, mosquitto):
    """Shards number alerts each on their own: `A1` exists in every instance."""
    from geowarn.daemon.shard import ShardSettings
    from geowarn.simulators.publisher import Publisher
    with HttpReceiver() as rx:
        cfg = load_config(write_config(tmp_path / "geowarn.yaml", rx.port, mosquitto.url))
        sharded = cfg.settings.model_copy(update={"shard": ShardSettings(index=0, count=2, pin={"S1": 0, "S2": 1})})
        svc = AlertService(dataclasses.replace(cfg, settings=sharded), tmp_path / "state", mosquitto.url,
                           tick_s=3600).start()
        try:
            aid = svc.handle(SiteLevelChange("S1", time.time(), "orange", "normal", ["雨量 24 h 132 mm"]))
            with Publisher(mosquitto.url, "handset-2", clean=True) as handset:
                assert svc.acks.subscribed.wait(10)
                handset.publish("geowarn/v1/ack", json.dumps({"alert": f"A{aid}", "by": "无站点"}))
                handset.publish("geowarn/v1/ack", json.dumps({"alert": f"A{aid}", "by": "别的分片", "site": "S2"}))
                assert handset.flush(10)
                time.sleep(1.0)
                assert svc.manager.get(aid)[0].acked_at is None
                handset.publish("geowarn/v1/ack", json.dumps({"alert": f"A{aid}", "by": "王监测", "site": "S1"}))
                assert handset.flush(10)
            assert wait_until(lambda: svc.manager.get(aid)[0].acked_at is not None, 10)
            assert svc.manager.get(aid)[0].acked_by == "王监测"
        finally:
            svc.stop()
