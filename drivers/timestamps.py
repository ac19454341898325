"""Timestamps on the wire: RFC 3339 / ISO 8601 strings (UTC, `Z` or an offset) or epoch seconds."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from .base import Invalid, Reason


def parse_ts(raw: Any) -> float:
    """Epoch seconds (UTC) from a wire timestamp; a string without offset is taken as UTC,
    as the national protocol defines its timestamps in UTC."""
    if isinstance(raw, bool):
        raise Invalid(Reason.BAD_TIMESTAMP, "timestamp is a boolean")
    if isinstance(raw, (int, float)):
        try:
            ts = float(raw)
        except OverflowError:  # an integer literal beyond any float
            raise Invalid(Reason.BAD_TIMESTAMP, "timestamp out of range") from None
        if not math.isfinite(ts):
            raise Invalid(Reason.BAD_TIMESTAMP, f"timestamp {raw!r}")
        return ts
    if isinstance(raw, str):
        try:
            dt = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise Invalid(Reason.BAD_TIMESTAMP, f"unparseable timestamp {raw[:40]!r}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    raise Invalid(Reason.BAD_TIMESTAMP, f"timestamp is a {type(raw).__name__}")


def format_ts(ts: float) -> str:
    """RFC 3339 UTC with milliseconds only when they are not zero."""
    try:
        dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"epoch {ts!r}"
    if dt.microsecond:
        return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
