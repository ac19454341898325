"""Field-report routes (community monitors) on the service's HTTP app.

POST /api/v1/field-reports   a monitor's report; `Authorization: Bearer <monitor token>`
     {"site", "ts"?, "markers": [{"marker", "distance", "unit": "cm"|"mm", "ts"?}],
      "observations": ["new_crack", …], "text"?, "photo"? (base64)}
     201 accepted; 401/403/413/422 refused with {"error": reason}: the report is kept either way
GET  /api/v1/field-reports[?site=]   reports, newest first, with status and reason (API token)
GET  /field                          the mobile form monitors use (no secret in it)
"""
from __future__ import annotations

import asyncio
import json
from importlib import resources
from typing import TYPE_CHECKING

from aiohttp import web

from .app import _denied, _error, _json

if TYPE_CHECKING:
    from ..field.desk import FieldDesk

DESK = web.AppKey("field_desk", object)
# a base64 photo of photo_max_bytes plus the rest of the report
BODY_OVERHEAD = 64 * 1024


def add_field_routes(app: web.Application, desk: "FieldDesk") -> None:
    app[DESK] = desk
    app.router.add_post("/api/v1/field-reports", post_report)
    app.router.add_get("/api/v1/field-reports", list_reports)
    app.router.add_get("/field", form)


def body_limit(desk: "FieldDesk") -> int:
    return desk.settings.photo_max_bytes * 4 // 3 + BODY_OVERHEAD


async def post_report(request: web.Request) -> web.Response:
    desk: FieldDesk = request.app[DESK]  # type: ignore[assignment]
    given = request.headers.get("Authorization", "")
    token = given[7:] if given.startswith("Bearer ") else None
    try:
        doc = json.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict):  # kept too: a broken form is worth seeing
        status, answer = await asyncio.to_thread(desk.submit, token, {"invalid_body": True})
        return _error(400 if status == 422 else status, "body must be a JSON object")
    status, answer = await asyncio.to_thread(desk.submit, token, doc)
    return _json(answer, status)


async def list_reports(request: web.Request) -> web.Response:
    if (denied := _denied(request, write=False)) is not None:
        return denied
    desk: FieldDesk = request.app[DESK]  # type: ignore[assignment]
    site = request.query.get("site") or None
    return _json(await asyncio.to_thread(desk.store.reports, site))


async def form(request: web.Request) -> web.Response:
    html = resources.files("geowarn.daemon.http").joinpath("static/field.html").read_text(encoding="utf-8")
    return web.Response(text=html, content_type="text/html", charset="utf-8")
