"""Wire formats, discovered from this folder: adding a format is adding one module that
defines a `Format` class taking a `DeviceLookup`."""
from __future__ import annotations

import importlib
import pkgutil

from ..base import DeviceLookup, WireFormat


def format_classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for mod in pkgutil.iter_modules(__path__):
        if mod.name.startswith("_"):
            continue
        cls = getattr(importlib.import_module(f"{__name__}.{mod.name}"), "Format", None)
        if cls is not None:
            found[cls.name] = cls
    return found


def load_formats(lookup: DeviceLookup) -> list[WireFormat]:
    return [cls(lookup) for cls in format_classes().values()]


def format_for(topic: str, formats: list[WireFormat]) -> WireFormat | None:
    return next((f for f in formats if f.claims(topic)), None)
