"""Durable MQTT intake: broker → decode → screen → journal → acknowledge.

A QoS 1 message is acknowledged only after everything it carried (readings, statuses,
quarantine entries) is committed to the journal, so a crash at any moment loses nothing and a
redelivery adds nothing. The broker holds at most `receive_maximum` un-acknowledged messages
in flight to us and our queue is bounded, so a flood slows the broker down instead of growing
our memory.
"""
from __future__ import annotations

import bisect
import logging
import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as paho

from geowarn.drivers.base import Decoded, Reason, Rejection
from geowarn.drivers.formats import format_for, load_formats
from geowarn.drivers.screen import ScreenLimits, screen, screen_statuses

from .broker import client_for
from .config import IntakeSettings
from .journal import Entry, Journal, Quarantined, Written
from .registry import Registry
from .shard import WHOLE_NETWORK, Shard

log = logging.getLogger("geowarn.intake")


@dataclass(frozen=True, slots=True)
class Message:
    generation: int  # connection the message arrived on: its mid means nothing on another
    topic: str
    payload: bytes
    mid: int
    qos: int
    received: float


@dataclass(slots=True)
class Committed:
    """What one batch added to the journal, handed to the core after commit."""

    entry: Entry
    written: Written


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class IntakeStats:
    messages: int = 0
    readings: int = 0
    duplicates: int = 0
    statuses: int = 0
    replies: int = 0
    batches: int = 0
    journal_errors: int = 0
    not_my_shard: int = 0  # readings, statuses, replies, rejections of other shards' sites: dropped
    quarantine: Counter = field(default_factory=Counter)
    readings_by_kind: Counter = field(default_factory=Counter)
    last_seen_by_site: dict[str, float] = field(default_factory=dict)  # newest reading's own time
    # receipt → commit, cumulative per bucket of LATENCY_BUCKETS (+Inf last), and the sum
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0
    connected: bool = False
    last_message: float | None = None
    last_commit: float | None = None
    last_error: str | None = None


def decode_message(topic: str, payload: bytes, formats: list, registry: Registry, now: float,
                   limits: ScreenLimits) -> tuple[Decoded, list]:
    """Decode and screen one message; never raises."""
    fmt = format_for(topic, formats)
    if fmt is None:
        d = Decoded()
        d.reject(Reason.UNKNOWN_TOPIC, topic[:200])
        return d, []
    try:
        decoded = fmt.decode(topic, payload)
    except Exception as e:  # a decoder bug must cost one frame, not the service
        log.exception("decoder %s failed on %s", fmt.name, topic)
        d = Decoded()
        d.reject(Reason.DECODER_ERROR, f"{type(e).__name__}: {e}"[:300])
        return d, []
    accepted, rejected = screen(decoded.readings, registry, now, limits)
    decoded.rejections.extend(rejected)
    decoded.statuses, rejected = screen_statuses(decoded.statuses, registry, now, limits)
    decoded.rejections.extend(rejected)
    return decoded, accepted


