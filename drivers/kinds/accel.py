"""Accelerometer (L1_JS): acceleration per axis, g."""
from ..base import SensorKind
from ._values import fields, number, required

_NATIONAL = {"gX": "gx", "gY": "gy", "gZ": "gz"}

KIND = SensorKind(
    name="accel",
    codes=("L1_JS",),
    channels={"gx": "g", "gy": "g", "gz": "g"},
    limits={ch: (-50.0, 50.0) for ch in ("gx", "gy", "gz")},
    from_national=lambda raw: required(fields(raw, tuple(_NATIONAL), "L1_JS"), _NATIONAL, "L1_JS"),
    from_native=lambda values: {ch: number(values.get(ch), ch) for ch in ("gx", "gy", "gz")},
    to_national=lambda v: {src: v[ch] for src, ch in _NATIONAL.items()},
)
