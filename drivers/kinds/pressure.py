"""Earth-pressure / stress gauge (L2_YL): kPa. Channel kpa."""
from ..base import SensorKind
from ._values import number, scalar

KIND = SensorKind(
    name="pressure",
    codes=("L2_YL",),
    channels={"kpa": "kPa"},
    limits={"kpa": (-1_000.0, 100_000.0)},
    from_national=lambda raw: {"kpa": scalar(raw, "value", "L2_YL")},
    from_native=lambda values: {"kpa": number(values.get("kpa"), "kpa")},
    to_national=lambda v: {"value": v["kpa"]},
)
