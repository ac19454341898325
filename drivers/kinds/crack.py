"""Crack meter (L1_LF): cumulative opening, mm. Channel width."""
from ..base import SensorKind
from ._values import number, scalar

KIND = SensorKind(
    name="crack",
    codes=("L1_LF",),
    channels={"width": "mm"},
    # wire crack meters span at most a few metres; small negatives are closure after install
    limits={"width": (-1_000.0, 10_000.0)},
    from_national=lambda raw: {"width": scalar(raw, "value", "L1_LF")},
    from_native=lambda values: {"width": number(values.get("width"), "width")},
    to_national=lambda v: {"value": v["width"]},
)
