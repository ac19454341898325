"""How a site's warning level and failure forecast become CAP's urgency, severity, certainty
and response type. The table and its reasons are in docs/cap.md; the numbers are here.

Levels (T/CAGHP 039-2018 practice, as the county plans use them): blue 注意级 — deformation or
rain past the first threshold, failure possible; yellow 警示级 — accelerating, prepare to
evacuate; orange 警戒级 — evacuate the people at risk; red 警报级 — failure imminent, evacuate
everyone now. A failure forecast (inverse velocity) moves urgency and certainty up when it is
near: within a day action is due now, within three days it is expected soon.
"""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Grade:
    urgency: str
    severity: str
    certainty: str
    response: str


BY_LEVEL = {
    "blue": Grade("Future", "Moderate", "Possible", "Monitor"),
    "yellow": Grade("Future", "Severe", "Possible", "Prepare"),
    "orange": Grade("Expected", "Severe", "Likely", "Evacuate"),
    "red": Grade("Immediate", "Extreme", "Likely", "Evacuate"),
}
ALL_CLEAR = Grade("Past", "Minor", "Observed", "AllClear")
FORECAST_IMMEDIATE_H = 24.0  # failure forecast within this: act now
FORECAST_EXPECTED_H = 72.0  # within this: act soon, and failure is likely
_URGENCY = ("Future", "Expected", "Immediate")


def grade(level: str, forecast_failure_ts: float | None, sent: float) -> Grade:
    g = BY_LEVEL[level]
    if forecast_failure_ts is None:
        return g
    left_h = (forecast_failure_ts - sent) / 3600.0
    if left_h > FORECAST_EXPECTED_H:
        return g
    urgency = "Immediate" if left_h <= FORECAST_IMMEDIATE_H else "Expected"
    if _URGENCY.index(urgency) < _URGENCY.index(g.urgency):
        urgency = g.urgency
    certainty = "Likely" if g.certainty == "Possible" else g.certainty
    return replace(g, urgency=urgency, certainty=certainty)
