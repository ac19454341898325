"""A nudge across processes: the manager tells a `geowarn deliver` worker running elsewhere
that the outbox has work, over a datagram socket in the state directory, so delivery does not
wait for the worker's next poll. Best effort: with nobody listening, the poll still finds it."""
from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

SOCKET_NAME = "outbox.wake"


def socket_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / SOCKET_NAME


def nudge(path: str | Path) -> None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            s.sendto(b"!", str(path))
    except OSError:
        pass  # no worker listening (or its queue is full: it is awake anyway)


class WakeListener:
    """Binds the socket (the caller holds the outbox lock, so a stale file is ours to remove)."""

    def __init__(self, path: str | Path, on_wake: Callable[[], None]):
        self.path = Path(path)
        self.on_wake = on_wake
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> "WakeListener":
        try:
            self.path.unlink(missing_ok=True)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(str(self.path))
        except OSError:  # e.g. a path longer than AF_UNIX allows: polling alone then
            return self
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="geowarn-outbox-wake", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                self._sock.recv(64)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self.on_wake()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self._sock is not None:
            self._sock.close()
            try:
                os.unlink(self.path)
            except OSError:
                pass
