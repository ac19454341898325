"""Decoding helpers shared by the wire formats: size limit, UTF-8, JSON."""
from __future__ import annotations

import json
import re
from typing import Any

from .base import Invalid, Reason

MAX_PAYLOAD = 256 * 1024  # a 2-hour batch of a dozen sensors is a few KiB
# a \uD800-\uDFFF escape: JSON lets it through unpaired, UTF-8 (and so the journal) cannot hold it
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def load_json(payload: bytes, max_bytes: int = MAX_PAYLOAD) -> Any:
    if len(payload) > max_bytes:
        raise Invalid(Reason.OVERSIZE, f"{len(payload)} bytes > {max_bytes}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Invalid(Reason.INVALID_UTF8, str(e)) from None
    try:
        doc = json.loads(text)
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
