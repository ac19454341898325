"""The lifecycle's CAP clerk: at every open, change, renewal and close of a site warning it
writes the next version of the alert's CAP message into the journal (in the lifecycle's own
transaction) and queues its push to the configured endpoints in the outbox. Reads (feed, one
message) go through a connection of its own."""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree

from ..alerts import outbox
from ..alerts.db import Database
from ..alerts.messages import Renderer
from ..alerts.store import Alert
from ..registry import Site
from . import store
from .feed import atom
from .message import CLOSING, Issue, build, cap_time, identifier
from .settings import CapSettings
from .signing import Signer
from .store import CapRow

PRIORITY = 15  # after sirens and people's messages of the same moment, before device faults


def shown_endpoint(url: str) -> str:
    """An endpoint as the outbox shows it: scheme, host and path, never credentials."""
    u = urlsplit(url)
    return f"{u.scheme}://{u.hostname or ''}{':' + str(u.port) if u.port else ''}{u.path}"


@dataclass(frozen=True)
class CapSetup:
    """What the messages are made from, in one piece: a reload swaps it whole. Building it reads
    the signing key, so a reload naming an unreadable one is refused before anything changed."""

    settings: CapSettings
    renderer: Renderer
    signer: Signer | None

    @classmethod
    def build(cls, settings: CapSettings, renderer: Renderer) -> "CapSetup":
        return cls(settings, renderer, Signer(settings.sign) if settings.sign is not None else None)


class CapPublisher:
    def __init__(self, settings: CapSettings, renderer: Renderer, db_path: str | Path, synchronous: str = "full"):
        self.setup = CapSetup.build(settings, renderer)
        self.db = Database(db_path, synchronous, checkpoints=False)
        with self.db.tx() as db:
            store.create(db)

    def reconfigure(self, setup: CapSetup) -> None:
        """A reload (called by the lifecycle while no transaction of it runs)."""
        self.setup = setup

    @property
    def settings(self) -> CapSettings:
        return self.setup.settings

    def close(self) -> None:
        self.db.close()

    # --- the lifecycle's side (inside its transaction) ----------------------------------------

    def record(self, db: sqlite3.Connection, alert: Alert, site: Site, event: str, ts: float,
               note: str = "") -> CapRow:
        setup = self.setup
        earlier = store.of_alert(db, alert.id)
        issue = Issue(alert, site, event, len(earlier) + 1, ts,
                      tuple(f"{setup.settings.sender},{m.identifier},{m.sent_text}" for m in earlier), note)
        root = build(issue, setup.settings, setup.renderer)
        if setup.signer is not None:
            root = setup.signer.sign(root)
        xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        headline = root.findtext("{*}info/{*}headline") or ""
        row = CapRow(identifier(setup.settings, alert, issue.version), alert.id, issue.version, site.id, event,
                     issue.msg_type, issue.status, alert.level, ts, cap_time(setup.renderer, ts),
                     ts + setup.settings.valid_h * 3600, headline, xml)
        store.insert(db, row)
        for url in setup.settings.push:
            outbox.enqueue_post(db, outbox.OutPost(
                key=f"cap:{row.identifier}:{outbox.target_key(url)}", alert_id=alert.id, site=site.id,
                recipient=shown_endpoint(url), target=url, title=row.identifier, payload=xml,
                content_type="application/cap+xml", drill=alert.drill, priority=PRIORITY), time.time())
        return row

    def renew_if_due(self, db: sqlite3.Connection, alert: Alert, site: Site, now: float) -> CapRow | None:
        """An open warning's message about to expire is issued again (Update) with a new expiry."""
        earlier = store.of_alert(db, alert.id)
        if not earlier or earlier[-1].event in CLOSING:
            return None
        if earlier[-1].expires - now > self.settings.renew_before_h * 3600:
            return None
        return self.record(db, alert, site, "renewed", now)

    # --- readers --------------------------------------------------------------------------------

    def message(self, ident: str) -> CapRow | None:
        with self.db.read() as db:
            return store.get(db, ident)

    def feed(self, now: float, self_url: str, message_url: str, status: str | None = None) -> bytes:
        setup = self.setup
        with self.db.read() as db:
            rows = store.current_and_recent(db, now - setup.settings.feed_days * 86400, status)
        return atom(rows, now, setup.settings, setup.renderer, self_url, message_url)
