"""The simulated fleet: every device of a registry, each with its own schedule, mode, battery
and faults, living in one simulated world (weather, slope motion). Pure and deterministic for a
seed: no clock, no network. Ask it what is due up to an instant; tell it about commands.

`readings(registry, start, hours, seed)` is the simplest use (a quiet network, readings only).
"""
from __future__ import annotations

import heapq
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from geowarn.daemon.registry import Device, Registry

from .instruments import Instrument, RainGauge, thermal
from .motion import SlopeMotion
from .power import Battery
from .scenario import Acceleration, Fault, Scenario
from .weather import Weather

HOUR = 3600.0
DAY = 86400.0
DEFORMATION = ("gnss", "crack", "tilt", "pressure", "accel")  # destroyed when their slope fails
SILENT_KINDS = ("alarm", "video")  # status and command replies only
MODES = {0: "normal", 1: "normal", 2: "emergency"}
BROWN_OUT_PCT = 3.0  # below this the logger shuts down
DESTROYED_MM = 3000.0  # slope movement that tears out any instrument (α < 2 diverges before t_f)


@dataclass(frozen=True)
class Emission:
    """Something a device sends: a reading (`values` = channels) or a status (`values` = fields)."""

    ts: float
    device: Device
    what: Literal["reading", "status"]
    values: dict[str, Any]


@dataclass(frozen=True)
class Mark:
    """A scenario moment: storm_start/storm_end, onset, failure, fault_start/fault_end."""

    ts: float
    kind: str
    site: str | None = None
    device: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CommandResult:
    """What a device does with a command: `ok` None means it does not answer at all."""

    ok: bool | None
    note: str = ""


@dataclass
class _Device:
    device: Device
    instrument: Instrument | None
    gauge: RainGauge | None
    battery: Battery
    faults: list[Fault]
    interval_s: float
    accelerated_s: float
    mode: int = 1
    generation: int = 0  # bumped on every reschedule: stale schedule entries are skipped
    last_rain_ts: float | None = None
    frozen: dict[str, float] | None = None  # flat-line: the values it is stuck at
    next_spike: dict[int, float] = field(default_factory=dict)  # fault index -> next spike instant


