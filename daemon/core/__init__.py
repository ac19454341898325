"""The streaming core: series interning, fixed-size windows, vectorised detectors (detectors/),
site levels (levels/). Imports flow one way inside it: engine → levels, detectors → params,
state, buffers, series, columns; and out of it only to model/, rules and the registry."""
from ..model.results import CoreResult, Fault, Forecast, LevelChange, Signal
from .engine import Core

__all__ = ["Core", "CoreResult", "Fault", "Forecast", "LevelChange", "Signal"]
