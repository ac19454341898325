"""The fleet simulator at work: the fleet's emissions published through MQTT on a simulated
clock, downlink commands obeyed and answered, scenario moments announced as events.

In-process use (a drill runner):

    sim = Simulator(registry, broker_url, scenario=load_scenario("slope-failure", registry), speed=3600)
    sim.events.on("failure", lambda e: ...)      # or sim.events.wait("failure", timeout)
    sim.start()                                   # a thread; returns at once
    ...
    sim.stop()                                    # or sim.join() for the end of the scenario

The simulated clock (`sim.clock`) never runs ahead of the wall clock: a run of D hours at speed
S starts D·(1 − 1/S) hours in the past and ends at "now" (see clock.py). Readings carry
simulated timestamps; `sim.failure_times` gives each failing site's t_f on that clock.
"""
from __future__ import annotations

import logging
import queue
import threading

from geowarn.daemon.registry import Registry

from .clock import SimClock
from .commands import SUBSCRIPTIONS, BadCommand, Command, encode_reply, parse_command
from .fleet import Emission, Fleet
from .runner import HOUR, PacedRunner
from .scenario import Scenario
from .wire import Wire

log = logging.getLogger("geowarn.simulators")
DEFAULT_BACKFILL_H = 24.0  # an open-ended fast run starts this far back, then runs in real time


class Simulator(PacedRunner):
    def __init__(self, registry: Registry, broker_url: str, scenario: Scenario | None = None,
                 speed: float | None = None, duration_h: float | None = None, seed: int | None = None,
                 clock: SimClock | None = None, client_id: str = "geowarn-sim", force_protocol: str | None = None,
                 on_air_after_end: bool = False):
        """on_air_after_end: after the last reading (and `finished`) the devices keep answering
        commands until stop(): a drill's service may still be working through its backlog and
        command them (a red decided late in a fast run)."""
        self.registry = registry
        self.on_air_after_end = on_air_after_end
        self.scenario = scenario
        speed = speed if speed is not None else (scenario.speed if scenario else 1.0)
        # scenarios end on their own; a bare network runs until stopped (None)
        self.duration_h = duration_h if duration_h is not None else (scenario.duration_h if scenario else None)
        span_h = self.duration_h if self.duration_h is not None else (DEFAULT_BACKFILL_H if speed > 1 else 0.0)
        super().__init__(broker_url, clock or SimClock.for_run(span_h * HOUR, speed), client_id)
        self.fleet = Fleet(registry, self.clock.start, scenario, seed, horizon_h=self.duration_h)
        self.wire = Wire(registry, force_protocol)
        self._commands: queue.Queue[Command] = queue.Queue()

    # --- what a driver sees ---------------------------------------------------------------------

    @property
    def start_ts(self) -> float:
        return self.clock.start

    @property
    def end_ts(self) -> float | None:
        return None if self.duration_h is None else self.clock.start + self.duration_h * HOUR

    @property
    def failure_times(self) -> dict[str, float]:
        """Site -> simulated epoch seconds of its failure (t_f)."""
        return dict(self.fleet.failures)

    def sim_time(self, hours: float) -> float:
        """Simulated epoch seconds of a scenario's `*_h` instant."""
        return self.clock.start + hours * HOUR

    # --- the loop -----------------------------------------------------------------------------------

    def _connect(self) -> None:
        client = self._publisher.client
        client.on_message = self._on_message
        on_connect = client.on_connect  # the publisher's own, chained
        protocols = sorted({self.wire.protocol(d) for d in self.registry.devices})  # amqtt refuses $-topics

        def subscribe_too(c, userdata, flags, reason_code, properties):
            on_connect(c, userdata, flags, reason_code, properties)
            if not reason_code.is_failure:  # again after every reconnect
                c.subscribe([(SUBSCRIPTIONS[p], 1) for p in protocols])

        client.on_connect = subscribe_too
        subscribed = threading.Event()
        client.on_subscribe = lambda *a: subscribed.set()
        super()._connect()
        # when start() returns, commands reach us: the broker has acknowledged the subscription
        if not subscribed.wait(10):
            raise TimeoutError("the broker did not acknowledge the command subscription")

    def _loop(self) -> None:
        marks = list(self.fleet.marks)
        next_hour = self.clock.start + HOUR
        end = self.end_ts
        self._emit("started", self.clock.start, detail={"speed": self.speed, "duration_h": self.duration_h,
                                                        "scenario": self.scenario.name if self.scenario else None})
        while not self.stopping:
            self._handle_commands()
            nxt = self.fleet.next_time()
            target = min(t for t in (nxt, next_hour, marks[0].ts if marks else None, end) if t is not None)
            if not self.clock.advance_to(target, self._stop, self._wake):
                continue  # a command arrived, or stop
            now = self.clock.now()  # at or past target (speed may have changed: sim.clock.set_speed)
            while marks and marks[0].ts <= now:
                m = marks.pop(0)
                self._emit(m.kind, m.ts, site=m.site, device=m.device, detail=m.detail)
            for e in self.fleet.due(min(now, end) if end is not None else now):
                self._publish(e)
            if now >= next_hour:
                self._hour(next_hour)
                next_hour += HOUR
            if end is not None and now >= end:
                break
        self._finish()
        while self.on_air_after_end and not self.stopping:
            self._wake.wait(0.2)
            self._wake.clear()
            self._handle_commands()

    def _publish(self, e: Emission) -> None:
        if e.what == "reading":
            self._send(*self.wire.reading(e.device, e.ts, e.values))
            self.counts["readings"] += 1
        else:
            self._send(*self.wire.status(e.device, e.ts, e.values))
            self.counts["statuses"] += 1

    # --- commands --------------------------------------------------------------------------------------

    def _on_message(self, client, userdata, msg) -> None:
        try:
            cmd = parse_command(msg.topic, msg.payload)
        except BadCommand as e:
            log.warning("ignoring downlink: %s", e)
            return
        self._commands.put(cmd)
        self._wake.set()

    def _handle_commands(self) -> None:
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            now = self.clock.now()
            dev = self.registry.device(cmd.device)
            site = dev.site if dev else None
            self.counts["commands"] += 1
            self._emit("command", now, site=site, device=cmd.device,
                       detail={"cmd": cmd.name, "params": cmd.params, "msgid": cmd.msgid})
            result = self.fleet.command(cmd.device, cmd.name, cmd.params, now)
            if dev is not None and result.ok is not None:
                self._send(*encode_reply(dev, cmd, result.ok, self.wire.protocol(dev)))
                self.counts["replies"] += 1
            self._emit("reply", now, site=site, device=cmd.device,
                       detail={"cmd": cmd.name, "msgid": cmd.msgid, "note": result.note,
                               "result": "none" if result.ok is None else ("succ" if result.ok else "fail")})
