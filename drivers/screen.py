"""The screen every decoded reading passes before the journal: known device, claimed site
matches the registry, finite, physically possible, plausible time. One place for the checks,
whatever the wire format."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from .base import DeviceLookup, DeviceStatus, Reading, Reason, Rejection
from .kinds import KINDS
from .timestamps import format_ts

EARLIEST_TS = 946_684_800.0  # 2000-01-01T00:00:00Z


@dataclass(frozen=True)
class ScreenLimits:
    future_s: float = 600.0  # a clock more than 10 minutes ahead is a broken clock
    earliest_ts: float = EARLIEST_TS


def screen(
    readings: Iterable[Reading], lookup: DeviceLookup, now: float, limits: ScreenLimits = ScreenLimits()
) -> tuple[list[Reading], list[Rejection]]:
    accepted: list[Reading] = []
    rejected: list[Rejection] = []
    for r in readings:
        reason, detail = _check(r, lookup, now, limits)
        if reason is None:
            accepted.append(r)
        else:
            rejected.append(Rejection(reason, detail, r.device))
    return accepted, rejected


def screen_statuses(statuses: Iterable[DeviceStatus], lookup: DeviceLookup, now: float,
                    limits: ScreenLimits = ScreenLimits()) -> tuple[list[DeviceStatus], list[Rejection]]:
    """A status is advisory, but it must come from its own site (a device's credentials speak
    for that device only) and its time must be plausible: the journal keys it by time."""
    accepted: list[DeviceStatus] = []
    rejected: list[Rejection] = []
    for s in statuses:
        reason, detail = _check_site(s.device, s.site, lookup)
        if reason is None:
            reason, detail = _check_ts(s.ts, f"{s.device} status", now, limits)
        if reason is None:
            accepted.append(s)
        else:
            rejected.append(Rejection(reason, detail, s.device))
    return accepted, rejected


def _check_ts(ts: float, what: str, now: float, limits: ScreenLimits) -> tuple[str | None, str]:
    if ts > now + limits.future_s:
        return Reason.FUTURE_TIMESTAMP, f"{what} at {format_ts(ts)}, {ts - now:.0f} s ahead of the clock"
    if ts < limits.earliest_ts:
        return Reason.ANCIENT_TIMESTAMP, f"{what} at {ts:.0f}, before 2000"
    return None, ""


def _check_site(device: str, site: str | None, lookup: DeviceLookup) -> tuple[str | None, str]:
    dev = lookup.device(device)
    if dev is None:
        return Reason.UNKNOWN_DEVICE, f"device {device!r} is not in the registry"
    if site is not None and site != dev.site:
        return Reason.SITE_MISMATCH, f"device {device} belongs to site {dev.site}, frame says {site}"
    return None, ""


def _check(r: Reading, lookup: DeviceLookup, now: float, limits: ScreenLimits) -> tuple[str | None, str]:
    reason, detail = _check_site(r.device, r.site, lookup)
    if reason is not None:
        return reason, detail
    what = f"{r.device} {r.kind}.{r.channel}"
    if not math.isfinite(r.value):
        return Reason.NON_FINITE, f"{what} = {r.value}"
    lo, hi = KINDS[r.kind].limits.get(r.channel, (-math.inf, math.inf))
    if not lo <= r.value <= hi:
        return Reason.IMPOSSIBLE_VALUE, f"{what} = {r.value:g} outside [{lo:g}, {hi:g}]"
    return _check_ts(r.ts, what, now, limits)
