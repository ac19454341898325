"""A throw-away VictoriaMetrics on 127.0.0.1 and a free port: for tests and benchmarks.

Debian's `victoria-metrics` accepts influxdb-client writes on `/api/v2/write` (Debian's
`influxdb` 1.6 does not), so the InfluxDB export is tested against it. It keeps its data across
`restart()` (same directory, same port), which is what an outage looks like to geowarn.
Reads go through `/api/v1/export`, which returns raw samples, duplicates included: exactly-once
is visible there.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from .local_broker import free_port, wait_port


def victoria_exe() -> str:
    exe = shutil.which("victoria-metrics") or (
        "/usr/bin/victoria-metrics" if Path("/usr/bin/victoria-metrics").exists() else None)
    if exe is None:
        raise RuntimeError("victoria-metrics is not installed "
                           "(Debian: apt-get install victoria-metrics; `make test` does it)")
    return exe


class VictoriaMetrics:
    def __init__(self, port: int | None = None, workdir: str | Path | None = None, extra: list[str] | None = None):
        self.exe = victoria_exe()
        self.port = port or free_port()
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="geowarn-victoria-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.extra = list(extra or [])
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "VictoriaMetrics":
        with open(self.dir / "victoria.log", "ab") as log:
            self.proc = subprocess.Popen(
                [self.exe, f"-httpListenAddr=127.0.0.1:{self.port}", f"-storageDataPath={self.dir / 'data'}",
                 "-loggerLevel=WARN", *self.extra],
                stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_port(self.port, timeout=20)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"victoria-metrics did not start; see {self.dir / 'victoria.log'}") from None
        return self

    def stop(self) -> None:
        """Graceful stop: VictoriaMetrics flushes what it acknowledged before it exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "VictoriaMetrics":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- reading back --------------------------------------------------------------------------

    def flush(self) -> None:
        """Make everything written so far visible to reads (it is otherwise buffered ~1 s)."""
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30).read()

    def export(self, match: str = '{__name__=~".+"}') -> list[dict]:
        """Raw samples of every series matching `match`: [{"metric": {...}, "values": [...],
        "timestamps": [...]}, ...]."""
        self.flush()
        body = urllib.parse.urlencode({"match[]": match, "start": "0"}).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/export", data=body, timeout=60) as r:
            return [json.loads(line) for line in r.read().splitlines() if line.strip()]

    def export_until(self, match: str, samples: int, timeout: float = 60.0) -> list[dict]:
        """Export once at least `samples` samples are visible (new series become searchable a
        moment after their first write), or whatever is there at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.export(match)
            if sum(len(r["timestamps"]) for r in rows) >= samples or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)

    def post_lines(self, body: bytes, precision: str = "ms") -> int:
        """A raw line-protocol POST to the InfluxDB v2 write endpoint; the HTTP status."""
        req = urllib.request.Request(f"{self.url}/api/v2/write?org=geowarn&bucket=geowarn&precision={precision}",
                                     data=body, method="POST")
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status
