"""Small registries and feeding helpers for the core tests."""
from __future__ import annotations

import numpy as np

from geowarn.daemon.core import Core, CoreResult
from geowarn.daemon.registry import Registry

T0 = 1_780_000_000.0
H = 3600.0


def registry(*sites: tuple[str, list[tuple[str, str]]], interval_s: int = 7200) -> Registry:
    """registry(("S1", [("c1", "crack"), ("r1", "rain")]), ...)"""
    return Registry.from_dict({"sites": [
        {"id": sid, "name": sid, "county": "test", "hazard": "landslide", "lon": 112.0, "lat": 27.5,
         "devices": [{"id": d, "kind": k, "interval_s": 3600 if k == "rain" else interval_s} for d, k in devs]}
        for sid, devs in sites]})


def feed(core: Core, sid: int, ts, values, batch: int = 1) -> CoreResult:
    """Feed one series reading by reading (or in batches), collecting everything reported."""
    out = CoreResult()
    ts, values = np.asarray(ts, float), np.asarray(values, float)
    for i in range(0, len(ts), batch):
        out.extend(core.process(np.full(len(ts[i:i + batch]), sid), ts[i:i + batch], values[i:i + batch]))
    return out


def creep(days: float, rate_mm_day: float = 0.1, noise: float = 0.2, every_s: float = 7200.0, seed: int = 0,
          start: float = 10.0, t0: float = T0):
    rng = np.random.default_rng(seed)
    t = t0 + np.arange(0, days * 86400, every_s)
    return t, start + rate_mm_day * (t - t0) / 86400 + rng.normal(0, noise, len(t))
