"""Synthetic readings written straight into a journal: for export tests and benchmarks, where
the MQTT path is not what is measured."""
from __future__ import annotations

from collections.abc import Iterator

from geowarn.daemon.journal import Entry, Journal
from geowarn.daemon.registry import Registry
from geowarn.drivers.base import Reading
from geowarn.drivers.kinds import KINDS


def reading_plan(registry: Registry) -> list[tuple[str, str, str, str]]:
    """(site, device, kind, channel) of every sensor channel of the registry, in registry order."""
    return [(d.site, d.id, d.kind, ch) for d in registry.devices if d.kind in KINDS for ch in KINDS[d.kind].channels]


def synthetic_readings(registry: Registry, count: int, start: float, step_s: float = 60.0,
                       first: int = 0) -> Iterator[tuple[Reading, str]]:
    """Readings number `first` .. `first + count - 1` of a sequence that gives every channel of
    every device a value at `start`, then at `start + step_s`, ...; values are short decimals
    that survive any float storage exactly."""
    plan = reading_plan(registry)
    for i in range(first, first + count):
        step, k = divmod(i, len(plan))
        site, device, kind, channel = plan[k]
        value = round((k % 97) * 0.25 + step * 0.001, 3)
        yield Reading(device, kind, channel, start + step * step_s, value), site


def fill(journal: Journal, registry: Registry, count: int, start: float, step_s: float = 60.0,
         first: int = 0, per_entry: int = 1000, now: float | None = None) -> int:
    """Write synthetic readings `first` .. `first + count - 1` in entries of `per_entry`;
    returns the rows added."""
    added = 0
    entry = Entry()
    for pair in synthetic_readings(registry, count, start, step_s, first):
        entry.readings.append(pair)
        if len(entry.readings) >= per_entry:
            added += journal.write(entry, now=now).new_readings
            entry = Entry()
    if entry.readings:
        added += journal.write(entry, now=now).new_readings
    return added
