"""A small TCP proxy on 127.0.0.1 for fault tests: forwards to one upstream port, and on demand
cuts every open connection, refuses new ones for a while, or delays every chunk it forwards."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

from geowarn.simulators.local_broker import free_port


class TcpProxy:
    def __init__(self, upstream_port: int):
        self.upstream = upstream_port
        self.port = free_port()
        self.delay_s = 0.0
        self.cuts = 0
        self._down = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> "TcpProxy":
        self._thread.start()
        return self

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            if self._down.is_set():  # the network is out: the connection dies at once
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                if self.delay_s:
                    time.sleep(self.delay_s)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                self._close(s)

    def _close(self, s: socket.socket) -> None:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    @contextmanager
    def down(self):
        """The network is out while inside: open connections dropped, new ones refused."""
        self._down.set()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            self._close(s)
        self.cuts += 1
        try:
            yield
        finally:
            self._down.clear()

    def cut(self, down_s: float = 0.0) -> None:
        """Drop every open connection, and refuse new ones for `down_s` seconds."""
        with self.down():
            time.sleep(down_s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._listener.close()
        self.cut()
