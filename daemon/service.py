"""The running service: wires the stages together and keeps them healthy.

driver → journal (intake) → core → alert lifecycle → outbox → apprise / siren commands,
with the InfluxDB export beside the journal. Each stage owns its state; the service only
passes what one stage commits to the next, ticks the time-driven ones, reloads configuration
on SIGHUP and reports health to systemd.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .alerts.events import DeviceFault, SiteLevelChange
from .alerts.service import AlertReload, AlertService
from .bridge import lifecycle_events
from .config import RESTART_SETTINGS_META, Config, ConfigError, load_config, restart_changes, restart_settings
from .core.engine import Core
from .intake import Committed, Intake
from .influx_export import ExportSetup
from .jobs import Jobs
from .journal import Journal, Retention, journal_path
from .model.results import CoreResult
from .registry import Registry
from .rules import Rules, rules_for_config
from .sdnotify import Notifier
from .shard import Shard
from .field.desk import FieldDesk, FieldSetup
from .signals import Signals
from .video.snapshots import Snapshots, VideoSetup
from .weather.desk import WeatherDesk, WeatherSetup
from .weather.mqtt import WeatherSubscriber
from .steady_clock import SteadyClock

log = logging.getLogger("geowarn.service")

SILENCE_DEGRADED_S = 6 * 3600  # no reading from the whole network for this long is suspicious
EXPORT_BACKLOG_DEGRADED = 100_000  # journal rows InfluxDB has not got yet
OUTBOX_OVERDUE_S = 300.0  # a message still undelivered this long after it was queued
HTTP_RETRY_S = 30.0  # a failed HTTP start is tried again this often (health says failing meanwhile)


class ReloadRefused(Exception):
    pass


@dataclass(frozen=True)
class Reload:
    """A new configuration and everything built from it that could fail to build: checked whole
    before any part changes, then handed to every part at once."""

    loaded: Config  # as the file says: every site of the network (the intake's view)
    config: Config  # this instance's part
    rules: Rules
    alerts: AlertReload
    export: ExportSetup | None  # what the InfluxDB exporter is built from (None: no export)


class Service:
    def __init__(self, config: Config, state_dir: str | Path, broker_url: str | None = None,
                 config_path: str | None = None, notifier: Notifier | None = None, drill: bool = False,
                 http: bool = True, clock: Callable[[], float] | None = None):
        self.shard = Shard.of(config.settings.shard)
        network = config.registry  # every site: the intake must know whose a message is
        self.restart_settings = restart_settings(config)  # what a reload may not change
        config = own_part(config, self.shard)  # downstream of the intake, this instance's sites only
        self.config = config
        self.config_path = config_path
        self.state_dir = Path(state_dir)
        self.broker_url = broker_url
        self.notifier = notifier or Notifier()
        self.drill = drill  # every alert and message of a drill run is tagged 【演练】/DRILL
        # wall time that does not step (steady_clock.py), or a drill's simulated clock
        self.clock = clock = clock or SteadyClock()
        # observers of every lifecycle event (drill reports); they must not block
        self.listeners: list[Callable[[SiteLevelChange | DeviceFault], None]] = []
        self.started = time.time()
        # rows are stamped received on the service's clock: retention follows a drill's simulated time
        self.journal = Journal(journal_path(self.state_dir), config.settings.journal.synchronous, clock=clock)
        self.journal.set_meta("shard", f"{self.shard.index}/{self.shard.count}")  # for `geowarn status`
        self.journal.set_meta(RESTART_SETTINGS_META, json.dumps(self.restart_settings, sort_keys=True))
        self.retention = Retention(self.journal.path, config.settings.journal.retention_days,
                                   cursors=self.export_cursors)
        rules = rules_for_config(config)
        self.core = Core(config.registry, rules)
        self.jobs = Jobs()  # the periodic jobs, each isolated; /healthz names one that keeps failing
        # sites whose devices a weather warning accelerated: kept by the weather desk, and the
        # lifecycle's all-clear leaves their reporting accelerated
        weather_held: set[str] = set()
        self.alerts = AlertService(config, self.state_dir, broker_url, clock=clock, jobs=self.jobs,
                                   keep_accelerated=weather_held.__contains__)
        self._lock = threading.RLock()  # core and lifecycle are fed from the intake and the ticker
        # the one way in for signals from people, the weather and cameras (it takes the lock)
        self.signals = Signals(self._lock, self.core, self.journal, self._judge, self._handle)
        field, weather, video = part_setups(config, rules)
        self.field = FieldDesk(self.state_dir, field, self.signals, self.journal)  # community monitors' reports
        # meteorological risk warnings
        self.weather = WeatherDesk(self.state_dir, weather, self.signals, self.alerts.manager,
                                   self.field.store.last_accepted, weather_held)
        # stills from video units when an alert rises
        self.video = Snapshots(self.state_dir, video, self.alerts.manager.tell, self.signals.fault)
        # warnings on the broker the intake uses (the flag, or the configured one)
        self.weather_mqtt = WeatherSubscriber(self.weather, broker_url, config.settings.intake)
        self.http = None
        if http:
            from .http.server import HttpServer

            self.http = HttpServer(self, config.settings.http)
        # the intake screens timestamps against the wall clock, whatever clock judges them (but
        # a step back of the wall clock must not make devices' correct times look ahead)
        self.intake = Intake(network, config.settings.intake, self.journal, sink=self._on_committed,
                             broker_url=broker_url, shard=self.shard,
                             clock=clock.latest if isinstance(clock, SteadyClock) else time.time)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._export = ExportSetup.of(config)
        self.exporter = self._export.exporter(self.journal.path) if self._export else None
        self._exporter_thread: threading.Thread | None = None
        self._exporter_stop = threading.Event()
        self._reloading = threading.Lock()

    # --- stages ------------------------------------------------------------------------------

    def _on_committed(self, committed: Committed) -> None:
        """Called in the intake's writer thread right after a batch is committed: the fast path
        from a reading to a siren command runs here, without a hop through another thread."""
        entry = committed.entry
        with self._lock:
            result = self.core.process_readings(entry.readings) if entry.readings else CoreResult()
            for status in entry.statuses:
                result.extend(self.core.observe_status(status))
            self._judge(result)
        self.alerts.on_committed(committed)

    def _judge(self, result: CoreResult) -> None:
        for event in lifecycle_events(result, self.drill):
            self._handle(event)

    def _handle(self, event: SiteLevelChange | DeviceFault) -> int | None:
        for listener in self.listeners:
            listener(event)
        try:
            alert_id = self.alerts.handle(event)
        except Exception:  # one bad event must not stop the others
            log.exception("alert lifecycle failed on %s", event)
            return None
        if isinstance(event, SiteLevelChange):
            self.video.on_event(event, alert_id)  # after the warning, never before it
        return alert_id

    def _tick(self, now: float) -> None:
        """Time-driven work under the lock, each job on its own (jobs.py): deadman checks, weather
        warnings (the alert service ticks its own repeats and escalation; retention runs off the
        lock)."""
        self.jobs.run("deadman checks", lambda: self._judge(self.core.tick(now)))
        self.jobs.run("weather warnings", lambda: self.weather.tick(now))

    def export_cursors(self) -> Mapping[str, int] | None:
        """What InfluxDB has confirmed, per stream (None: no export): retention prunes behind it."""
        exporter = self.exporter
        return exporter.cursors() if exporter is not None else None

    def _start_exporter(self) -> None:
        if self.exporter is not None:
            self._exporter_stop = threading.Event()
            self._exporter_thread = threading.Thread(target=self.exporter.run, args=(self._exporter_stop,),
                                                     name="geowarn-influx-export", daemon=True)
            self._exporter_thread.start()

    def _stop_exporter(self) -> None:
        self._exporter_stop.set()
        if self._exporter_thread is not None:
            self._exporter_thread.join(10)
            self._exporter_thread = None
        if self.exporter is not None:
            self.exporter.close()

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def network(self) -> Registry:
        """Every site of the network (the intake's view); `config.registry` is this shard's part."""
        return self.intake.registry

    def start(self) -> None:
        # windows warm from the journal before anything is judged; what they held was already reported
        t0 = time.monotonic()
        with self._lock:  # signals from people and the weather first, so warming fuses with them
            self.field.restore(self.clock())
            self.weather.restore(self.clock())
        last = self.core.warm(self.journal)
        log.info("detector windows warmed from the journal up to row %d in %.1f s", last, time.monotonic() - t0)
        self.alerts.start()
        if self.http is not None:
            self.http.start()
        self.intake.start()
        self.weather_mqtt.start()
        self._start_exporter()
        self._ticker = threading.Thread(target=self._tick_loop, name="geowarn-ticker", daemon=True)
        self._ticker.start()
        self.notifier.ready(self.status_line())
        log.info("geowarn running: %d sites, %d devices%s, state in %s", len(self.config.registry.sites),
                 len(self.config.registry.devices), "" if self.shard.whole else f" ({self.shard.label})",
                 self.state_dir)

    def stop(self) -> None:
        self.notifier.stopping()
        self._stop.set()
        self.intake.stop()  # commits and acknowledges what it holds
        self.weather_mqtt.stop()
        if self._ticker is not None:
            self._ticker.join(5)
        if self.http is not None:
            self.http.stop()
        self.video.close()  # stills in flight are kept or become faults before the lifecycle stops
        self.alerts.stop()  # in-flight deliveries finish or stay in the outbox
        self._stop_exporter()
        self.field.close()
        self.weather.close()
        self.journal.close()
        log.info("geowarn stopped")

    def run(self, until: threading.Event, duration: float | None = None) -> None:
        self.start()
        deadline = time.monotonic() + duration if duration else None
        try:
            while not until.wait(0.5):
                if deadline is not None and time.monotonic() > deadline:
                    break
        finally:
            self.stop()

    def _tick_loop(self) -> None:
        interval = min(5.0, self.notifier.watchdog_interval_s or 5.0)
        last_status = ""
        http_retry = time.monotonic() + HTTP_RETRY_S
        while not self._stop.wait(1.0 if interval > 1 else interval):
            now = self.clock()
            try:
                with self._lock:
                    self._tick(now)
            except Exception:
                log.exception("tick failed")
            if self.retention.due(now):  # off the lock: pruning may take a while
                self.jobs.run("journal retention", partial(self.retention.run, now), failing_after=1)
            if self.http is not None and time.monotonic() >= http_retry:
                http_retry = time.monotonic() + HTTP_RETRY_S
                self.http.retry()  # the port may be free by now
            state, _ = self.health()
            if state != "failing":  # systemd restarts us if this stops
                self.notifier.watchdog()
            line = self.status_line()
            if line != last_status:
                self.notifier.status(line)
                last_status = line

    # --- reload ------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the configuration and hand it to every part at once: the intake (the network's
        sites and devices), the core (its part, the rules), the alert lifecycle and the outbox
        worker (contacts, notify, escalation, sirens, sampling, CAP), the field and weather desks
        and the video stills, retention and the InfluxDB export. Readings keep
        flowing: the intake's batches and the ticker wait on the lock for the moment of the swap.
        A file that is broken, or changes what only a restart can (RESTART_ONLY), is refused by
        name and the running configuration stays."""
        with self._reloading:  # one at a time: SIGHUPs in a row each start a thread
            return self._reload()

    def _reload(self) -> bool:
        try:
            prepared = self._prepare(load_config(self.config_path))
        except (ConfigError, ReloadRefused) as e:
            log.error("reload refused, keeping the running configuration: %s", e)
            return False
        except Exception as e:  # noqa: BLE001  -- a part that cannot be built refuses the reload, never ends us
            log.error("reload refused, keeping the running configuration: %s: %s", type(e).__name__, e)
            return False
        new = prepared.config
        with self._lock:
            self.intake.set_registry(prepared.loaded.registry)
            self.core.reconfigure(new.registry, prepared.rules)  # windows and levels are kept
            self.alerts.reconfigure(prepared.alerts)
            field, weather, video = part_setups(new, prepared.rules)
            self.field.reconfigure(field)
            self.weather.reconfigure(weather)
            self.video.reconfigure(video)
            self.retention.days = new.settings.journal.retention_days
            self.config = new
        if prepared.export != self._export:  # beside the pipeline: rebuilt after the swap
            self._stop_exporter()
            self._export = prepared.export
            self.exporter = prepared.export.exporter(self.journal.path) if prepared.export else None
            self._start_exporter()
        log.info("configuration reloaded: %d sites, %d devices", len(new.registry.sites), len(new.registry.devices))
        return True

    def _prepare(self, loaded: Config) -> Reload:
        changed = restart_changes(self.restart_settings, restart_settings(loaded))
        if changed:
            why = " (re-sharding needs a restart of every instance, docs/scale-out.md)" if "shard" in changed else ""
            raise ReloadRefused(f"only a restart changes {', '.join(changed)}{why}")
        config = own_part(loaded, self.shard)
        return Reload(loaded, config, rules_for_config(loaded), AlertService.prepare(config),
                      ExportSetup.of(config))

    @contextmanager
    def core_read(self) -> Iterator[Core]:
        """The core held still, for readers on other threads (the console): the intake's writer
        and the ticker change its arrays under the same lock."""
        with self._lock:
            yield self.core

    # --- health ------------------------------------------------------------------------------

    def health(self) -> tuple[str, list[str]]:
        """ok / degraded / failing, with the reasons."""
        s = self.intake.stats
        failing, degraded = [], []
        if s.last_error:
            failing.append(f"journal failing: {s.last_error}")
        if self.http is not None and self.http.failure:  # no API, console, field reports or /healthz
            failing.append(f"HTTP server {self.http.failure}")
        if not s.connected and time.time() - self.started > 10:
            degraded.append("broker disconnected")
        last = s.last_commit or self.started
        if time.time() - last > SILENCE_DEGRADED_S:
            degraded.append(f"no readings for {(time.time() - last) / 3600:.1f} h")
        if self.exporter is not None:
            backlog = sum(self.exporter.backlog().values())
            if self.exporter.stats.failures:  # the database is out: data waits in the journal
                degraded.append(f"export lagging: {backlog} rows waiting for InfluxDB ({self.exporter.stats.last_error})")
            elif backlog > EXPORT_BACKLOG_DEGRADED:
                degraded.append(f"export backlog {backlog} rows")
        degraded += self.jobs.failing()
        degraded += [f"weather warning {wid} set aside: {why}" for wid, why in self.weather.set_aside(self.clock())]
        overdue = self._outbox_overdue()
        if overdue:
            degraded.append(f"outbox backlog: {overdue} deliveries still undelivered after {OUTBOX_OVERDUE_S:.0f} s")
        if not self.shard.whole and not self.config.registry.sites:
            degraded.append(f"{self.shard.label} owns no site")
        if failing:
            return "failing", failing + degraded
        return ("degraded", degraded) if degraded else ("ok", [])

    def shard_health(self) -> dict:
        """What /healthz adds for a sharded instance: which part of the network it watches."""
        if self.shard.whole:
            return {}
        return {"shard": {**self.shard.describe(self.network), "not_my_shard": self.intake.stats.not_my_shard,
                          "client_id": self.config.settings.intake.client_id}}

    def _outbox_overdue(self) -> int:
        try:
            return self.alerts.status.overdue(self.clock() - OUTBOX_OVERDUE_S)
        except sqlite3.Error as e:  # a journal that cannot be read says so elsewhere (the intake)
            log.warning("outbox not readable for health: %s", e)
            return 0

    def status_line(self) -> str:
        s = self.intake.stats
        state, reasons = self.health()
        shard = "" if self.shard.whole else f"{self.shard.label}, {s.not_my_shard} not mine; "
        return (f"{state}; {shard}{'connected' if s.connected else 'disconnected'}; {s.readings} readings, "
                f"{sum(s.quarantine.values())} quarantined" + (f"; {reasons[0]}" if reasons else ""))


def part_setups(config: Config, rules: Rules) -> tuple[FieldSetup, WeatherSetup, VideoSetup]:
    """What the field and weather desks and the video stills each read of a configuration."""
    s = config.settings
    return (FieldSetup(config.registry, s.field, rules.field_rule),
            WeatherSetup(config.registry, rules.weather, s.sampling.accelerate_at),
            VideoSetup(config.registry, s.video))


def own_part(config: Config, shard: Shard) -> Config:
    """The configuration one instance acts on: its shard's sites, and MQTT client ids of its own
    (every connection derives its id from the intake's)."""
    if shard.whole:
        return config
    intake = config.settings.intake
    settings = config.settings.model_copy(update={"intake": intake.model_copy(
        update={"client_id": shard.client_id(intake.client_id)})})
    return Config(source=config.source, registry=shard.view(config.registry), settings=settings)
