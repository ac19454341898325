"""Alerts inside the running service, wired once: the lifecycle manager, an in-process outbox
worker with its MQTT command sender, the MQTT acknowledgement listener, and a ticker thread. The service feeds it events from the
core and committed intake batches (for command replies); everything else runs by itself."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..intake import Committed
from ..jobs import Jobs
from ..journal import journal_path
from ..shard import Shard
from .delivery import AppriseNotifier
from .events import DeviceFault, SiteLevelChange
from .manager import AlertManager
from .mqtt_ack import AckListener
from .reader import AlertReader
from .sender import CommandSender
from .settings import RetrySettings
from .setup import AlertSetup
from .worker import OutboxWorker
from ..cap.publisher import CapPublisher, CapSetup


@dataclass(frozen=True)
class AlertReload:
    setup: AlertSetup
    notifier: AppriseNotifier
    retry: RetrySettings
    cap: CapSetup | None  # None: CAP off (`cap.enabled` changes only with a restart)


class AlertService:
    def __init__(self, config: Config, state_dir: str | Path, broker_url: str | None = None, *,
                 tick_s: float = 1.0, deliver: bool = True, clock: Callable[[], float] = time.time,
                 jobs: Jobs | None = None,
                 keep_accelerated: Callable[[str], bool] | None = None):
        s = config.settings
        path = journal_path(state_dir)
        self.tick_s = tick_s
        self.jobs = jobs or Jobs()  # the service's, so /healthz names a tick that keeps failing
        self.clock = clock  # a drill runs the lifecycle on the simulator's clock
        self.sender = CommandSender(broker_url, s.intake) if deliver else None
        prepared = self.prepare(config)
        # deliver=False: a separate `geowarn deliver` process drains the outbox
        self.worker = (OutboxWorker(path, notifier=prepared.notifier, sender=self.sender,
                                    retry=prepared.retry, synchronous=s.journal.synchronous, clock=clock)
                       if deliver else None)
        self.cap = CapPublisher(s.cap, prepared.setup.renderer, path, s.journal.synchronous) if prepared.cap else None
        self.manager = AlertManager(config.registry, path, setup=prepared.setup,
                                    wake=self.worker.wake if self.worker else None,
                                    express=self.worker,
                                    synchronous=s.journal.synchronous, clock=clock, cap=self.cap,
                                    keep_accelerated=keep_accelerated)
        topic = s.notify.mqtt_ack_topic
        sharded = not Shard.of(s.shard).whole
        self.acks = AckListener(self.manager, topic, broker_url, s.intake, sharded=sharded) if topic else None
        self.http_settings = s.http
        self.path = path
        self.status = AlertReader(path)  # health, metrics and drills read here, off the siren's path
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def _parts(self) -> list:
        """The optional threads, in start order (stopped in reverse)."""
        return [p for p in (self.sender, self.worker, self.acks) if p is not None]

    def start(self) -> "AlertService":
        for part in self._parts():
            part.start()
        self._ticker = threading.Thread(target=self._tick_loop, name="geowarn-alerts-tick", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(10)
        for part in reversed(self._parts()):
            part.stop()
        self.manager.close()
        self.status.close()
        if self.cap is not None:
            self.cap.close()

    @staticmethod
    def prepare(config: Config) -> "AlertReload":
        """Everything a reload hands the alert stages, built (and so checked) before any of it
        applies: an unreadable apprise file or template refuses the reload."""
        s = config.settings
        setup = AlertSetup.build(config.registry, s.notify, s.sirens, s.sampling)
        return AlertReload(setup, AppriseNotifier(s.notify.apprise_config), s.notify.retry,
                           CapSetup.build(s.cap, setup.renderer) if s.cap.enabled else None)

    def reconfigure(self, prepared: "AlertReload") -> None:
        """Apply a reload: the lifecycle (sites, contacts, notify, escalation, sirens, sampling,
        CAP) and the outbox worker's notify settings."""
        self.manager.reconfigure(prepared.setup, prepared.cap)
        if self.worker is not None:
            self.worker.reconfigure(prepared.notifier, prepared.retry)

    def handle(self, event: SiteLevelChange | DeviceFault) -> int | None:
        return self.manager.handle(event)

    def on_committed(self, committed: Committed) -> None:
        """The intake's sink (or part of it): command replies confirm sirens and sampling changes."""
        for reply in committed.entry.replies:
            self.manager.on_reply(reply)

    def reader(self) -> AlertReader:
        """A connection of its own to the alert tables (the console's), closed by its user."""
        return AlertReader(self.path)

    def http_app(self, client_max_size: int = 64 * 1024):
        from ..http.app import make_app
        return make_app(self.manager, self.http_settings, client_max_size=client_max_size)

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.tick_s):  # one bad tick must not end repeats and escalation
            self.jobs.run("alert repeats and escalation", lambda: self.manager.tick(self.clock()))
