"""Synthetic readings of a whole network, in memory, in time order: slow creep with realistic
noise on every deformation channel, rain storms on the gauges. For benchmarks and tests of the
detector core (no MQTT, no parsing).

Each device reports on its registry interval (deformation 2 h, rain 1 h in the example);
channel noise: GNSS 2 mm horizontal / 4 mm vertical, crack 0.2 mm, tilt 0.005°, pressure 0.5 kPa.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geowarn.daemon.registry import Registry

T0 = 1_780_000_000.0  # 2026-05-28, in the rainy season
NOISE = {("gnss", "dx"): 2.0, ("gnss", "dy"): 2.0, ("gnss", "dz"): 4.0, ("crack", "width"): 0.2,
         ("tilt", "x"): 0.005, ("tilt", "y"): 0.005, ("tilt", "angle"): 0.005, ("tilt", "azimuth"): 0.5,
         ("pressure", "kpa"): 0.5, ("accel", "gx"): 0.001, ("accel", "gy"): 0.001, ("accel", "gz"): 0.001}
CHANNELS = {"gnss": ("dx", "dy", "dz", "dh"), "crack": ("width",), "tilt": ("x", "y", "angle", "azimuth"),
            "pressure": ("kpa",), "rain": ("mm",), "accel": ("gx", "gy", "gz")}


@dataclass
class NetworkReadings:
    site: list[str]  # per series
    device: list[str]
    kind: list[str]
    channel: list[str]
    series: np.ndarray  # per reading: index into the lists above
    ts: np.ndarray
    value: np.ndarray


def synthetic_registry(n_sites: int) -> Registry:
    """n sites, each with a GNSS station, a crack meter, a tiltmeter and a rain gauge."""
    sites = []
    for i in range(n_sites):
        sid = f"SYN{i:05d}"
        devs = [{"id": f"{sid}-{k}", "kind": k, "interval_s": 3600 if k == "rain" else 7200}
                for k in ("gnss", "crack", "tilt", "rain")]
        sites.append({"id": sid, "name": sid, "county": "synthetic", "hazard": "landslide",
                      "lon": 112.0, "lat": 27.5, "devices": devs})
    return Registry.from_dict({"name": "synthetic", "sites": sites})


def network_readings(registry: Registry, days: float, seed: int = 1, t0: float = T0) -> NetworkReadings:
    rng = np.random.default_rng(seed)
    site, device, kind, channel = [], [], [], []
    chunks_s, chunks_t, chunks_v = [], [], []
    for dev in registry.devices:
        chans = CHANNELS.get(dev.kind)
        if chans is None:
            continue  # alarms and video send no readings
        t = t0 + rng.uniform(0, dev.interval_s) + np.arange(0, days * 86400, dev.interval_s)
        n = len(t)
        if dev.kind == "rain":
            vals = {"mm": _rain(rng, t, dev.interval_s)}
        else:
            creep = rng.uniform(0.0, 0.3) / 86400.0  # units/day of steady creep, most slopes barely move
            base = {"gnss": 0.0, "crack": rng.uniform(5, 50), "tilt": 0.0, "pressure": rng.uniform(50, 300),
                    "accel": 0.0}[dev.kind]
            vals = {}
            for ch in chans:
                if ch == "dh":
                    continue
                drift = creep * (t - t0) * (0.01 if dev.kind == "tilt" else 1.0)
                if ch == "azimuth":
                    drift = np.full(n, rng.uniform(0, 360))
                vals[ch] = base + drift + rng.normal(0.0, NOISE[(dev.kind, ch)], n)
            if dev.kind == "gnss":
                vals["dh"] = np.hypot(vals["dx"], vals["dy"])
        for ch in chans:
            site.append(dev.site)
            device.append(dev.id)
            kind.append(dev.kind)
            channel.append(ch)
            chunks_s.append(np.full(n, len(site) - 1, np.int64))
            chunks_t.append(t)
            chunks_v.append(vals[ch])
    s, t, v = np.concatenate(chunks_s), np.concatenate(chunks_t), np.concatenate(chunks_v)
    order = np.argsort(t, kind="stable")
    return NetworkReadings(site, device, kind, channel, s[order], t[order], v[order])


def _rain(rng: np.random.Generator, t: np.ndarray, interval_s: float) -> np.ndarray:
    """Storms arrive about every 4 days, last hours, and drop gamma-distributed amounts."""
    mm = np.zeros(len(t))
    wet = np.zeros(len(t), bool)
    start = t[0]
    while start < t[-1]:
        start += rng.exponential(4 * 86400)
        wet |= (t >= start) & (t < start + rng.uniform(2, 18) * 3600)
    mm[wet] = np.round(rng.gamma(0.8, 3.0 * interval_s / 3600, wet.sum()), 1)
    return mm