class Intake:
    def __init__(
        self,
        registry: Registry,
        settings: IntakeSettings,
        journal: Journal,
        sink: Callable[[Committed], None] | None = None,
        broker_url: str | None = None,
        clock: Callable[[], float] = time.time,
        shard: Shard = WHOLE_NETWORK,
    ):
        self.registry = registry  # the whole network's: a sharded intake must know whose a message is
        self.shard = shard
        self.settings = settings
        self.journal = journal
        self.sink = sink
        self.clock = clock
        self.stats = IntakeStats()
        self.formats = load_formats(registry)
        self.limits = ScreenLimits(future_s=settings.future_s)
        self._queue: queue.Queue[Message] = queue.Queue(maxsize=settings.receive_maximum + settings.batch_max)
        self._generation = 0
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None
        self.client, self._connect_kwargs, self.broker = client_for(
            settings, settings.client_id, broker_url, manual_ack=True, persistent=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._writer = threading.Thread(target=self._write_loop, name="geowarn-journal-writer", daemon=True)
        self._writer.start()
        # connect_async + loop_start: a broker that is down at start is retried with backoff
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=self.settings.keepalive_s,
                                  **self._connect_kwargs)
        self.client.loop_start()
        log.info("intake connecting to %s as %s", self.broker, self.settings.client_id)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking messages, commit and acknowledge what is queued, disconnect."""
        self._stopping.set()
        if self._writer is not None:
            self._writer.join(timeout)
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> "Intake":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_registry(self, registry: Registry) -> None:
        """Swap the registry (reload): later batches use the new one; nothing in flight is lost."""
        before = set(self._topics())
        self.formats = load_formats(registry)
        self.registry = registry
        after = set(self._topics())
        if self.stats.connected and after != before:  # a shard's new or removed sites
            if after - before:
                self.client.subscribe([(t, 1) for t in sorted(after - before)])
            if before - after:
                self.client.unsubscribe(sorted(before - after))

    def _topics(self) -> list[str]:
        """Topic filters: a shard's own sites only where the wire format names the site in the topic."""
        sites = self.shard.sites(self.registry) if self.shard.narrows() else None
        out: list[str] = []
        for f in self.formats:
            narrowed = f.site_subscriptions(sites) if sites is not None else None
            out.extend(f.subscriptions if narrowed is None else narrowed)
        return out

    @property
    def queued(self) -> int:
        """Messages received but not yet committed: bounded by receive_maximum + batch_max."""
        return self._queue.qsize()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stats.connected:
                return True
            time.sleep(0.02)
        return False

    # --- network thread ------------------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused connection: %s", reason_code)
            return
        self._generation += 1
        self.stats.connected = True
        topics = [(t, 1) for t in self._topics()]
        if topics:
            client.subscribe(topics)
        log.info("connected to %s (session present: %s), subscribed to %s",
                 self.broker, flags.session_present, ", ".join(t for t, _ in topics))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.stats.connected = False
        self._generation += 1
        if not self._stopping.is_set():
            log.warning("disconnected from %s: %s; reconnecting", self.broker, reason_code)

    def _on_message(self, client, userdata, msg: paho.MQTTMessage) -> None:
        if self._stopping.is_set():
            return  # not acknowledged: the broker redelivers it to the next run
        # blocks when the writer falls behind: TCP back-pressure instead of unbounded memory
        self._queue.put(Message(self._generation, msg.topic, msg.payload, msg.mid, msg.qos, time.time()))

    # --- writer thread -------------------------------------------------------------------------

    def _next_batch(self) -> list[Message]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.settings.batch_wait_ms / 1000.0
        while len(batch) < self.settings.batch_max:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=left))
                except queue.Empty:
                    break
        return batch

    def _write_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                if self._stopping.is_set():
                    return
                continue
            try:
                entry, not_mine = self._build_entry(batch)
                written = self._commit(entry, not_mine)
            except Exception:  # not a journal outage: something in this batch we cannot store
                log.exception("a batch of %d messages could not be stored; storing them one by one", len(batch))
                entry, written = self._store_singly(batch)
            if written is None:
                return  # stopping while the journal fails: nothing acknowledged, broker redelivers
            self._acknowledge(batch)
            if self.sink is not None:
                try:
                    self.sink(Committed(entry, written))
                except Exception:
                    log.exception("downstream of the journal failed; readings are safe in the journal")

    def _store_singly(self, batch: list[Message]) -> tuple[Entry, Written | None]:
        """One poisoned message must cost that message only: the others are stored as usual,
        the poison is quarantined (payload kept) as a decoder error. The writer never dies."""
        merged, ids, new = Entry(), [], 0
        for m in batch:
            try:
                entry, not_mine = self._build_entry([m])
                written = self._commit(entry, not_mine)
            except Exception as e:  # noqa: BLE001  -- a decoder's bug quarantines its message, never stops the intake
                detail = f"{type(e).__name__}: {e}"[:300]
                topic = m.topic.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
                entry = Entry(quarantined=[Quarantined(topic, m.payload, Rejection(Reason.DECODER_ERROR, detail))])
                try:
                    written = self._commit(entry)
                except Exception:
                    log.exception("could not even quarantine a message on %s; it stays with the broker", topic)
                    continue
            if written is None:
                return merged, None
            merged.readings += entry.readings
            merged.statuses += entry.statuses
            merged.replies += entry.replies
            merged.quarantined += entry.quarantined
            ids += written.series_ids
            new += written.new_readings
        return merged, Written(ids, new)

    def _build_entry(self, batch: list[Message]) -> tuple[Entry, int]:
        """The batch's journal entry, and how many items it dropped as other shards'."""
        entry = Entry()
        now = self.clock()
        not_mine = 0
        for m in batch:
            decoded, accepted = decode_message(m.topic, m.payload, self.formats, self.registry, now, self.limits)
            if not self.shard.whole:
                accepted, dropped = self._keep_mine(m.topic, decoded, accepted)
                not_mine += dropped
            entry.readings.extend((r, self.registry.device(r.device).site) for r in accepted)  # screened: known
            entry.statuses.extend(decoded.statuses)
            entry.replies.extend(decoded.replies)
            entry.quarantined.extend(Quarantined(m.topic, m.payload, rej) for rej in decoded.rejections)
        return entry, not_mine

    def _keep_mine(self, topic: str, decoded: Decoded, accepted: list) -> tuple[list, int]:
        """Drop what belongs to other shards (they journal it); a command reply naming no known
        device stays with every shard, each matching it to its own outbox by msgid. Returns the
        accepted readings kept and how many items were dropped."""
        fmt = format_for(topic, self.formats)
        site = fmt.topic_site(topic) if fmt is not None else None
        reg = self.registry

        def mine(device: str | None) -> bool:
            return self.shard.owns_item(reg, site, device)

        kept = [r for r in accepted if mine(r.device)]
        statuses = [s for s in decoded.statuses if mine(s.device)]
        replies = [r for r in decoded.replies
                   if mine(r.device) or (site is None and reg.device(r.device or "") is None)]
        rejections = [r for r in decoded.rejections if mine(r.device)]
        dropped = (len(accepted) - len(kept) + len(decoded.statuses) - len(statuses)
                   + len(decoded.replies) - len(replies) + len(decoded.rejections) - len(rejections))
        decoded.statuses, decoded.replies, decoded.rejections = statuses, replies, rejections
        return kept, dropped

    def _commit(self, entry: Entry, not_mine: int = 0) -> Written | None:
        delay = 0.1
        while True:
            try:
                written = self.journal.write(entry)
            except sqlite3.Error as e:
                # disk full, read-only, locked: keep the batch, stop acknowledging, retry
                self.stats.journal_errors += 1
                self.stats.last_error = f"journal: {e}"
                log.error("journal write failed (%s); retrying in %.1f s, nothing acknowledged", e, delay)
                if self._stopping.wait(delay):
                    return None
                delay = min(delay * 2, 10.0)
                continue
            self._count(entry, written, not_mine)
            return written

    def _count(self, entry: Entry, written: Written, not_mine: int) -> None:
        s = self.stats
        s.readings += written.new_readings
        seen = s.last_seen_by_site
        for r, site in entry.readings:
            s.readings_by_kind[r.kind] += 1
            if r.ts > seen.get(site, 0.0):
                seen[site] = r.ts
        s.duplicates += len(entry.readings) - written.new_readings
        s.not_my_shard += not_mine
        s.statuses += len(entry.statuses)
        s.replies += len(entry.replies)
        s.quarantine.update(q.rejection.reason for q in entry.quarantined)
        s.batches += 1
        s.last_commit = time.time()
        s.last_error = None
        for q in entry.quarantined:
            log.warning("quarantined %s from %s: %s", q.rejection.reason, q.topic, q.rejection.detail)

    def _acknowledge(self, batch: list[Message]) -> None:
        now = time.time()
        s = self.stats
        for m in batch:
            delay = now - m.received
            s.latency_sum += delay
            s.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, delay)] += 1
        gen = self._generation
        for m in batch:
            if m.qos > 0 and m.generation == gen:
                self.client.ack(m.mid, m.qos)
        self.stats.messages += len(batch)
        self.stats.last_message = batch[-1].received

