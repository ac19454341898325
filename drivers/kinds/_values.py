"""Coercion helpers shared by the sensor-kind normalisers."""
from __future__ import annotations

from typing import Any

from ..base import Invalid, Reason


def number(raw: Any, what: str) -> float:
    """A float from a JSON number or numeric string. Non-finite values pass through:
    the screen quarantines them with their own reason."""
    if raw is None:
        raise Invalid(Reason.MISSING_VALUE, f"{what} is missing")
    if isinstance(raw, bool):
        raise Invalid(Reason.NON_NUMERIC, f"{what} is a boolean")
    if isinstance(raw, (int, float)):
        try:
            return float(raw)
        except OverflowError:  # an integer literal beyond any float
            raise Invalid(Reason.IMPOSSIBLE_VALUE, f"{what} has {len(str(raw))} digits") from None
    if isinstance(raw, str):
        try:
            return float(raw.strip())
        except ValueError:
            raise Invalid(Reason.NON_NUMERIC, f"{what} is {raw[:40]!r}") from None
    raise Invalid(Reason.NON_NUMERIC, f"{what} is a {type(raw).__name__}")


def fields(raw: Any, names: tuple[str, ...], what: str) -> dict[str, Any]:
    """Normalise the three shapes devices send for multi-axis sensors to one dict:
    an object, or a comma string "a,b,c" in the order `names`."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and "," in raw:
        parts = [p.strip() for p in raw.split(",")]
        return {n: p for n, p in zip(names, parts) if p != ""}
    raise Invalid(Reason.BAD_SCHEMA, f"{what} must be an object or comma string, got {type(raw).__name__}")


def scalar(raw: Any, key: str, what: str) -> float:
    """A single-valued sensor: a bare number, or an object holding it under `key`."""
    if isinstance(raw, dict):
        return number(raw.get(key), f"{what}.{key}")
    return number(raw, what)


def required(obj: dict[str, Any], mapping: dict[str, str], what: str) -> dict[str, float]:
    """Map source keys to channels; every key must be present."""
    return {ch: number(obj.get(src), f"{what}.{src}") for src, ch in mapping.items()}


def optional(obj: dict[str, Any], mapping: dict[str, str], what: str) -> dict[str, float]:
    """Map source keys to channels, skipping keys that are absent."""
    return {ch: number(obj[src], f"{what}.{src}") for src, ch in mapping.items() if obj.get(src) is not None}
