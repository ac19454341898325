"""GNSS station (L1_GP): cumulative displacement from the initial position, mm.
Channels dx, dy, dz and the derived horizontal dh."""
import math

from ..base import SensorKind
from ._values import fields, number, required

_NATIONAL = {"gpsTotalX": "dx", "gpsTotalY": "dy", "gpsTotalZ": "dz"}


def derive(v: dict[str, float]) -> dict[str, float]:
    """The horizontal displacement, where both horizontal components are there."""
    return {"dh": math.hypot(v["dx"], v["dy"])} if "dx" in v and "dy" in v else {}


def from_national(raw):
    return required(fields(raw, tuple(_NATIONAL), "L1_GP"), _NATIONAL, "L1_GP")


def from_native(values):
    return {ch: number(values.get(ch), ch) for ch in ("dx", "dy", "dz")}


_M = 100_000.0  # 100 m: no GNSS monitoring point moves further and stays instrumented
KIND = SensorKind(
    name="gnss",
    codes=("L1_GP",),
    channels={"dx": "mm", "dy": "mm", "dz": "mm", "dh": "mm"},
    limits={"dx": (-_M, _M), "dy": (-_M, _M), "dz": (-_M, _M), "dh": (0.0, _M * 1.5)},
    from_national=from_national,
    from_native=from_native,
    to_national=lambda v: {src: v[ch] for src, ch in _NATIONAL.items()},
    derive=derive,
    derived=("dh",),
)
