"""A signal that does not come from an instrument's series: a crack marker read by a
community monitor, a monitor's observation, a meteorological risk warning. The field and
weather desks make them; the core holds them per site (core/levels/external.py).

Sources of one `group` count once towards corroboration (a monitor's report of bulging and
seepage is one witness, not two). A signal either raises (it may set the site's candidate
level, capped like any single instrument) or only corroborates (a weather warning: it agrees
with an instrument, never warns by itself). With `until` it lapses then; without, it stands
until its source replaces it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class External:
    group: str  # e.g. "marker:S1-M-A", "observation", "weather"
    level: int  # a model.levels.Level
    raises: bool
    ts: float
    until: float | None
    reason_zh: str
    reason_en: str
