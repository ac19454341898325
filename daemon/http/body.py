"""JSON in and out of the HTTP API, strictly. In: only with `Content-Type: application/json`,
within a size limit checked before reading and a nesting limit checked before parsing (the
wire formats' loader, drivers/payloads.py), valid UTF-8 without lone surrogates, no
NaN/Infinity. Out: never NaN or Infinity (browsers' JSON.parse rejects them): a non-finite
number is written as null."""
from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

from geowarn.drivers.base import Invalid, Reason
from geowarn.drivers.payloads import load_json

API_BODY_MAX = 64 * 1024  # an acknowledgement, a stand-down, a silence, a weather warning
PREVIEW_BYTES = 256  # what a refusal record keeps of a body it did not accept


class BodyRefused(Exception):
    """A request body that is not what the route takes; `status` is the HTTP answer."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def dumps(data: Any) -> str:
    try:
        return json.dumps(data, ensure_ascii=False, allow_nan=False)
    except ValueError:  # a NaN somewhere (e.g. a forecast's fit): null instead
        return json.dumps(_finite(data), ensure_ascii=False, allow_nan=False)


def _finite(o: Any) -> Any:
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=dumps(data), status=status, content_type="application/json")


def error(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status)


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The body, refused (413) as soon as it is known to exceed `max_bytes`."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise BodyRefused(413, f"body of {declared} bytes; at most {max_bytes}")
    data = bytearray()
    while chunk := await request.content.read(64 * 1024):
        data += chunk
        if len(data) > max_bytes:
            raise BodyRefused(413, f"body over {max_bytes} bytes")
    return bytes(data)


async def read_json(request: web.Request, max_bytes: int = API_BODY_MAX, *, optional: bool = False) -> Any:
    """The request's JSON document; BodyRefused (400, 413, 415) otherwise. `optional`: a request
    without a body reads as {}."""
    if not request.body_exists:
        if optional:
            return {}
        raise BodyRefused(400, "a JSON body is required")
    if request.content_type != "application/json":
        raise BodyRefused(415, f"Content-Type must be application/json, not {request.content_type[:60]!r}")
    raw = await read_body(request, max_bytes)
    if not raw.strip() and optional:
        return {}
    try:
        return load_json(raw, max_bytes, allow_nan=False)
    except Invalid as e:
        status = 413 if e.reason == Reason.OVERSIZE else 400
        raise BodyRefused(status, f"body is not valid JSON ({e.reason}): {e.detail}"[:300]) from None


async def read_object(request: web.Request, max_bytes: int = API_BODY_MAX, *, optional: bool = False
                      ) -> dict[str, Any]:
    doc = await read_json(request, max_bytes, optional=optional)
    if not isinstance(doc, dict):
        raise BodyRefused(400, "body must be a JSON object")
    return doc


def preview(raw: bytes) -> str:
    """The first bytes of a body, as text, for a refusal record."""
    return raw[:PREVIEW_BYTES].decode("utf-8", "replace")
