"""Site level fusion with corroboration and hysteresis.

* An instrument's level is the highest level of its judged channels; a site's candidate level
  is its highest instrument level. Above `single_max` (orange/red by default) the candidate
  stands only when another instrument (a rain gauge counts) is at `corroborate_min` or above,
  or a strong failure forecast agrees; otherwise it is capped at `single_max`.
* Raise fast: a higher candidate applies at once.
* Lower slowly: only after the candidate has stayed below the level for the hold time, judged
  on data as it arrives. Series keep their last judged level when they fall silent, and fusion
  runs only for sites whose data arrived, so missing data never lowers a level.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...model.levels import Level
from ...rules import SiteRule
from ..columns import Columns, column


@dataclass(frozen=True, slots=True)
class Transition:
    site: int
    previous: int
    level: int
    ts: float
    capped_from: int | None
    lowered_after_h: float | None


@dataclass(eq=False)
class SiteLevels(Columns):
    """Per site (rows by site index): its level, hysteresis timers and fusion rule."""

    level: np.ndarray = column(np.int8, 0)
    since: np.ndarray = column(float, np.nan)  # when the level last changed (data time)
    below_since: np.ndarray = column(float, np.nan)  # since when the candidate stays below it
    corroboration: np.ndarray = column(bool, False)
    single_max: np.ndarray = column(np.int8, 0)
    corroborate_min: np.ndarray = column(np.int8, 0)
    strong_ok: np.ndarray = column(bool, False)
    hold_s: np.ndarray = column(float, 0.0)
    hold_red_s: np.ndarray = column(float, 0.0)
    n: int = 0  # sites registered

    def add(self, rule: SiteRule) -> None:
        """Register the next site index with its rule."""
        i = self.n
        self.ensure(i + 1)
        self.level[i], self.below_since[i], self.since[i] = 0, np.nan, np.nan
        self.set_rule(i, rule)
        self.n += 1

    def set_rule(self, i: int, rule: SiteRule) -> None:
        """(Re)apply a site's rule; its level and hold timer stay as they are."""
        self.corroboration[i], self.strong_ok[i] = rule.corroboration, rule.strong_forecast_corroborates
        self.single_max[i], self.corroborate_min[i] = rule.single_max_i, rule.corroborate_min_i
        self.hold_s[i], self.hold_red_s[i] = rule.hold_h * 3600.0, rule.hold_red_h * 3600.0

    def candidates(self, dev_level: np.ndarray, dev_site: np.ndarray, site_strong: np.ndarray,
                   ext_top: np.ndarray | None = None, ext_agree: np.ndarray | None = None):
        """Candidate level per site, its uncapped top, and whether it was capped. ext_*: signals
        from outside the series (levels/external.py) that raise and that agree. The device
        arrays may hold only some sites' devices: only those sites' entries are then meaningful."""
        n = self.n
        top = np.zeros(n, np.int8)
        np.maximum.at(top, dev_site, dev_level)
        agree = np.bincount(dev_site, weights=(dev_level >= np.maximum(self.corroborate_min[dev_site], 1)),
                            minlength=n)
        if ext_top is not None:
            top = np.maximum(top, ext_top[:n]).astype(np.int8)
        if ext_agree is not None:
            agree = agree + ext_agree[:n]
        need = self.corroboration[:n] & (top > self.single_max[:n])
        ok = (agree >= 2) | (self.strong_ok[:n] & site_strong[:n])
        capped = need & ~ok
        cand = np.where(capped, self.single_max[:n], top).astype(np.int8)
        return cand, top, capped

    def step(self, sites: np.ndarray, cand: np.ndarray, top: np.ndarray, capped: np.ndarray,
             ts: np.ndarray, rise_ts: np.ndarray | None = None) -> list[Transition]:
        """Apply hysteresis to the sites whose data arrived (ts: their latest reading time;
        rise_ts: when the signals behind a rise arose, default ts)."""
        rise_ts = ts if rise_ts is None else rise_ts
        out: list[Transition] = []
        cur = self.level[sites]
        c = cand[sites]
        up = c > cur
        down = c < cur
        self.below_since[sites[~down]] = np.nan
        start = down & np.isnan(self.below_since[sites])
        self.below_since[sites[start]] = ts[start]
        hold = np.where(cur >= Level.RED, self.hold_red_s[sites], self.hold_s[sites])
        lower = down & (ts - self.below_since[sites] >= hold)
        for j in np.flatnonzero(up | lower):
            si = int(sites[j])
            out.append(Transition(si, int(cur[j]), int(c[j]), float(rise_ts[j] if up[j] else ts[j]),
                                  int(top[si]) if capped[si] else None,
                                  float(hold[j]) / 3600.0 if lower[j] else None))
            self.level[si] = c[j]
            self.since[si] = out[-1].ts
            self.below_since[si] = np.nan
        return out
