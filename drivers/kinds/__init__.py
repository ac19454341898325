"""Sensor kinds, discovered from this folder: adding a kind is adding one module that
defines `KIND`."""
from __future__ import annotations

import importlib
import pkgutil

from ..base import SensorKind


def _discover() -> dict[str, SensorKind]:
    found: dict[str, SensorKind] = {}
    for mod in pkgutil.iter_modules(__path__):
        if mod.name.startswith("_"):
            continue
        kind = getattr(importlib.import_module(f"{__name__}.{mod.name}"), "KIND", None)
        if isinstance(kind, SensorKind):
            found[kind.name] = kind
    return found


KINDS: dict[str, SensorKind] = _discover()
BY_CODE: dict[str, SensorKind] = {code: k for k in KINDS.values() for code in k.codes}


def kind_for_code(sensor: str) -> SensorKind | None:
    """`L1_GP_1` -> the gnss kind; the trailing number is the sensor's index on the device."""
    code, _, index = sensor.rpartition("_")
    if index.isdigit() and code in BY_CODE:
        return BY_CODE[code]
    return BY_CODE.get(sensor)
