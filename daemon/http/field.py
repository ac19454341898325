"""Field-report routes (community monitors) on the service's HTTP app.

POST /api/v1/field-reports   a monitor's report; `Authorization: Bearer <monitor token>`
     {"site", "ts"?, "markers": [{"marker", "distance", "unit": "cm"|"mm", "ts"?}],
      "observations": ["new_crack", …], "text"?, "photo"? (base64)}
     201 accepted; 400/401/403/413/415/422 refused with {"error": reason}: the report is kept
     either way (without a valid token only as a bounded record, and 429 past the address's budget)
GET  /api/v1/field-reports[?site=]   reports, newest first, with status and reason (API token)
GET  /field                          the mobile form monitors use (no secret in it)
"""
from __future__ import annotations

import asyncio
from importlib import resources
from typing import TYPE_CHECKING

from aiohttp import web

from .app import refusal
from .body import PREVIEW_BYTES, BodyRefused, json_response, preview, read_object
from .guard import GATE, bearer

if TYPE_CHECKING:
    from ..field.desk import FieldDesk

DESK = web.AppKey("field_desk", object)
# a base64 photo of photo_max_bytes plus the rest of the report
BODY_OVERHEAD = 64 * 1024
MISSING_TOKEN = "缺少令牌 missing token: `Authorization: Bearer <monitor token>`"
WRONG_TOKEN = "令牌错误 wrong token"


def add_field_routes(app: web.Application, desk: "FieldDesk") -> None:
    app[DESK] = desk
    app.router.add_post("/api/v1/field-reports", post_report)
    app.router.add_get("/api/v1/field-reports", list_reports)
    app.router.add_get("/field", form)


def body_limit(desk: "FieldDesk") -> int:
    return desk.settings.photo_max_bytes * 4 // 3 + BODY_OVERHEAD


async def post_report(request: web.Request) -> web.Response:
    """Every report that reaches the desk is kept with its reason; one without a valid token is
    kept as a bounded record (who, reason, the body's first bytes) within the address's budget."""
    desk: FieldDesk = request.app[DESK]  # type: ignore[assignment]
    gate = request.app[GATE]
    token = bearer(request)
    monitor = desk.monitor_for(token) if token is not None else None
    if monitor is None:
        status, reason = (401, MISSING_TOKEN) if token is None else (403, WRONG_TOKEN)
        answer = gate.refuse(request, status, reason)
        if answer.status == 429:
            return answer
        head = preview(await request.content.read(PREVIEW_BYTES))
        record = {"from": request.remote, "bytes": request.content_length, "preview": head}
        rid = await asyncio.to_thread(desk.refuse, None, reason, record)
        return json_response({"id": rid, "status": "rejected", "error": reason}, status)
    try:
        doc = await read_object(request, body_limit(desk))
    except BodyRefused as e:
        if e.status == 413:
            gate.oversize(request, e.reason)
        rid = await asyncio.to_thread(desk.refuse, monitor, e.reason, {"bytes": request.content_length})
        return json_response({"id": rid, "status": "rejected", "error": e.reason}, e.status)
    status, answer = await asyncio.to_thread(desk.submit, monitor, doc)
    return json_response(answer, status)


async def list_reports(request: web.Request) -> web.Response:
    if (denied := refusal(request, write=False)) is not None:
        return denied
    desk: FieldDesk = request.app[DESK]  # type: ignore[assignment]
    site = request.query.get("site") or None
    return json_response(await asyncio.to_thread(desk.store.reports, site))


async def form(request: web.Request) -> web.Response:
    html = resources.files("geowarn.daemon.http").joinpath("static/field.html").read_text(encoding="utf-8")
    return web.Response(text=html, content_type="text/html", charset="utf-8")
