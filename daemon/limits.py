"""The bounds on what people and devices hand the service: times, spans, names and reasons.
Every door (HTTP, MQTT, CLI) refuses what lies outside them with the reason, so nothing
stored can later fail in formatting, arithmetic or SQLite (a warning valid until 9999-12-31
once overflowed `datetime` on every tick). Documented in docs/field.md, "Limits"."""
from __future__ import annotations

import math
from typing import Any

from geowarn.drivers.base import Invalid
from geowarn.drivers.timestamps import format_ts, parse_ts

EARLIEST_TS = 946_684_800.0  # 2000-01-01T00:00:00Z: before the network existed
LATEST_TS = 4_102_444_800.0  # 2100-01-01T00:00:00Z: nothing anybody supplies lies past it
MAX_WARNING_S = 30 * 86400.0  # a weather warning's validity
MAX_SILENCE_S = 30 * 86400.0  # a maintenance window
NAME_MAX_CHARS = 100  # who acknowledged, stood down, silenced
REASON_MAX_CHARS = 1000  # why
ID_MAX_CHARS = 64  # an issuer's warning id
MAX_ROW_ID = 2**63 - 1  # SQLite's integer


def bounded_ts(raw: Any, what: str) -> float:
    """Epoch seconds between 2000 and 2100 from a wire timestamp; ValueError with the reason."""
    try:
        ts = parse_ts(raw)
    except Invalid as e:
        raise ValueError(f"{what}: {e.detail}") from None
    if not EARLIEST_TS <= ts < LATEST_TS:
        raise ValueError(f"{what}: {format_ts(ts) if math.isfinite(ts) else ts!r} is not between "
                         f"{format_ts(EARLIEST_TS)} and {format_ts(LATEST_TS)}")
    return ts


def check_span(start: float, end: float, longest_s: float, what: str) -> None:
    """ValueError unless `end` is after `start` and at most `longest_s` later."""
    if not end > start:
        raise ValueError(f"{what} must end after it starts")
    if end - start > longest_s:
        raise ValueError(f"{what} may last at most {longest_s / 86400:g} days, not {(end - start) / 86400:.1f}")


def text(raw: Any, what: str, max_chars: int, *, required: bool = False, default: str = "") -> str:
    """A string a person typed: a JSON string (or absent), at most `max_chars`; ValueError."""
    if raw is None or raw == "":
        if required:
            raise ValueError(f"{what} is required")
        return default
    if not isinstance(raw, str):
        raise ValueError(f"{what} must be a string, not {type(raw).__name__}")
    if len(raw) > max_chars:
        raise ValueError(f"{what} is longer than {max_chars} characters")
    if required and not raw.strip():
        raise ValueError(f"{what} is required")
    return raw