class Fleet:
    def __init__(self, registry: Registry, start: float, scenario: Scenario | None = None, seed: int | None = None,
                 statuses: bool = True, noise: bool = True, horizon_h: float | None = None):
        self.registry = registry
        self.start = start
        self.scenario = scenario
        seed = seed if seed is not None else (scenario.seed if scenario else 1)
        rnd = random.Random(seed)
        # how far ahead the weather is made; an open-ended run gets a year of showers
        horizon = horizon_h or (scenario.duration_h if scenario else 24 * 366)
        self.weather = Weather(registry, start, scenario.storms if scenario else (),
                               scenario.background_rain if scenario else True, seed, horizon)
        accel = {a.site: a for a in (scenario.accelerations if scenario else ())}
        self.motions: dict[str, SlopeMotion] = {s.id: self._motion(accel.get(s.id), rnd, seed, noise)
                                                for s in registry.sites}
        self.failures: dict[str, float] = {s: m.failure for s, m in self.motions.items() if m.failure is not None}
        faults: dict[str, list[Fault]] = {}
        for f in (scenario.faults if scenario else ()):
            faults.setdefault(f.device, []).append(f)
        self._devices: dict[str, _Device] = {}
        self._heap: list[tuple[float, int, str, str, int]] = []
        self._seq = 0
        for dev in registry.devices:
            self._add(dev, accel.get(dev.site), faults.get(dev.id, []), rnd, seed, noise, statuses)
        self.marks: list[Mark] = sorted(self._scenario_marks(), key=lambda m: m.ts)

    def _motion(self, a: Acceleration | None, rnd: random.Random, seed: int, noise: bool) -> SlopeMotion:
        if a is None:  # a quiet slope: a few hundredths of a mm a day
            return SlopeMotion(self.start, rnd.uniform(0.005, 0.03))
        return SlopeMotion(self.start, a.creep_mm_per_day, self.start + a.onset_h * HOUR,
                           self.start + a.failure_h * HOUR, a.alpha, a.roughness if noise else 0.0, seed)

    def _add(self, dev: Device, a: Acceleration | None, faults: list[Fault], rnd: random.Random, seed: int,
             noise: bool, statuses: bool) -> None:
        inst = None
        if dev.kind not in SILENT_KINDS and dev.kind != "rain":
            gains = {k: getattr(a, k) for k in ("azimuth_deg", "dip_deg", "crack_gain", "tilt_deg_per_mm",
                                                "pressure_kpa_per_mm")} if a else {}
            inst = Instrument(dev.kind, self.motions[dev.site], random.Random(f"{seed}-{dev.id}"), noise=noise, **gains)
        gauge = RainGauge(counter_mm=round(rnd.uniform(0, 3000), 1)) if dev.kind == "rain" else None
        d = _Device(dev, inst, gauge, Battery(rnd.uniform(85, 100), self.start), faults,
                    dev.interval_s, dev.accelerated_interval_s)
        self._devices[dev.id] = d
        if dev.kind == "rain":  # gauges report on the clock, so hourly sums line up with the rain
            step = min(dev.interval_s, dev.accelerated_interval_s)
            self._push(self.start + step * rnd.randrange(max(1, dev.interval_s // step)), dev.id, "reading", 0)
        elif dev.kind not in SILENT_KINDS:
            self._push(self.start + rnd.uniform(0, dev.interval_s), dev.id, "reading", 0)
        if statuses:  # daily; generation -1: a status is never superseded
            self._push(self.start + rnd.uniform(0, DAY), dev.id, "status", -1)

    # --- schedule ---------------------------------------------------------------------------

    def _push(self, ts: float, dev_id: str, what: str, generation: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (ts, self._seq, dev_id, what, generation))

    def next_time(self) -> float | None:
        """When the next emission is due (stale entries dropped)."""
        while self._heap:
            ts, _, dev_id, what, gen = self._heap[0]
            if what == "reading" and gen != self._devices[dev_id].generation:
                heapq.heappop(self._heap)
                continue
            return ts
        return None

    def due(self, until: float) -> Iterator[Emission]:
        """Everything sent up to `until`, in time order."""
        while (ts := self.next_time()) is not None and ts <= until:
            _, _, dev_id, what, gen = heapq.heappop(self._heap)
            d = self._devices[dev_id]
            if what == "status":
                self._push(ts + DAY, dev_id, "status", -1)
                if self._sends(d, ts):
                    yield Emission(float(round(ts)), d.device, "status", self._status(d, ts))
                continue
            self._push(ts + self._interval(d, ts), dev_id, "reading", gen)
            if self._sends(d, ts):
                d.battery.transmit()
                # devices stamp whole seconds
                yield Emission(float(round(ts)), d.device, "reading", self._reading(d, ts))

    def _interval(self, d: _Device, ts: float) -> float:
        if d.mode == 2:
            return d.accelerated_s
        if d.gauge is not None:  # a tip wakes the gauge: it reports every 10 min while it rains
            step = d.accelerated_s
            for k in range(1, max(1, int(d.interval_s // step)) + 1):
                if self.weather.amount(d.device.site, ts + (k - 1) * step, ts + k * step) > 0:
                    return k * step
        return d.interval_s

    def _sends(self, d: _Device, ts: float) -> bool:
        if any(f.type == "offline" and f.active(self._h(ts)) for f in d.faults):
            return False
        d.battery.advance(ts, self._solar_ok(d, ts), self.weather.raining(d.device.site, ts))
        if d.battery.pct < BROWN_OUT_PCT:
            return False  # a flat battery is an offline device (until the sun brings it back)
        if d.device.kind not in DEFORMATION:
            return True
        motion = self.motions[d.device.site]
        # the slope has failed, or moved beyond what any instrument on it survives
        return not (motion.failed(ts) or motion.displacement(ts) > DESTROYED_MM)

    def _h(self, ts: float) -> float:
        return (ts - self.start) / HOUR

    def _solar_ok(self, d: _Device, ts: float) -> bool:
        return not any(f.type == "no_solar" and f.active(self._h(ts)) for f in d.faults)

    # --- what devices send --------------------------------------------------------------------

    def _reading(self, d: _Device, ts: float) -> dict[str, float]:
        if d.gauge is not None:
            since = d.last_rain_ts if d.last_rain_ts is not None else ts - d.interval_s
            d.last_rain_ts = ts
            values = d.gauge.read(self.weather.amount(d.device.site, since, ts))
        else:
            values = d.instrument.read(ts)
        return self._with_faults(d, ts, values)

    def _with_faults(self, d: _Device, ts: float, values: dict[str, float]) -> dict[str, float]:
        hours = self._h(ts)
        for i, f in enumerate(d.faults):
            channels = f.channels or tuple(values)
            if f.type == "jump" and f.active(hours):
                values = {k: round(v + f.magnitude, 3) if k in channels else v for k, v in values.items()}
            elif f.type == "spike" and f.active(hours):
                nxt = d.next_spike.setdefault(i, self.start + f.start_h * HOUR)
                if ts >= nxt:
                    values = {k: round(v + f.magnitude, 3) if k in channels else v for k, v in values.items()}
                    step = (f.every_h or 1e9) * HOUR
                    while nxt <= ts:
                        nxt += step
                    d.next_spike[i] = nxt
            elif f.type == "flatline":
                if f.active(hours):
                    d.frozen = d.frozen or dict(values)
                    values = dict(d.frozen)
                else:
                    d.frozen = None
        return values

    def _status(self, d: _Device, ts: float) -> dict[str, Any]:
        site = self.registry.site(d.device.site)
        rain = self.weather.raining(site.id, ts)
        h = self._h(ts)
        broken = any(f.type == "broken_siren" and f.active(h) for f in d.faults)
        status: dict[str, Any] = {
            "ext_power_volt": round(d.battery.volts(), 2),
            "solar_volt": round(d.battery.solar_volts(ts, self._solar_ok(d, ts)), 2),
            "battery_dump_energy": round(d.battery.pct, 1),
            "temp": round(17.0 + 6.0 * thermal(ts), 1),
            "humidity": 95.0 if rain else round(70.0 - 10.0 * thermal(ts), 1),
            "lon": site.lon, "lat": site.lat,
            "signal_4g": -75 - zlib.crc32(d.device.id.encode()) % 20,
            "sw_version": "V2.3.1",
            "sensor_state": {s: 0 for s in d.device.sensors},
        }
        if d.device.kind == "alarm":
            status.update(sound_state=-1 if broken else 0, pa_state=0)
        return status

    # --- commands -------------------------------------------------------------------------------

    def command(self, device_id: str, name: str, params: dict[str, str], now: float) -> CommandResult:
        """Apply a downlink command at simulated time `now`; returns what the device answers."""
        d = self._devices.get(device_id)
        if d is None:
            return CommandResult(None, "no such device")
        if not self._sends(d, now):
            return CommandResult(None, "device is offline")
        if name == "setworkmode":
            try:
                mode = int(params.get("mode", ""))
            except ValueError:
                return CommandResult(False, f"bad mode {params.get('mode')!r}")
            if mode not in MODES:
                return CommandResult(False, f"bad mode {mode}")
            d.mode = mode
            self._reschedule(d, now if mode == 2 else now + self._interval(d, now))  # emergency: report now
            return CommandResult(True, MODES[mode])
        if name == "setsensortime":
            try:
                upload = float(params.get("upload_intv") or d.interval_s)
                plus = float(params.get("plus_intv") or d.accelerated_s)
            except ValueError:
                return CommandResult(False, "intervals must be numbers of seconds")
            if not (0 < upload <= 7 * DAY and 0 < plus <= DAY):
                return CommandResult(False, "interval out of range")
            d.interval_s, d.accelerated_s = upload, plus
            self._reschedule(d, now + self._interval(d, now))
            return CommandResult(True, f"every {upload:g} s, accelerated {plus:g} s")
        if name in ("alarm", "broadcast"):
            if d.device.kind != "alarm":
                return CommandResult(False, f"a {d.device.kind} device has no siren")
            broken = next((f for f in d.faults if f.type == "broken_siren" and f.active(self._h(now))), None)
            if broken is not None:
                return CommandResult(None if broken.reply == "none" else False, "siren broken")
            return CommandResult(True, "sounding" if name == "alarm" else "broadcasting")
        return CommandResult(False, f"unknown command {name!r}")

    def _reschedule(self, d: _Device, ts: float) -> None:
        if d.device.kind in SILENT_KINDS:
            return
        d.generation += 1
        self._push(ts, d.device.id, "reading", d.generation)

    def mode(self, device_id: str) -> int:
        return self._devices[device_id].mode

    # --- scenario moments -------------------------------------------------------------------------

    def _scenario_marks(self) -> Iterator[Mark]:
        sc = self.scenario
        if sc is None:
            return
        at = lambda h: self.start + h * HOUR  # noqa: E731
        for i, s in enumerate(sc.storms):
            sites = list(s.sites) + [x.id for x in self.registry.sites if s.county and x.county == s.county]
            detail = {"storm": i, "sites": sites, "county": s.county}
            yield Mark(at(s.start_h), "storm_start", detail=detail)
            yield Mark(at(s.start_h + s.length_h), "storm_end", detail=detail)
        for a in sc.accelerations:
            yield Mark(at(a.onset_h), "onset", site=a.site, detail={"alpha": a.alpha})
            yield Mark(at(a.failure_h), "failure", site=a.site, detail={"alpha": a.alpha})
        for f in sc.faults:
            site = self.registry.device(f.device).site
            yield Mark(at(f.start_h), "fault_start", site=site, device=f.device, detail={"fault": f.type})
            if f.end_h is not None:
                yield Mark(at(f.end_h), "fault_end", site=site, device=f.device, detail={"fault": f.type})


def readings(registry: Registry, start: float, hours: float, seed: int = 1) -> Iterator[tuple[Device, float, dict]]:
    """Every sensor device of a quiet network reporting over [start, start + hours), in time order."""
    fleet = Fleet(registry, start, seed=seed, statuses=False)
    for e in fleet.due(start + hours * HOUR - 1e-6):
        yield e.device, round(e.ts, 3), e.values
