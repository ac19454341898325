"""The warning levels, once for the whole service.

`Level` orders them (a higher number is a more severe warning) and names them in the
national scheme (T/CAGHP 064-2019): blue 注意级 < yellow 警示级 < orange 警戒级 < red 警报级.
Records, rules, the journal and the wire carry a level by its key ("red"); code compares
`Level` values and arrays of their integers."""
from __future__ import annotations

from enum import IntEnum
from typing import Literal

LevelName = Literal["normal", "blue", "yellow", "orange", "red"]
WarningLevelName = Literal["blue", "yellow", "orange", "red"]


class Level(IntEnum):
    NORMAL = 0
    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def key(self) -> LevelName:
        """The name records and rules use: "normal", "blue", … "red"."""
        return _KEYS[self]

    @property
    def zh(self) -> str:
        """The level's name in the national scheme (注意级 …)."""
        return _ZH[self]

    @property
    def en(self) -> str:
        return _EN[self]

    @property
    def colour_zh(self) -> str:
        """The colour word (蓝色 …), as warnings are announced."""
        return _COLOUR_ZH[self]

    @property
    def national(self) -> int:
        """The national protocol's count-down number (red 0 … blue 3; `alarm` command,
        weather-warning grades); NORMAL has none."""
        if self is Level.NORMAL:
            raise ValueError("normal has no national warning number")
        return int(Level.RED) - int(self)

    @classmethod
    def of(cls, level: str | int) -> Level:
        """A level from its key ("red") or its number (0..4); ValueError names what is allowed."""
        if isinstance(level, str):
            found = _BY_KEY.get(level)
            if found is None:
                raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
            return found
        return cls(int(level))


_KEYS: dict[Level, LevelName] = {Level.NORMAL: "normal", Level.BLUE: "blue", Level.YELLOW: "yellow",
                                 Level.ORANGE: "orange", Level.RED: "red"}
_ZH = {Level.NORMAL: "正常", Level.BLUE: "注意级", Level.YELLOW: "警示级", Level.ORANGE: "警戒级", Level.RED: "警报级"}
_EN = {Level.NORMAL: "normal", Level.BLUE: "blue (attention)", Level.YELLOW: "yellow (caution)",
       Level.ORANGE: "orange (alert)", Level.RED: "red (alarm)"}
_COLOUR_ZH = {Level.NORMAL: "正常", Level.BLUE: "蓝色", Level.YELLOW: "黄色", Level.ORANGE: "橙色", Level.RED: "红色"}
_BY_KEY = {key: lv for lv, key in _KEYS.items()}

LEVELS: tuple[LevelName, ...] = tuple(_KEYS[lv] for lv in Level)  # keys by number: LEVELS[3] == "orange"
