"""Decoding helpers shared by the wire formats: size limit, UTF-8, JSON."""
from __future__ import annotations

import json
import math
import re
from typing import Any

from .base import Invalid, Reason

MAX_PAYLOAD = 256 * 1024  # a 2-hour batch of a dozen sensors is a few KiB
MAX_DEPTH = 32  # nesting of JSON arrays and objects: a national frame has 3 levels, a field report 3
# a \uD800-\uDFFF escape: JSON lets it through unpaired, UTF-8 (and so the journal) cannot hold it
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def nesting(payload: bytes) -> int:
    """How deep the JSON text's arrays and objects nest (brackets inside strings do not count)."""
    depth = deepest = 0
    for b in _BRACKET.findall(_STRING.sub(b"", payload)):
        depth += 1 if b in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999
        raise ValueError(f"{text[:40]} is beyond any number")
    return value


def load_json(payload: bytes, max_bytes: int = MAX_PAYLOAD, *, max_depth: int = MAX_DEPTH,
              allow_nan: bool = True) -> Any:
    """The document, or Invalid with the reason: size, UTF-8, nesting (checked before parsing:
    the parser recurses), syntax, lone surrogates; NaN/Infinity only when `allow_nan` (the wire
    formats quarantine them later as non_finite, with the device named)."""
    if len(payload) > max_bytes:
        raise Invalid(Reason.OVERSIZE, f"{len(payload)} bytes > {max_bytes}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Invalid(Reason.INVALID_UTF8, str(e)) from None
    # counting is C speed; only a payload with many brackets is walked
    if payload.count(b"[") + payload.count(b"{") > max_depth and nesting(payload) > max_depth:
        raise Invalid(Reason.INVALID_JSON, f"nested deeper than {max_depth}")
    try:
        doc = json.loads(text) if allow_nan else json.loads(text, parse_constant=_no_constants, parse_float=_finite)
    except (ValueError, RecursionError) as e:  # ValueError: also integers beyond 4300 digits
        raise Invalid(Reason.INVALID_JSON, str(e)[:200]) from None
    if _SURROGATE_ESCAPE.search(payload):
        try:  # only paired surrogates re-encode
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise Invalid(Reason.INVALID_UTF8, "unpaired UTF-16 surrogate escape") from None
        except RecursionError as e:
            raise Invalid(Reason.INVALID_JSON, str(e)[:200]) from None
    return doc


def preview(payload: bytes, n: int = 80) -> str:
    return payload[:n].decode("utf-8", "backslashreplace")
