"""Crack marker read by a community monitor with a tape (人工裂缝标记): distance between the
two pegs, mm. No national sensor code: readings arrive as field reports (daemon/field/)."""
from ..base import Invalid, Reason, SensorKind
from ._values import number


def _not_on_the_wire(raw):
    raise Invalid(Reason.UNKNOWN_SENSOR, "crack markers are read by people, not sent by devices")


KIND = SensorKind(
    name="marker",
    codes=(),
    channels={"distance": "mm"},
    # a tape between two pegs: never negative; beyond 20 m the pegs were re-set (a new marker)
    limits={"distance": (0.0, 20_000.0)},
    from_national=_not_on_the_wire,
    from_native=lambda values: {"distance": number(values.get("distance"), "distance")},
    to_national=lambda v: {"value": v["distance"]},
)
