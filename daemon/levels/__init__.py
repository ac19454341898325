"""Site warning levels: fusion of signals into four-level site warnings with hysteresis."""
from .names import LEVELS, LEVEL_INDEX, LEVEL_ZH, level_index, level_name

__all__ = ["LEVELS", "LEVEL_INDEX", "LEVEL_ZH", "level_index", "level_name"]
