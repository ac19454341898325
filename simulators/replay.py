"""Replay recorded readings (the `geowarn export` CSV: `ts,site,device,kind,channel,value`)
through the broker, each device in its own wire format.

Rows of one device at one timestamp become one frame. Every frame is checked by encoding it
and decoding it back with the drivers, so a row the service would quarantine is refused here,
with its file and line. The derived GNSS `dh` channel is dropped (the intake derives it).

Time: the original spacing is kept, played `speed` times faster. Old data (the last reading
more than 10 minutes ago) are shifted so that the last reading lands at the wall clock's "now"
when it is published (the run starts span·(1 − 1/speed) in the past; see clock.py); nothing is
ever stamped in the future. `keep_time=True` keeps the original timestamps (back-testing into
a fresh state directory).
"""
from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path

from geowarn.daemon.config import ConfigError
from geowarn.daemon.registry import Device, Registry
from geowarn.drivers.base import Invalid
from geowarn.drivers.screen import screen
from geowarn.drivers.timestamps import parse_ts

from .clock import SimClock
from .runner import HOUR, PacedRunner
from .wire import Wire

COLUMNS = ("ts", "site", "device", "kind", "channel", "value")
DERIVED = {("gnss", "dh")}
RECENT_S = 600.0  # the intake's future limit: data this recent keep their time


@dataclass(frozen=True)
class Frame:
    ts: float
    device: Device
    values: dict[str, float]
    line: int  # first CSV line of the frame


def _ts(raw: str) -> float:
    try:
        return float(raw)  # epoch seconds
    except ValueError:
        return parse_ts(raw)


def read_frames(path: str | Path, registry: Registry, wire: Wire | None = None) -> list[Frame]:
    """Frames in time order; raises ConfigError naming the file and line of the first bad row."""
    path = Path(path)
    wire = wire or Wire(registry)
    groups: dict[tuple[str, float], tuple[int, Device, dict[str, float]]] = {}

    def bad(line: int, problem: str):
        return ConfigError(str(path), f"line {line}", problem, line)

    try:
        f = path.open(newline="", encoding="utf-8-sig")  # spreadsheets write a BOM
    except OSError as e:
        raise ConfigError(str(path), "", f"cannot read: {e}") from None
    with f:
        rows = csv.reader(f)
        try:
            header = next(rows, None)
            if header is None or tuple(h.strip() for h in header) != COLUMNS:
                raise bad(1, f"the header must be {','.join(COLUMNS)}")
            for row in rows:
                line = rows.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(COLUMNS):
                    raise bad(line, f"{len(row)} fields, expected {len(COLUMNS)}")
                raw_ts, site, dev_id, kind, channel, raw_value = (c.strip() for c in row)
                try:
                    ts = _ts(raw_ts)
                except Invalid as e:
                    raise bad(line, e.detail) from None
                dev = registry.device(dev_id)
                if dev is None:
                    raise bad(line, f"device {dev_id!r} is not in the registry")
                if site != dev.site or kind != dev.kind:
                    raise bad(line, f"device {dev_id} is a {dev.kind} at {dev.site}, the row says {kind} at {site}")
                try:
                    value = float(raw_value)
                except ValueError:
                    raise bad(line, f"value {raw_value[:40]!r} is not a number") from None
                if not math.isfinite(value):
                    raise bad(line, f"value {raw_value!r} is not finite")
                if (kind, channel) in DERIVED:
                    continue
                first_line, _, values = groups.setdefault((dev_id, ts), (line, dev, {}))
                if channel in values:
                    raise bad(line, f"{dev_id} {channel} at {raw_ts} appears twice (first on line {first_line})")
                values[channel] = value
        except UnicodeDecodeError as e:
            raise bad(rows.line_num + 1, f"not UTF-8: {e.reason}") from None
        except csv.Error as e:
            raise bad(rows.line_num, f"CSV: {e}") from None
    frames = [Frame(ts, dev, values, line) for (_, ts), (line, dev, values) in groups.items()]
    for fr in frames:
        _check(fr, wire, bad)
    frames.sort(key=lambda fr: (fr.ts, fr.line))
    return frames


def _check(fr: Frame, wire: Wire, bad) -> None:
    """Encode and decode the frame with the drivers: what they cannot carry is refused here."""
    fmt = wire.formats[wire.protocol(fr.device)]
    try:
        topic, payload = fmt.encode_readings(fr.device, fr.ts, fr.values)
    except (KeyError, TypeError, ValueError) as e:
        raise bad(fr.line, f"{fr.device.kind} {fr.device.id} at {fr.ts:.0f}: incomplete reading "
                           f"({', '.join(sorted(fr.values))}; missing {e})") from None
    decoded = fmt.decode(topic, payload)
    _, rejected = screen(decoded.readings, wire.registry, now=math.inf)  # time is the replay's business
    problems = decoded.rejections + rejected
    if problems:
        raise bad(fr.line, problems[0].detail)
    if not decoded.readings:
        raise bad(fr.line, f"{fr.device.id}: no channel of {sorted(fr.values)} is one a {fr.device.kind} sends")


class Replayer(PacedRunner):
    def __init__(self, registry: Registry, broker_url: str, frames: list[Frame], speed: float = 1.0,
                 keep_time: bool = False, client_id: str = "geowarn-replay", force_protocol: str | None = None):
        if not frames:
            raise ValueError("nothing to replay")
        first, last = frames[0].ts, frames[-1].ts
        span = last - first
        shift = 0.0
        if not keep_time and last < time.time() - RECENT_S:
            shift = float(round(SimClock.for_run(span, speed).start - first))  # whole seconds
        super().__init__(broker_url, SimClock(first + shift, speed), client_id)
        self.shift = shift  # added to every timestamp
        self.frames = frames
        self.wire = Wire(registry, force_protocol)

    def _loop(self) -> None:
        self._emit("started", self.clock.start, detail={"speed": self.speed, "frames": len(self.frames),
                                                        "shift_s": self.shift})
        next_hour = self.clock.start + HOUR
        for fr in self.frames:
            ts = fr.ts + self.shift
            while next_hour <= ts:
                if not self.clock.advance_to(next_hour, self._stop):
                    break
                self._hour(next_hour)
                next_hour += HOUR
            if not self.clock.advance_to(ts, self._stop):
                break
            self._send(*self.wire.reading(fr.device, ts, fr.values))
            self.counts["readings"] += 1
        self._finish()
