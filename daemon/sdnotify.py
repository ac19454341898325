"""systemd's notify protocol (READY, STATUS, WATCHDOG, STOPPING): one datagram to
$NOTIFY_SOCKET. A no-op outside systemd."""
from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, env: dict[str, str] | None = None):
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET")
        if addr and addr.startswith("@"):  # abstract namespace
            addr = "\0" + addr[1:]
        self._addr = addr
        usec = env.get("WATCHDOG_USEC")
        self.watchdog_interval_s = int(usec) / 2e6 if usec and usec.isdigit() else None

    @property
    def enabled(self) -> bool:
        return bool(self._addr)

    def notify(self, **fields: str | int) -> None:
        if not self._addr:
            return
        msg = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(msg, self._addr)
        except OSError:
            pass  # systemd gone or socket unreachable: nothing useful to do about it

    def ready(self, status: str) -> None:
        self.notify(ready=1, status=status)

    def status(self, status: str) -> None:
        self.notify(status=status)

    def watchdog(self) -> None:
        self.notify(watchdog=1)

    def stopping(self) -> None:
        self.notify(stopping=1, status="stopping")
