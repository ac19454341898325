"""Ingest benchmark: readings/s at QoS 1 through Mosquitto into the journal, against a bare
subscriber that does no work, from the same broker and the same publisher, in the same run.

The publisher runs in its own process and sends every device of the default network in its
own wire format, each payload stamped with its publish time, so reading-to-journal latency is
measured from publish to commit (taken when the intake hands the committed batch downstream).

    python bench/bench_ingest.py [--messages 40000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path


from geowarn.daemon.config import IntakeSettings, load_config
from geowarn.daemon.intake import Intake
from geowarn.daemon.journal import Journal
from geowarn.drivers.formats import format_classes
from geowarn.drivers.mqtt import make_client, parse_broker_url
from geowarn.simulators.local_broker import Mosquitto
from geowarn.simulators.publisher import Publisher

SAMPLE = {"gnss": {"dx": 1.0, "dy": 2.0, "dz": 3.0}, "crack": {"width": 1.5}, "tilt": {"x": 0.1, "y": 0.2},
          "rain": {"mm": 0.5}, "pressure": {"kpa": 120.0}}
READINGS_PER = {"gnss": 4, "crack": 1, "tilt": 2, "rain": 1, "pressure": 1}


def _publish(url: str, n: int, go, done_q, seed: int, rate: float | None) -> None:
    registry = load_config().registry
    native = format_classes()["native"](registry)
    devices = [d for d in registry.devices if d.kind in SAMPLE]
    pub = Publisher(url, f"bench-pub-{seed}").connect()
    go.wait()
    t0 = time.time()
    for i in range(n):
        if rate is not None:  # paced: latency is measured below saturation
            time.sleep(max(0.0, t0 + i / rate - time.time()))
        dev = devices[i % len(devices)]
        ts = time.time()  # epoch seconds keep microseconds: the send time is the reading's time
        topic, _ = native.encode_readings(dev, ts, SAMPLE[dev.kind])
        payload = json.dumps({"ts": ts, "seq": i, "values": SAMPLE[dev.kind]})
        pub.publish(topic, payload)
    pub.flush(300)
    done_q.put(n / (time.time() - t0))
    pub.close()


def _readings_in(n: int, registry) -> int:
    kinds = [d.kind for d in registry.devices if d.kind in SAMPLE]
    return sum(READINGS_PER[kinds[i % len(kinds)]] for i in range(n))


class Bare:
    """A subscriber that only counts: the ceiling for any work done per message."""

    def __init__(self, url_port: int, client_id: str):
        self.count = 0
        self.first = self.last = 0.0
        # the same session settings as the intake: persistent, QoS 1, receive maximum 1000
        self.client, connect_kwargs = make_client(client_id, broker=parse_broker_url(f"mqtt://127.0.0.1:{url_port}"),
                                                  persistent_session_s=3600, receive_maximum=1000)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", url_port, **connect_kwargs)
        self.client.subscribe([("geowarn/v1/+/+/reading", 1), ("$dp", 1)])
        self.client.loop_start()
        time.sleep(0.3)

    def _on_message(self, client, userdata, msg):
        now = time.time()
        if not self.count:
            self.first = now
        self.count += 1
        self.last = now

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def run_round(broker: Mosquitto, n: int, kind: str, workdir: Path, rnd: int, rate: float | None = None) -> dict:
    registry = load_config().registry
    ctx = mp.get_context("fork")
    go, done_q = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_publish, args=(broker.url, n, go, done_q, rnd, rate))
    proc.start()
    latencies: list[float] = []
    commits: list[float] = []
    if kind == "bare":
        sub = Bare(broker.port, f"bench-bare-{rnd}")
    else:
        journal = Journal(workdir / f"journal-{rnd}.sqlite")

        def sink(c):
            now = time.time()
            commits.append(now)
            latencies.extend(now - r.ts for r, _ in c.entry.readings)

        sub = Intake(registry, IntakeSettings(client_id=f"bench-geowarn-{rnd}"), journal, sink=sink,
                     broker_url=broker.url)
        sub.start()
        sub.wait_connected()
        time.sleep(0.3)
    time.sleep(0.5)
    go.set()
    pub_rate = done_q.get(timeout=600)
    proc.join()
    expected = n if kind == "bare" else _readings_in(n, registry)
    deadline = time.time() + 120
    while time.time() < deadline:
        got = sub.count if kind == "bare" else len(latencies)
        if got >= expected:
            break
        time.sleep(0.05)
    if kind == "bare":
        seconds = sub.last - sub.first
        sub.close()
        return {"messages_per_s": n / seconds, "publisher_per_s": pub_rate}
    sub.stop()
    stored = journal.count_readings()
    journal.close()
    assert stored == expected, f"journal holds {stored} of {expected} readings"
    seconds = max(commits) - min(commits)
    lat = sorted(latencies)
    return {"messages_per_s": n / seconds, "readings_per_s": stored / seconds, "publisher_per_s": pub_rate,
            "latency_ms_p50": 1000 * lat[len(lat) // 2], "latency_ms_p99": 1000 * lat[int(len(lat) * 0.99)]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=40_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency-rate", type=float, default=1000.0, help="messages/s of the paced latency round")
    args = ap.parse_args()
    registry = load_config().registry
    results: dict[str, list[dict]] = {"bare": [], "geowarn": []}
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(workdir=tmp) as broker:
        for rnd in range(args.rounds):
            for kind in ("bare", "geowarn"):  # alternate, so drift hits both alike
                results[kind].append(run_round(broker, args.messages, kind, Path(tmp), rnd))
                print(f"round {rnd} {kind}: {results[kind][-1]}", file=sys.stderr)
        paced = run_round(broker, int(args.latency_rate * 10), "geowarn", Path(tmp), args.rounds, args.latency_rate)
        print(f"paced geowarn: {paced}", file=sys.stderr)

    def med(kind, key):
        return statistics.median(r[key] for r in results[kind])

    per_msg = _readings_in(args.messages, registry) / args.messages
    out = {
        "benchmark": "ingest",
        "messages_per_round": args.messages,
        "readings_per_message": round(per_msg, 3),
        "rounds": args.rounds,
        "journal_synchronous": "full",
        "geowarn_readings_per_s": round(med("geowarn", "readings_per_s")),
        "geowarn_messages_per_s": round(med("geowarn", "messages_per_s")),
        "bare_messages_per_s": round(med("bare", "messages_per_s")),
        "bare_readings_per_s_equiv": round(med("bare", "messages_per_s") * per_msg),
        "ratio_vs_bare": round(med("geowarn", "messages_per_s") / med("bare", "messages_per_s"), 3),
        "latency_paced_messages_per_s": args.latency_rate,
        "latency_ms_p50": round(paced["latency_ms_p50"], 2),
        "latency_ms_p99": round(paced["latency_ms_p99"], 2),
        "latency_at_saturation_ms_p50": round(med("geowarn", "latency_ms_p50"), 2),
        "publisher_messages_per_s": round(statistics.median(r["publisher_per_s"] for k in results for r in results[k])),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
