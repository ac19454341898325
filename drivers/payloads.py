"""Decoding helpers shared by the wire formats: size limit, UTF-8, JSON."""
from __future__ import annotations

import json
from typing import Any

from .base import Invalid, Reason

MAX_PAYLOAD = 256 * 1024  # a 2-hour batch of a dozen sensors is a few KiB


def load_json(payload: bytes, max_bytes: int = MAX_PAYLOAD) -> Any:
    if len(payload) > max_bytes:
        raise Invalid(Reason.OVERSIZE, f"{len(payload)} bytes > {max_bytes}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Invalid(Reason.INVALID_UTF8, str(e)) from None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise Invalid(Reason.INVALID_JSON, str(e)[:200]) from None


def preview(payload: bytes, n: int = 80) -> str:
    return payload[:n].decode("utf-8", "backslashreplace")
