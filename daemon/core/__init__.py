"""The streaming core: series interning, fixed-size windows, vectorised detectors, site levels."""
from .engine import Core
from .results import CoreResult, Fault, Forecast, LevelChange, Signal

__all__ = ["Core", "CoreResult", "Fault", "Forecast", "LevelChange", "Signal"]
