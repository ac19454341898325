"""The contract between the detector core and the alert lifecycle: what the core concluded
(level changes, device faults, forecasts) becomes the lifecycle's input events. The core never
sends; the lifecycle never looks at readings."""
from __future__ import annotations

from collections.abc import Iterator

from .alerts.events import DeviceFault, SiteLevelChange
from .model.results import CoreResult


def lifecycle_events(result: CoreResult, drill: bool = False) -> Iterator[SiteLevelChange | DeviceFault]:
    # the newest failure forecast per site travels with that site's level change
    forecast = {}
    for f in result.forecasts:
        if f.site not in forecast or f.ts >= forecast[f.site].ts:
            forecast[f.site] = f
    for ch in result.level_changes:
        fc = forecast.get(ch.site)
        yield SiteLevelChange(site=ch.site, ts=ch.ts, level=ch.level, previous=ch.previous,
                              reasons=list(ch.reasons_zh), forecast_failure_ts=fc.failure_time if fc else None,
                              drill=drill)
    for f in result.faults:
        yield DeviceFault(site=f.site, device=f.device, fault=f.fault, ts=f.ts, detail=f.detail,
                          active=f.active, drill=drill)
