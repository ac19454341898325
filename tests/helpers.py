"""Small helpers shared by the tests."""
import sqlite3
import time
from pathlib import Path


def journal_count(state_dir: Path, sql: str = "SELECT COUNT(*) FROM readings") -> int:
    path = Path(state_dir) / "journal.sqlite"
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # schema not created yet
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
