"""Rain gauge (L3_YL): `mm` is the rain of this report's interval; `total` the gauge's own
cumulative counter when it sends one (it may reset: the core handles that)."""
from ..base import Invalid, Reason, SensorKind
from ._values import number, optional


def from_national(raw):
    if not isinstance(raw, dict):
        return {"mm": number(raw, "L3_YL")}
    out = optional(raw, {"value": "mm", "totalValue": "total"}, "L3_YL")
    if not out:
        raise Invalid(Reason.MISSING_VALUE, "L3_YL has neither value nor totalValue")
    return out


def from_native(values):
    out = optional(values, {"mm": "mm", "total": "total"}, "rain")
    if not out:
        raise Invalid(Reason.MISSING_VALUE, "rain needs mm or total")
    return out


KIND = SensorKind(
    name="rain",
    codes=("L3_YL",),
    channels={"mm": "mm", "total": "mm"},
    # the world's 1-hour record is ~305 mm; no single report carries more than 500 mm
    limits={"mm": (0.0, 500.0), "total": (0.0, 1e7)},
    from_national=from_national,
    from_native=from_native,
    to_national=lambda v: {**({"value": v["mm"]} if "mm" in v else {}),
                           **({"totalValue": v["total"]} if "total" in v else {})},
)
