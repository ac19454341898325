"""Level names. Integers order them: a higher number is a more severe warning."""
from __future__ import annotations

LEVELS = ("normal", "blue", "yellow", "orange", "red")
LEVEL_INDEX = {name: i for i, name in enumerate(LEVELS)}
# T/CAGHP 064-2019 names of the four warning levels
LEVEL_ZH = {"normal": "正常", "blue": "注意级", "yellow": "警示级", "orange": "警戒级", "red": "警报级"}
LEVEL_EN = {"normal": "normal", "blue": "blue (attention)", "yellow": "yellow (caution)",
            "orange": "orange (alert)", "red": "red (alarm)"}
NORMAL, BLUE, YELLOW, ORANGE, RED = range(5)


def level_index(name: str) -> int:
    return LEVEL_INDEX[name]


def level_name(i: int) -> str:
    return LEVELS[int(i)]
