"""GET /api/v1/alerts/{id}/snapshot: the latest still stored with an alert (API token)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..alerts.manager import parse_alert_id
from .app import refusal
from .body import error

if TYPE_CHECKING:
    from ..video.snapshots import Snapshots

SNAPSHOTS = web.AppKey("snapshots", object)


def add_video_routes(app: web.Application, snapshots: "Snapshots") -> None:
    app[SNAPSHOTS] = snapshots
    app.router.add_get("/api/v1/alerts/{id}/snapshot", get_snapshot)


async def get_snapshot(request: web.Request) -> web.Response:
    if (denied := refusal(request, write=False)) is not None:
        return denied
    snaps: Snapshots = request.app[SNAPSHOTS]  # type: ignore[assignment]
    try:
        path = snaps.latest(parse_alert_id(request.match_info["id"]))
    except ValueError as e:
        return error(404, str(e))
    if path is None:
        return error(404, "no still stored with this alert")
    return web.Response(body=path.read_bytes(), content_type="image/jpeg")
