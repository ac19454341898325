"""The HTTP API as an aiohttp Application factory the service mounts (other endpoints —
/healthz, a console — join later). Writes need `Authorization: Bearer <token>` with the token
from the environment (`http.token_env`) or systemd's credential (`http.token_credential`); reads
too unless `http.open_reads`.

GET  /api/v1/alerts[?all=1]            alerts, newest first
GET  /api/v1/alerts/{id}               one alert and its audit trail (404 for no such id)
POST /api/v1/alerts/{id}/ack           {"by": "name"}: stops repeats and escalation
POST /api/v1/alerts/{id}/stand-down    {"by": "name", "reason": "..."}: closes it, audited
POST /api/v1/silences                  {"site"|"device", "fault"?, "until", "by", "reason"}: a
                                       maintenance window for data-quality alerts (never hazards)
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from aiohttp import web

from .. import limits
from ..alerts.manager import AlertManager, parse_alert_id
from ..alerts.store import AlertClosed, AlertNotFound
from .body import error, json_response, read_object
from .guard import GATE, Gate, answer_in_json
from .settings import HttpSettings

MANAGER = web.AppKey("alert_manager", AlertManager)
SETTINGS = web.AppKey("http_settings", HttpSettings)


def refusal(request: web.Request, write: bool) -> web.Response | None:
    """None if the request may pass (guard.py); else the answer."""
    return request.app[GATE].denied(request, write)


def _alert_id(request: web.Request) -> int | web.Response:
    """The path's alert id, or the 404 answer for one that cannot exist (also past 2^63 - 1)."""
    try:
        return parse_alert_id(request.match_info["id"])
    except ValueError as e:
        return error(404, str(e))


async def _call(fn, *args, **kwargs) -> web.Response:
    """Manager calls touch SQLite (and fsync): off the event loop. A ValueError is a refused
    input (422)."""
    try:
        return json_response(await asyncio.to_thread(fn, *args, **kwargs))
    except AlertNotFound as e:
        return error(404, str(e))
    except AlertClosed as e:
        return error(409, str(e))
    except ValueError as e:
        return error(422, str(e))


async def list_alerts(request: web.Request) -> web.Response:
    if (denied := refusal(request, write=False)) is not None:
        return denied
    mgr = request.app[MANAGER]
    open_only = request.query.get("all") not in ("1", "true", "yes")
    return await _call(lambda: [a.to_json() for a in mgr.alerts(open_only)])


async def get_alert(request: web.Request) -> web.Response:
    if (denied := refusal(request, write=False)) is not None:
        return denied
    mgr, aid = request.app[MANAGER], _alert_id(request)
    if isinstance(aid, web.Response):
        return aid

    def one() -> dict:
        alert, history = mgr.get(aid)
        return {**alert.to_json(), "history": history}
    return await _call(one)


async def ack_alert(request: web.Request) -> web.Response:
    if (denied := refusal(request, write=True)) is not None:
        return denied
    if isinstance(aid := _alert_id(request), web.Response):
        return aid
    body = await read_object(request, optional=True)
    mgr = request.app[MANAGER]
    return await _call(lambda: mgr.ack(aid, limits.text(body.get("by"), "by", limits.NAME_MAX_CHARS, default="api"),
                                       via="http").to_json())


async def stand_down_alert(request: web.Request) -> web.Response:
    if (denied := refusal(request, write=True)) is not None:
        return denied
    if isinstance(aid := _alert_id(request), web.Response):
        return aid
    body = await read_object(request)
    mgr = request.app[MANAGER]
    return await _call(lambda: mgr.stand_down(aid, body.get("by"), body.get("reason")).to_json())


async def add_silence(request: web.Request) -> web.Response:
    if (denied := refusal(request, write=True)) is not None:
        return denied
    body = await read_object(request)
    mgr = request.app[MANAGER]

    def silence() -> dict[str, int]:
        until = limits.bounded_ts(body.get("until"), "until")
        starts = limits.bounded_ts(body["starts"], "starts") if body.get("starts") is not None else None
        opt = {k: limits.text(body.get(k), k, limits.NAME_MAX_CHARS) or None for k in ("site", "device", "fault")}
        return {"id": mgr.silence(**opt, until=until, starts=starts, who=body.get("by"), reason=body.get("reason"))}
    return await _call(silence)


def make_app(manager: AlertManager, settings: HttpSettings | None = None,
             environ: Mapping[str, str] | None = None, client_max_size: int = 64 * 1024) -> web.Application:
    app = web.Application(client_max_size=client_max_size, middlewares=[answer_in_json])
    app[MANAGER] = manager
    app[SETTINGS] = settings = settings or HttpSettings()
    app[GATE] = Gate(settings, os.environ if environ is None else environ)
    app.router.add_get("/api/v1/alerts", list_alerts)
    app.router.add_get("/api/v1/alerts/{id}", get_alert)
    app.router.add_post("/api/v1/alerts/{id}/ack", ack_alert)
    app.router.add_post("/api/v1/alerts/{id}/stand-down", stand_down_alert)
    app.router.add_post("/api/v1/silences", add_silence)
    return app
