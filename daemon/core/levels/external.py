"""Signals from outside the series (model/external.py), held per site under a *source* key;
sources of one group count once towards corroboration."""
from __future__ import annotations

import numpy as np

from ...model.external import External


class ExternalSignals:
    def __init__(self) -> None:
        self.by_site: dict[int, dict[str, External]] = {}

    def set(self, site: int, source: str, sig: External | None) -> None:
        held = self.by_site.setdefault(site, {})
        if sig is None or sig.level <= 0:
            held.pop(source, None)
        else:
            held[source] = sig

    def active(self, site: int, now: float | None = None) -> list[External]:
        return [s for s in self.by_site.get(site, {}).values() if now is None or s.until is None or s.until > now]

    def expire(self, now: float) -> list[int]:
        """Drop lapsed signals; the sites that lost one."""
        hit = []
        for site, held in self.by_site.items():
            gone = [k for k, s in held.items() if s.until is not None and s.until <= now]
            for k in gone:
                del held[k]
            if gone:
                hit.append(site)
        return hit

    def arrays(self, n: int, corroborate_min: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per site: the highest raising level, and how many groups agree (at corroborate_min or above)."""
        top = np.zeros(n, np.int8)
        agree = np.zeros(n)
        for site, held in self.by_site.items():
            if site >= n or not held:
                continue
            best: dict[str, int] = {}
            for s in held.values():
                best[s.group] = max(best.get(s.group, 0), s.level)
                if s.raises:
                    top[site] = max(top[site], s.level)
            agree[site] = sum(1 for lv in best.values() if lv >= max(int(corroborate_min[site]), 1))
        return top, agree
