"""Weather-warning routes on the service's HTTP app (API token).

POST /api/v1/weather-warnings   {"level", "counties"|"box", "valid_from", "valid_to", "id"?, "text"?}
                                201 with the warning; 422 with the reason (limits.py's bounds)
GET  /api/v1/weather-warnings   warnings, newest first, with state pending/active/expired
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from aiohttp import web

from .app import refusal
from .body import error, json_response, read_object

if TYPE_CHECKING:
    from ..weather.desk import WeatherDesk

WEATHER = web.AppKey("weather_desk", object)


def add_weather_routes(app: web.Application, desk: "WeatherDesk") -> None:
    app[WEATHER] = desk
    app.router.add_post("/api/v1/weather-warnings", post_warning)
    app.router.add_get("/api/v1/weather-warnings", list_warnings)


async def post_warning(request: web.Request) -> web.Response:
    if (denied := refusal(request, write=True)) is not None:
        return denied
    desk: WeatherDesk = request.app[WEATHER]  # type: ignore[assignment]
    doc = await read_object(request)
    try:
        w = await asyncio.to_thread(desk.ingest, doc, "http", time.time())
    except ValueError as e:
        return error(422, str(e))
    return json_response(w.to_json(), 201)


async def list_warnings(request: web.Request) -> web.Response:
    if (denied := refusal(request, write=False)) is not None:
        return denied
    desk: WeatherDesk = request.app[WEATHER]  # type: ignore[assignment]
    return json_response(await asyncio.to_thread(desk.warnings))
