"""The service's HTTP server: the alert API plus /healthz and /metrics, on its own thread and
event loop so that nothing on the intake's path waits for a slow client."""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

from aiohttp import web

from . import openapi
from .body import json_response
from .guard import GATE
from .settings import HttpSettings

if TYPE_CHECKING:
    from ..service import Service

log = logging.getLogger("geowarn.http")


class HttpServer:
    def __init__(self, service: "Service", settings: HttpSettings):
        self.service = service
        self.settings = settings
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.application: web.Application | None = None  # the one being served (its routes)
        self._thread: threading.Thread | None = None
        self.failure: str | None = None  # why the last start failed (None: serving, or not started)

    def app(self) -> web.Application:
        from .field import add_field_routes, body_limit

        app = self.service.alerts.http_app(client_max_size=body_limit(self.service.field))
        add_field_routes(app, self.service.field)
        from .weather import add_weather_routes

        add_weather_routes(app, self.service.weather)
        from .video import add_video_routes

        add_video_routes(app, self.service.video)
        from .cap import add_cap_routes

        add_cap_routes(app, self.service.alerts.cap)
        app.router.add_get(openapi.PATH, self._openapi)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        from .console import add_console

        add_console(app, self.service)
        return app

    async def _openapi(self, request: web.Request) -> web.Response:
        return json_response(openapi.document())  # no data in it: no token

    async def _healthz(self, request: web.Request) -> web.Response:
        state, reasons = self.service.health()
        body = {"status": state, "reasons": reasons, **self.service.shard_health()}
        return json_response(body, 503 if state == "failing" else 200)

    async def _metrics(self, request: web.Request) -> web.Response:
        """Under the read rule (every site's level, the open alerts), with a token of its own for
        scrapers (`http.metrics_token_env`; Prometheus sends it as `authorization` credentials)."""
        from ..metrics import render

        gate = request.app[GATE]
        if (denied := gate.denied(request, write=False, extra_env=self.settings.metrics_token_env)) is not None:
            return denied
        body = await asyncio.get_running_loop().run_in_executor(None, render, self.service, gate.counts)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    def start(self) -> None:
        """Serve on a thread of its own; a start that fails (the port taken) is logged and kept
        in `failure`, which the service's health reports as failing; `start()` may try again."""
        ready = threading.Event()
        errors: list[BaseException] = []

        async def serve() -> None:
            self.application = self.app()
            self._runner = web.AppRunner(self.application, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
            await site.start()
            self.port = self._runner.addresses[0][1]

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(serve())
            except BaseException as e:  # noqa: BLE001  -- e.g. the port is taken: handed to start()'s caller
                errors.append(e)
                if self._runner is not None:
                    self._loop.run_until_complete(self._runner.cleanup())
                self._loop.close()
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="geowarn-http", daemon=True)
        self._thread.start()
        if not ready.wait(10):  # still trying: stop() ends it
            self.failure = f"not listening on {self.settings.host}:{self.settings.port} after 10 s"
            log.error("HTTP server %s", self.failure)
        elif errors:
            self.failure = f"could not start on {self.settings.host}:{self.settings.port}: {errors[0]}"
            self._loop = self._runner = None  # nothing runs: start() may try again
            log.error("HTTP server %s", self.failure)
        else:
            self.failure = None
            log.info("HTTP on http://%s:%s", self.settings.host, self.port)

    def retry(self) -> None:
        """Start again after a start that failed (the port was taken); otherwise nothing."""
        if self.failure is not None and self._loop is None:
            self.start()

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None
