"""The HTTP API as an aiohttp Application factory the service mounts (other endpoints —
/healthz, a console — join later). Writes need `Authorization: Bearer <token>` with the token
from the environment (`http.token_env`) or systemd's credential (`http.token_credential`); reads
too unless `http.open_reads`.

GET  /api/v1/alerts[?all=1]            alerts, newest first
GET  /api/v1/alerts/{id}               one alert and its audit trail
POST /api/v1/alerts/{id}/ack           {"by": "name"}: stops repeats and escalation
POST /api/v1/alerts/{id}/stand-down    {"by": "name", "reason": "..."}: closes it, audited
POST /api/v1/silences                  {"site"|"device", "fault"?, "until", "by", "reason"}: a
                                       maintenance window for data-quality alerts (never hazards)
"""
from __future__ import annotations

import asyncio
import hmac
import json
import os
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from geowarn.drivers.base import Invalid
from geowarn.drivers.timestamps import parse_ts

from ..alerts.manager import AlertManager
from ..alerts.store import AlertClosed, AlertNotFound
from ..secrets import secret
from .settings import HttpSettings

MANAGER = web.AppKey("alert_manager", AlertManager)
SETTINGS = web.AppKey("http_settings", HttpSettings)
ENVIRON = web.AppKey("environ", Mapping)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


def _denied(request: web.Request, write: bool) -> web.Response | None:
    settings = request.app[SETTINGS]
    if not write and settings.open_reads:
        return None
    token = secret(settings.token_env, settings.token_credential, request.app[ENVIRON])
    if not token:
        return _error(503, f"no API token configured: set {settings.token_env} "
                           f"or the credential {settings.token_credential}")
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer "):
        return _error(401, "missing `Authorization: Bearer <token>`")
    if not hmac.compare_digest(given[7:].encode(), token.encode()):
        return _error(403, "wrong token")
    return None


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        doc = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be JSON"}),
                                 content_type="application/json") from None
    if not isinstance(doc, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object"}),
                                 content_type="application/json")
    return doc


async def _call(fn, *args, **kwargs) -> web.Response:
    """Manager calls touch SQLite (and fsync): off the event loop."""
    try:
        return _json(await asyncio.to_thread(fn, *args, **kwargs))
    except AlertNotFound as e:
        return _error(404, str(e))
    except AlertClosed as e:
        return _error(409, str(e))
    except ValueError as e:
        return _error(400, str(e))


async def list_alerts(request: web.Request) -> web.Response:
    if (denied := _denied(request, write=False)) is not None:
        return denied
    mgr = request.app[MANAGER]
    open_only = request.query.get("all") not in ("1", "true", "yes")
    return await _call(lambda: [a.to_json() for a in mgr.alerts(open_only)])


async def get_alert(request: web.Request) -> web.Response:
    if (denied := _denied(request, write=False)) is not None:
        return denied
    mgr = request.app[MANAGER]

    def one() -> dict:
        alert, history = mgr.get(request.match_info["id"])
        return {**alert.to_json(), "history": history}
    return await _call(one)


async def ack_alert(request: web.Request) -> web.Response:
    if (denied := _denied(request, write=True)) is not None:
        return denied
    body = await _body(request)
    who = str(body.get("by") or "api")
    mgr = request.app[MANAGER]
    return await _call(lambda: mgr.ack(request.match_info["id"], who, via="http").to_json())


async def stand_down_alert(request: web.Request) -> web.Response:
    if (denied := _denied(request, write=True)) is not None:
        return denied
    body = await _body(request)
    mgr = request.app[MANAGER]
    return await _call(lambda: mgr.stand_down(request.match_info["id"], str(body.get("by") or ""),
                                              str(body.get("reason") or "")).to_json())


async def add_silence(request: web.Request) -> web.Response:
    if (denied := _denied(request, write=True)) is not None:
        return denied
    body = await _body(request)
    mgr = request.app[MANAGER]
    try:
        until = parse_ts(body.get("until"))
        starts = parse_ts(body["starts"]) if body.get("starts") is not None else None
    except Invalid as e:
        return _error(400, f"until/starts: {e.detail}")
    opt = lambda k: str(body[k]) if body.get(k) else None  # noqa: E731
    return await _call(lambda: {"id": mgr.silence(site=opt("site"), device=opt("device"), fault=opt("fault"),
                                                  until=until, starts=starts, who=str(body.get("by") or ""),
                                                  reason=str(body.get("reason") or ""))})


def make_app(manager: AlertManager, settings: HttpSettings | None = None,
             environ: Mapping[str, str] | None = None, client_max_size: int = 64 * 1024) -> web.Application:
    app = web.Application(client_max_size=client_max_size)
    app[MANAGER] = manager
    app[SETTINGS] = settings or HttpSettings()
    app[ENVIRON] = os.environ if environ is None else environ
    app.router.add_get("/api/v1/alerts", list_alerts)
    app.router.add_get("/api/v1/alerts/{id}", get_alert)
    app.router.add_post("/api/v1/alerts/{id}/ack", ack_alert)
    app.router.add_post("/api/v1/alerts/{id}/stand-down", stand_down_alert)
    app.router.add_post("/api/v1/silences", add_silence)
    return app
