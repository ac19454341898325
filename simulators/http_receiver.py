"""A local HTTP receiver standing in for a notification gateway: apprise's `json://` posts land
here. Records every request; can be stopped and started again on the same port, or told to fail.
For tests and benchmarks (127.0.0.1 only)."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .local_broker import free_port


@dataclass(frozen=True, slots=True)
class Received:
    at: float  # time.perf_counter() on arrival
    path: str
    doc: dict[str, Any]
    content_type: str = ""

    @property
    def title(self) -> str:
        return self.doc.get("title", "")

    @property
    def message(self) -> str:
        return self.doc.get("message", "")


class HttpReceiver:
    def __init__(self, port: int | None = None, on_receive=None):
        self.port = port or free_port()
        self.on_receive = on_receive  # called with each Received (benchmarks forward them elsewhere)
        self.received: list[Received] = []
        self.failures = 0  # requests answered with 500 while failing
        self.fail = False
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.arrived = threading.Condition(self._lock)

    def url(self, path: str = "") -> str:
        return f"json://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def start(self) -> "HttpReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                with receiver.arrived:
                    if receiver.fail:
                        receiver.failures += 1
                        code = 500
                    else:
                        try:
                            doc = json.loads(raw or b"{}")
                        except ValueError:
                            doc = {"raw": raw.decode("utf-8", "replace")}
                        got = Received(time.perf_counter(), self.path, doc, self.headers.get("Content-Type", ""))
                        receiver.received.append(got)
                        receiver.arrived.notify_all()
                        code = 200
                if code == 200 and receiver.on_receive is not None:
                    receiver.on_receive(got)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="http-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.received]

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Until at least `count` requests have been recorded."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.arrived.wait(left)
        return True

    def __enter__(self) -> "HttpReceiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
