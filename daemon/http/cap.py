"""Public warnings as CAP 1.2, under the same read rules as the other APIs (token unless
`http.open_reads`).

GET /api/v1/cap[?status=Actual|Exercise]   Atom feed of current and recent CAP messages
GET /api/v1/cap/{identifier}.xml           one message, exactly as issued (signed if configured)
"""
from __future__ import annotations

import asyncio
import time

from aiohttp import web

from ..cap.publisher import CapPublisher
from .app import refusal
from .body import error

CAP = web.AppKey("cap_publisher", CapPublisher)


async def feed(request: web.Request) -> web.Response:
    if (denied := refusal(request, write=False)) is not None:
        return denied
    status = request.query.get("status")
    if status not in (None, "Actual", "Exercise"):
        return error(400, "status must be Actual or Exercise")
    base = f"{request.scheme}://{request.host}"
    body = await asyncio.to_thread(request.app[CAP].feed, time.time(), f"{base}{request.path_qs}",
                                   f"{base}/api/v1/cap/{{identifier}}.xml", status)
    return web.Response(body=body, content_type="application/atom+xml", charset="utf-8")


async def message(request: web.Request) -> web.Response:
    if (denied := refusal(request, write=False)) is not None:
        return denied
    row = await asyncio.to_thread(request.app[CAP].message, request.match_info["identifier"])
    if row is None:
        return error(404, f"no CAP message {request.match_info['identifier']!r}")
    return web.Response(body=row.xml, content_type="application/cap+xml", charset="utf-8")


def add_cap_routes(app: web.Application, publisher: CapPublisher | None) -> None:
    if publisher is None:  # cap.enabled: false
        return
    app[CAP] = publisher
    app.router.add_get("/api/v1/cap", feed)
    app.router.add_get("/api/v1/cap/{identifier}.xml", message)
