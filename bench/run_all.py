"""`make bench`: every benchmark, CI-sized, in one run; ONE JSON object on stdout.

Each benchmark script runs as its own subprocess (their own output goes to stderr) and prints
its JSON; this collects the headline figures, each with its same-run baseline and the ratio,
plus the machine and its load, and keeps every script's full output under "runs".

    python bench/run_all.py [--full]      # --full: the scripts' own (larger) default sizes
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# script -> CI-sized arguments (a few minutes in all on two cores)
SMALL = {
    "bench_ingest.py": ["--messages", "10000", "--rounds", "1", "--latency-rate", "500"],
    "bench_core.py": [],
    "bench_export.py": ["--readings", "50000", "--rounds", "5"],
    "bench_alert.py": ["--trials", "100", "--load", "300"],
    "bench_warm.py": [],
}


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}", "load_avg_at_start": os.getloadavg()}


def run(script: str, args: list[str]) -> dict[str, Any]:
    t = time.monotonic()
    proc = subprocess.run([sys.executable, str(HERE / script), *args], stdout=subprocess.PIPE, stderr=sys.stderr,
                          text=True, timeout=1800)
    out: dict[str, Any] = {"args": args, "seconds": round(time.monotonic() - t, 1),
                           "load_avg_after": os.getloadavg()[0]}
    if proc.returncode != 0:
        return {**out, "error": f"exit status {proc.returncode}"}
    try:
        return {**out, "result": json.loads(proc.stdout)}
    except json.JSONDecodeError as e:
        return {**out, "error": f"no JSON on stdout: {e}"}


def _fig(value: float, baseline: float | None, unit: str, baseline_is: str, higher_is_better: bool = True,
         goal: Any = None, goal_ratio: float | None = None) -> dict[str, Any]:
    """One figure: `goal` bounds the value, `goal_ratio` the ratio to the baseline."""
    out: dict[str, Any] = {"value": value, "unit": unit, "baseline": baseline, "baseline_is": baseline_is}
    if baseline:
        out["ratio"] = round(value / baseline, 3)
    if goal is not None:
        out["goal"] = goal
    if goal_ratio is not None:
        out["goal_ratio"] = goal_ratio
    out["higher_is_better"] = higher_is_better
    return out


def figures(runs: dict[str, dict]) -> dict[str, Any]:
    """The headline figures; a benchmark that failed leaves its figures out (see "runs")."""
    r = {name: run_.get("result") for name, run_ in runs.items()}
    out: dict[str, Any] = {}
    if ing := r.get("bench_ingest.py"):
        out["intake_messages_per_s"] = _fig(ing["geowarn_messages_per_s"], ing["bare_messages_per_s"], "messages/s",
                                            "bare MQTT subscriber, same broker and publisher")
        out["intake_reading_to_journal_ms_p99"] = _fig(ing["latency_ms_p99"], None, "ms", "none",
                                                       higher_is_better=False)
    if core := r.get("bench_core.py"):
        daily = core["core_80_sites_30_days_daily_batches"]
        out["core_readings_per_s"] = _fig(daily["readings_per_s"], core["loop_80_sites_30_days"]["readings_per_s"],
                                          "readings/s", "per-reading Python loop, same detectors and readings",
                                          goal=core["goals"]["readings_per_s_80_sites"],
                                          goal_ratio=core["goals"]["ratio_to_loop"])
        out["memory_per_series_bytes"] = _fig(core["memory_per_series_bytes"], core["window_bytes_per_series"],
                                              "bytes", "the detector windows alone", higher_is_better=False,
                                              goal=core["goals"]["bytes_per_series"])
    if alert := r.get("bench_alert.py"):
        for p in ("p50", "p99"):
            out[f"red_to_siren_command_ms_{p}"] = _fig(
                alert[f"event_to_siren_command_ms_{p}"], alert[f"event_queued_in_outbox_ms_{p}"], "ms",
                "the same event only queued in the outbox (the durable write before any send)",
                higher_is_better=False, goal=alert["goal_siren_p99_ms"] if p == "p99" else None)
    if exp := r.get("bench_export.py"):
        out["export_points_per_s"] = _fig(exp["export"]["points_per_s"], exp["raw_post"]["points_per_s"], "points/s",
                                          "the same line protocol, pre-built, POSTed on one kept-alive connection",
                                          goal_ratio=exp["goal"])
    if warm := r.get("bench_warm.py"):
        out["warm_up_30_days_s"] = _fig(warm["warm_s"], warm["read_only_s"], "s",
                                        "reading the same journal rows with no detector work",
                                        higher_is_better=False, goal=warm["goal_s"])
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="the scripts' own default sizes")
    ap.add_argument("--only", nargs="*", help="a subset of the scripts, e.g. bench_warm.py")
    args = ap.parse_args()
    report: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    runs = {}
    for script, small in SMALL.items():
        if args.only and script not in args.only:
            continue
        print(f"== {script}", file=sys.stderr, flush=True)
        runs[script] = run(script, [] if args.full else small)
    report["figures"] = figures(runs)
    report["runs"] = runs
    report["failed"] = sorted(s for s, r in runs.items() if "error" in r)
    json.dump(report, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
