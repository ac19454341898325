"""InfluxDB export throughput against a real VictoriaMetrics, with a same-run baseline.

Fills a journal with synthetic readings, then, on a fresh server each time:
  export    InfluxExporter.run_once(): journal → line protocol → influxdb-client (SYNCHRONOUS)
  raw       the same line protocol, pre-built, POSTed with http.client to /api/v2/write
in the same batches, alternating, `--rounds` times; prints JSON with the medians (wall seconds, and
CPU seconds of this process and of the server) and the ratio
(goal: export ≥ 0.5 × raw). `points` are lines of line protocol (one per reading since the exporter
stopped grouping a device's channels into one line); `readings_per_s` compares layouts.
Usage: bench_export.py [--readings N] [--batch-size B] [--rounds R] [--read-ahead T]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from geowarn.daemon.config import InfluxSettings, load_config
from geowarn.daemon.influx_export import InfluxExporter, default_read_ahead
from geowarn.daemon.journal import Journal
from geowarn.simulators.journal_fill import fill
from geowarn.simulators.local_victoria import VictoriaMetrics


def count_samples(vm: VictoriaMetrics, expected: int) -> int:
    rows = vm.export_until('{__name__=~"reading_.+"}', expected)
    return sum(len(r["timestamps"]) for r in rows)


def server_cpu_s(vm: VictoriaMetrics) -> float:
    """CPU seconds the server process has used (user + system): where the time goes on a
    machine whose cores are all busy."""
    fields = Path(f"/proc/{vm.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Timed:
    """Wall seconds, this process's CPU seconds (all its threads) and the server's."""

    def __init__(self, vm: VictoriaMetrics):
        self.vm = vm

    def __enter__(self) -> "Timed":
        self.t0, self.c0, self.s0 = time.perf_counter(), time.process_time(), server_cpu_s(self.vm)
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = {"client": time.process_time() - self.c0, "server": server_cpu_s(self.vm) - self.s0}


def run_export(path: Path, settings: InfluxSettings, registry, readings: int, read_ahead: int | None,
               ) -> tuple[Timed, int]:
    with VictoriaMetrics() as vm:
        with InfluxExporter(path, settings.model_copy(update={"url": vm.url}), registry, read_ahead=read_ahead) as ex:
            ex.db.execute("DELETE FROM export_cursor")
            with Timed(vm) as timed:
                points = ex.run_once()
            if ex.stats.failures or ex.stats.quarantined:
                sys.exit(f"export failed: {ex.stats}")
        if count_samples(vm, readings) != readings:
            sys.exit("export: the server does not hold every reading")
    return timed, points


def build_bodies(path: Path, settings: InfluxSettings, registry) -> list[bytes]:
    """The exact line protocol the exporter sends, batch by batch (not timed)."""
    bodies, after = [], 0
    with InfluxExporter(path, settings, registry) as ex:
        while (page := ex._page_readings(after, settings.batch_size)) is not None:
            bodies.append(page.body)
            after = page.last_rowid
    return bodies


def run_raw(bodies: list[bytes], readings: int) -> Timed:
    """The bodies POSTed on one kept-alive connection, as influxdb-client's pool does: a fresh
    connection per request would handicap this side."""
    with VictoriaMetrics() as vm:
        conn = http.client.HTTPConnection("127.0.0.1", vm.port, timeout=60)
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        with Timed(vm) as timed:
            for body in bodies:
                conn.request("POST", "/api/v2/write?org=geowarn&bucket=geowarn&precision=ms", body, headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 204:
                    sys.exit(f"raw POST refused: HTTP {resp.status}")
        conn.close()
        if count_samples(vm, readings) != readings:
            sys.exit("raw: the server does not hold every reading")
    return timed


def summary(runs: list[Timed], points: int) -> dict:
    """Medians over the rounds."""
    wall = statistics.median(t.wall for t in runs)
    return {"seconds": round(wall, 3), "points_per_s": round(points / wall),
            "cpu_s": {k: round(statistics.median(t.cpu[k] for t in runs), 3) for k in ("client", "server")}}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=200_000)
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--read-ahead", type=int, help="threads formatting pages ahead (default: by CPU count)")
    args = ap.parse_args()
    registry = load_config().registry
    settings = InfluxSettings(url="http://127.0.0.1:9", batch_size=args.batch_size)
    with tempfile.TemporaryDirectory(prefix="geowarn-bench-export-") as tmp:
        path = Path(tmp) / "journal.sqlite"
        with Journal(path, "normal") as j:
            fill(j, registry, args.readings, time.time() - 86400, per_entry=5000)
        bodies = build_bodies(path, settings, registry)
        points = sum(b.count(b"\n") + 1 for b in bodies)
        load_start = os.getloadavg()[0]
        export_runs, raw_runs = [], []
        for _ in range(args.rounds):
            timed, exported = run_export(path, settings, registry, args.readings, args.read_ahead)
            assert exported == points, (exported, points)
            export_runs.append(timed)
            raw_runs.append(run_raw(bodies, args.readings))
    export, raw = summary(export_runs, points), summary(raw_runs, points)
    for side in (export, raw):  # points are lines: compare readings/s across line layouts
        side["readings_per_s"] = round(args.readings / side["seconds"])
    print(json.dumps({
        "readings": args.readings, "points": points, "batch_size": args.batch_size, "batches": len(bodies),
        "body_bytes": sum(map(len, bodies)), "rounds": args.rounds, "cpus": os.cpu_count(),
        "load_avg_1m_start": load_start, "load_avg_1m": os.getloadavg()[0],
        "read_ahead": args.read_ahead if args.read_ahead is not None else default_read_ahead(),
        "export": export, "raw_post": raw,
        "ratio": round(raw["seconds"] / export["seconds"], 3), "goal": 0.5,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
