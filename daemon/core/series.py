"""Series interning: (site, device, channel) -> a small int, once, so the hot path moves ints."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    site: str
    device: str
    kind: str
    channel: str


class SeriesTable:
    """Ids are dense (0..n-1) and never reused; per-series integer columns index sites and
    devices so detectors and fusion can group with numpy."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str, str], int] = {}
        self.info: list[SeriesInfo] = []
        self.sites: list[str] = []
        self.site_ix: dict[str, int] = {}
        self.devices: list[str] = []
        self.device_ix: dict[str, int] = {}
        self.device_site: list[int] = []
        self.device_kind: list[str] = []
        self.site_of = np.zeros(0, np.int32)
        self.device_of = np.zeros(0, np.int32)

    def __len__(self) -> int:
        return len(self.info)

    def get(self, site: str, device: str, channel: str) -> int | None:
        return self._ids.get((site, device, channel))

    def site_index(self, site: str) -> int:
        i = self.site_ix.get(site)
        if i is None:
            i = self.site_ix[site] = len(self.sites)
            self.sites.append(site)
        return i

    def device_index(self, site: str, device: str, kind: str) -> int:
        i = self.device_ix.get(device)
        if i is None:
            i = self.device_ix[device] = len(self.devices)
            self.devices.append(device)
            self.device_site.append(self.site_index(site))
            self.device_kind.append(kind)
        return i

    def intern(self, site: str, device: str, kind: str, channel: str) -> tuple[int, bool]:
        """The series id, and whether it is new."""
        key = (site, device, channel)
        sid = self._ids.get(key)
        if sid is not None:
            return sid, False
        sid = self._ids[key] = len(self.info)
        self.info.append(SeriesInfo(site, device, kind, channel))
        si, di = self.site_index(site), self.device_index(site, device, kind)
        if sid >= len(self.site_of):
            cap = max(64, 2 * len(self.site_of))
            self.site_of = np.resize(self.site_of, cap)
            self.device_of = np.resize(self.device_of, cap)
        self.site_of[sid], self.device_of[sid] = si, di
        return sid, True
