"""Tiltmeter (L1_QJ): tilt about two axes, degrees, with resultant angle and azimuth.
National objects carry X, Y, Z, angle and AZI (or trend); some platforms send
"x,y,z,angle,azi" as one comma string."""
from ..base import SensorKind
from ._values import fields, number, optional, required

_ORDER = ("X", "Y", "Z", "angle", "AZI")


def from_national(raw):
    obj = fields(raw, _ORDER, "L1_QJ")
    out = required(obj, {"X": "x", "Y": "y"}, "L1_QJ")
    out.update(optional(obj, {"angle": "angle"}, "L1_QJ"))
    azi = obj.get("AZI", obj.get("trend"))
    if azi is not None:
        out["azimuth"] = number(azi, "L1_QJ.AZI")
    return out


def from_native(values):
    out = {ch: number(values.get(ch), ch) for ch in ("x", "y")}
    out.update({ch: number(values[ch], ch) for ch in ("angle", "azimuth") if values.get(ch) is not None})
    return out


KIND = SensorKind(
    name="tilt",
    codes=("L1_QJ",),
    channels={"x": "deg", "y": "deg", "angle": "deg", "azimuth": "deg"},
    limits={"x": (-90.0, 90.0), "y": (-90.0, 90.0), "angle": (-90.0, 90.0), "azimuth": (-360.0, 360.0)},
    from_national=from_national,
    from_native=from_native,
    to_national=lambda v: {"X": v["x"], "Y": v["y"], "Z": 0.0,
                           **({"angle": v["angle"]} if "angle" in v else {}),
                           **({"AZI": v["azimuth"]} if "azimuth" in v else {})},
)
