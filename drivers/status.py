"""Device status frames (national `S1_ZT_1`, native `status`) normalised to one vocabulary."""
from __future__ import annotations

import math
from typing import Any

# national field -> normalised name
_RENAMES = {
    "battery_dump_energy": "battery_pct",
    "ext_power_volt": "ext_power_volt",
    "solar_volt": "solar_volt",
    "temp": "temp_c",
    "humidity": "humidity_pct",
    "lon": "lon",
    "lat": "lat",
    "signal_4g": "signal_4g",
    "signal_NB": "signal_nb",
    "signal_bd": "signal_bd",
}
_TEXT = ("sw_version", "sound_state", "pa_state")


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def normalise_status(obj: dict[str, Any]) -> dict[str, Any]:
    """Keep what we understand, coerce numbers, and keep sensor_state codes
    (0 ok, -1 power error, -2 data error, -3 no data). Unparseable fields are dropped, not fatal:
    a status frame is advisory."""
    out: dict[str, Any] = {}
    for src, dst in _RENAMES.items():
        if src in obj:
            n = _num(obj[src])
            if n is not None:
                out[dst] = n
    for key in ("battery_pct", "temp_c", "humidity_pct", "signal"):  # native spellings
        if key in obj and key not in out:
            n = _num(obj[key])
            if n is not None:
                out[key] = n
    for key in _TEXT:
        if key in obj and obj[key] is not None:
            out[key] = obj[key] if isinstance(obj[key], (int, float, str)) else str(obj[key])
    state = obj.get("sensor_state")
    if isinstance(state, dict):
        out["sensor_state"] = {str(k): int(n) for k, v in state.items() if (n := _num(v)) is not None}
    return out
