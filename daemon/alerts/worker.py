"""The outbox worker: delivers due rows, messages through apprise, commands over MQTT and
documents (CAP) by HTTP POST, in separate lanes so a slow SMS gateway never delays a siren. One worker per state directory (a lock file
says so); after a crash, attempts it had begun are retried, confirmed ones never."""
from __future__ import annotations

import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import outbox
from .db import Database
from .delivery import AppriseNotifier, Delivery, HttpPoster
from .sender import CommandSender
from .settings import RetrySettings
from .wakeup import WakeListener, socket_path

log = logging.getLogger("geowarn.alerts.worker")


class WorkerBusy(RuntimeError):
    pass


class OutboxWorker:
    def __init__(self, db_path: str | Path, *, notifier: AppriseNotifier, sender: CommandSender | None = None,
                 retry: RetrySettings | None = None, clock: Callable[[], float] = time.time,
                 poll_s: float = 0.5, threads: int = 8, synchronous: str = "full",
                 poster: HttpPoster | None = None):
        self.db_path = Path(db_path)
        self.notifier = notifier
        self.poster = poster or HttpPoster()
        self.sender = sender
        self.retry = retry or RetrySettings()
        self.clock = clock
        self.poll_s = poll_s
        self.threads = threads
        self.synchronous = synchronous
        self._stop = threading.Event()
        self._wake = {"apprise": threading.Event(), "mqtt": threading.Event(), "http": threading.Event()}
        self._lanes: list[threading.Thread] = []
        self._lock_fd: int | None = None
        self._listener: WakeListener | None = None
        self._db: Database | None = None  # the message lane's, which also keeps the WAL checkpointed
        self._command_db: Database | None = None
        self._pool: ThreadPoolExecutor | None = None
        # the express path: siren commands handed over in memory right after their commit
        self._express_q: queue.Queue = queue.Queue()
        self._express_keys: set[str] = set()  # handed over, not yet booked: the lane must not resend
        self._express_lock = threading.Lock()
        self.delivered = 0
        self.failed_attempts = 0

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> "OutboxWorker":
        self._take_lock()
        self._db = Database(self.db_path, self.synchronous)
        # commands are idempotent (one msgid per command): their bookkeeping need not wait for the
        # disk, a record lost to a power cut only means the command is sent once more
        self._command_db = Database(self.db_path, "normal", checkpoints=False)
        with self._db.tx() as db:
            n = outbox.recover(db, self.clock(), self.retry)
        if n:
            log.warning("%d deliveries were cut short by a stop; sending them again", n)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="geowarn-notify")
        self._listener = WakeListener(socket_path(self.db_path.parent), self.wake).start()
        lanes = ["apprise", "http"] + (["mqtt"] if self.sender is not None else [])
        for lane in lanes:
            t = threading.Thread(target=self._run, args=(lane,), name=f"geowarn-outbox-{lane}", daemon=True)
            t.start()
            self._lanes.append(t)
        if self.sender is not None:
            t = threading.Thread(target=self._run_express, name="geowarn-outbox-express", daemon=True)
            t.start()
            self._lanes.append(t)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wake()
        if self._listener is not None:
            self._listener.stop()
        for t in self._lanes:
            t.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for db in (self._db, self._command_db):
            if db is not None:
                db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def reconfigure(self, notifier: AppriseNotifier, retry: RetrySettings) -> None:
        """A reload: the next attempt goes through the new apprise configuration with the new
        backoff (rows already queued keep their targets)."""
        self.notifier, self.retry = notifier, retry

    def wake(self) -> None:
        """Something was queued: look now instead of at the next poll."""
        for ev in self._wake.values():
            ev.set()

    def hold(self, keys: list[str]) -> None:
        """Called before the commit of these command rows: the regular lane leaves their first
        attempt to `express`."""
        if self.sender is not None:
            with self._express_lock:
                self._express_keys.update(keys)

    def express(self, commands: list[outbox.OutCommand]) -> None:
        """Publish these committed commands now, from memory; their rows are booked afterwards.
        Without a command sender the regular lane of another process delivers them."""
        if self.sender is None or not commands:
            return
        for c in commands:
            self._express_q.put(c)
        self.wake()

    def _run_express(self) -> None:
        assert self.sender is not None
        while not self._stop.is_set():
            try:
                c = self._express_q.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                ok, detail = self.sender.publish(c.topic, c.payload)
                with self._lane_db("mqtt").tx() as db:
                    outbox.record_express(db, c.key, ok, detail, self.clock(), self.retry)
            except Exception:
                log.exception("express command %s failed; the regular lane takes it", c.key)
            finally:
                with self._express_lock:
                    self._express_keys.discard(c.key)

    def _take_lock(self) -> None:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.db_path.parent / "outbox.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WorkerBusy(f"another delivery worker is running on {self.db_path.parent}") from None
        self._lock_fd = fd

    # --- lanes ----------------------------------------------------------------------------------

    def _run(self, lane: str) -> None:
        wake = self._wake[lane]
        while not self._stop.is_set():
            wake.clear()  # before looking, so a wake during the look is not lost
            try:
                did = {"mqtt": self._mqtt_round, "apprise": self._apprise_round, "http": self._http_round}[lane]()
            except Exception:
                log.exception("outbox %s lane failed; retrying", lane)
                did = 0
            if did:
                continue
            wake.wait(self._idle_wait(lane))

    def _lane_db(self, lane: str) -> Database:
        db = self._command_db if lane == "mqtt" else self._db
        assert db is not None
        return db

    def _idle_wait(self, lane: str) -> float:
        with self._lane_db(lane).read() as db:
            nxt = outbox.next_due(db, lane)
        if nxt is None:
            return self.poll_s
        return min(self.poll_s, max(nxt - self.clock(), 0.005))

    def _claim(self, lane: str, limit: int) -> list[tuple]:
        now = self.clock()
        with self._lane_db(lane).tx() as db:
            rows = outbox.claim(db, lane, now, limit)
            started = []
            for row in rows:
                shown = {"mqtt": row["target"], "http": row["recipient"]}.get(lane, "")
                started.append((row, *outbox.begin_attempt(db, row, now, shown)))
        return started

    def _finish(self, row, attempt: int, attempt_id: int, ok: bool, detail: str, shown: str | None = None) -> None:
        with self._lane_db(row["channel"]).tx() as db:
            if shown is not None:
                db.execute("UPDATE outbox_attempts SET target = ? WHERE id = ?", (shown, attempt_id))
            outbox.finish_attempt(db, row, attempt, attempt_id, ok, detail, self.clock(), self.retry)
        if ok:
            self.delivered += 1
        else:
            self.failed_attempts += 1

    def _mqtt_round(self) -> int:
        assert self.sender is not None
        started = self._claim("mqtt", 50)
        for row, attempt, attempt_id in started:
            with self._express_lock:
                expressed = attempt == 1 and row["key"] in self._express_keys
            if expressed:  # the express path is publishing it right now: once is enough
                self._finish(row, attempt, attempt_id, True, "published by the express path")
                continue
            ok, detail = self.sender.publish(row["target"], row["payload"])
            self._finish(row, attempt, attempt_id, ok, detail)
            if not ok:
                log.warning("command %s to %s not published: %s", row["command"], row["device"], detail)
        return len(started)

    def _http_round(self) -> int:
        started = self._claim("http", 20)
        for row, attempt, attempt_id in started:
            result = self.poster.send(row["target"], bytes(row["payload"] or b""), row["content_type"] or "application/xml")
            self._finish(row, attempt, attempt_id, result.ok, result.detail)
            if not result.ok:
                log.warning("%s to %s failed (attempt %d): %s", row["title"], row["recipient"], attempt, result.detail)
        return len(started)

    def _apprise_round(self) -> int:
        assert self._pool is not None
        started = self._claim("apprise", self.threads * 4)

        def deliver(item) -> None:
            row, attempt, attempt_id = item
            try:
                result = self.notifier.send(row["target"], row["title"] or "", row["body"] or "")
            except Exception as e:  # never leave a claimed row behind: it becomes a failed attempt
                log.exception("delivering message %s failed", row["id"])
                result = Delivery(False, "", f"{type(e).__name__}: {e}"[:500])
            self._finish(row, attempt, attempt_id, result.ok, result.detail, result.shown_target or None)
            if not result.ok:
                log.warning("message %s to %s %s failed (attempt %d)", row["id"], row["role"], row["recipient"],
                            attempt)

        for f in [self._pool.submit(deliver, item) for item in started]:
            f.result()
        return len(started)
