"""Plausible readings for every device of a registry: slow creep plus noise for deformation,
thermal daily cycles for crack and tilt, showers for rain. Deterministic for a seed."""
from __future__ import annotations

import math
import random
from collections.abc import Iterator

from geowarn.daemon.registry import Device, Registry

DAY = 86400.0


def reading_values(dev: Device, ts: float, rnd: random.Random, t0: float) -> dict[str, float]:
    days = (ts - t0) / DAY
    daily = math.sin(2 * math.pi * ((ts / DAY) % 1.0))
    if dev.kind == "gnss":  # ~2–3 mm horizontal, 5–8 mm vertical noise, 0.02 mm/day creep
        return {"dx": round(0.02 * days + rnd.gauss(0, 2.5), 2), "dy": round(0.01 * days + rnd.gauss(0, 2.5), 2),
                "dz": round(-0.01 * days + rnd.gauss(0, 6.0), 2)}
    if dev.kind == "crack":
        return {"width": round(12.0 + 0.01 * days + 0.15 * daily + rnd.gauss(0, 0.03), 3)}
    if dev.kind == "tilt":
        return {"x": round(0.05 + 0.01 * daily + rnd.gauss(0, 0.002), 4),
                "y": round(-0.03 + 0.008 * daily + rnd.gauss(0, 0.002), 4)}
    if dev.kind == "rain":
        return {"mm": round(max(0.0, rnd.gauss(-2.0, 2.5)), 1)}
    if dev.kind == "pressure":
        return {"kpa": round(150.0 + 2.0 * daily + rnd.gauss(0, 0.5), 2)}
    raise ValueError(f"{dev.kind} devices send no readings")


def readings(registry: Registry, start: float, hours: float, seed: int = 1) -> Iterator[tuple[Device, float, dict]]:
    """Every sensor device reporting at its normal interval over [start, start + hours), in time order."""
    rnd = random.Random(seed)
    events = []
    for dev in registry.devices:
        if dev.kind in ("alarm", "video", "accel"):
            continue
        t = start + rnd.uniform(0, dev.interval_s)
        while t < start + hours * 3600:
            events.append((t, dev.id))
            t += dev.interval_s
    events.sort()
    for t, dev_id in events:
        dev = registry.device(dev_id)
        yield dev, round(t, 3), reading_values(dev, t, rnd, start)
