"""Small helpers shared by the tests."""
import sqlite3
import time
from pathlib import Path


def journal_count(state_dir: Path, sql: str = "SELECT COUNT(*) FROM readings") -> int:
    """The first column of the query's first row; 0 before the journal, its schema or the row exist."""
    path = Path(state_dir) / "journal.sqlite"
    if not path.exists():
        return 0
    try:
        rows = journal_rows(path, sql)
    except sqlite3.OperationalError:
        return 0  # schema not created yet
    return rows[0][0] if rows else 0


def journal_rows(path: Path, sql: str, row_factory=None) -> list:
    """The rows of a query on a SQLite file, opened read-only (the service may be writing it)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    db.row_factory = row_factory
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def wait_until(predicate, timeout: float = 30.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()


def wait_subscribed(state_dir, registry, broker_url: str, marker_ts: float, device_id: str | None = None) -> None:
    """Publish a marker reading until a service journals it: proves connection and subscription
    (a persistent session only queues for us once it exists). Adds exactly one reading."""
    from geowarn.drivers.formats.native import Format as Native
    from geowarn.simulators.publisher import Publisher

    dev = registry.device(device_id) if device_id else next(d for d in registry.devices if d.kind == "pressure")
    values = {"kpa": 1.0} if dev.kind == "pressure" else {"width": 1.0}
    topic, payload = Native(registry).encode_readings(dev, marker_ts, values)
    with Publisher(broker_url, "marker", clean=True) as pub:
        for _ in range(200):
            pub.publish(topic, payload)
            if wait_until(lambda: journal_count(state_dir) > 0, timeout=0.25):
                return
    raise AssertionError("service never journaled the marker")
