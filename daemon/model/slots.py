"""The detectors' slots: each series keeps, per slot, the level its detector reached, the
measured value and the threshold it was compared with (core/state.py). A signal names its
slot as `detector`; the reasons describe each slot.

The families write contiguous runs of slots, in the order of their own result columns:
THRESHOLD (absolute, change, rate), TREND (tangent, inverse velocity), RAINFALL (one rolling
total per window of RAIN_WINDOWS_H, then antecedent and intensity-duration)."""
from __future__ import annotations

from enum import IntEnum

RAIN_WINDOWS_H = (1, 3, 6, 12, 24, 72)  # rolling rain totals the rules may set levels for


class Slot(IntEnum):
    ABSOLUTE = 0
    CHANGE = 1
    RATE = 2
    TANGENT = 3
    INVERSE_VELOCITY = 4
    RAIN_1H = 5
    RAIN_3H = 6
    RAIN_6H = 7
    RAIN_12H = 8
    RAIN_24H = 9
    RAIN_72H = 10
    ANTECEDENT = 11
    INTENSITY_DURATION = 12

    @property
    def key(self) -> str:
        """The detector's name in signals and evidence ("rate", "rain_24h", …)."""
        return self.name.lower()

    @classmethod
    def rain(cls, hours: int) -> Slot:
        """The rolling-total slot of a window of RAIN_WINDOWS_H."""
        return cls(cls.RAIN_1H + RAIN_WINDOWS_H.index(hours))


SLOTS = tuple(s.key for s in Slot)
NSLOT = len(Slot)
THRESHOLD_SLOTS = slice(Slot.ABSOLUTE, Slot.RATE + 1)
TREND_SLOTS = slice(Slot.TANGENT, Slot.INVERSE_VELOCITY + 1)
RAIN_SLOTS = slice(Slot.RAIN_1H, Slot.INTENSITY_DURATION + 1)
RAIN_TOTAL_SLOTS = slice(Slot.RAIN_1H, Slot.RAIN_72H + 1)
