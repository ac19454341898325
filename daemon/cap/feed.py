"""The Atom feed (RFC 4287) of CAP messages, the usual way CAP is published (OASIS CAP feeds
practice): one entry per message, newest first, linking its XML and carrying it whole as the
entry's content, so a reader sees each message's status (Actual, or Exercise in a drill)."""
from __future__ import annotations

from lxml import etree

from ..alerts.messages import Renderer
from .message import cap_time
from .settings import CapSettings
from .store import CapRow

ATOM = "http://www.w3.org/2005/Atom"


def atom(rows: list[CapRow], now: float, settings: CapSettings, renderer: Renderer, self_url: str,
         message_url: str) -> bytes:
    """`message_url` has `{identifier}` where a message's identifier goes."""
    feed = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM})

    def add(parent, tag: str, text: str | None = None, **attrs: str):
        el = etree.SubElement(parent, f"{{{ATOM}}}{tag}", **attrs)
        if text is not None:
            el.text = text
        return el

    add(feed, "id", f"urn:geowarn:cap-feed:{settings.sender}")
    add(feed, "title", " / ".join(v for v in settings.sender_name.values()) or settings.sender)
    add(feed, "updated", cap_time(renderer, rows[0].sent if rows else now))
    author = add(feed, "author")
    add(author, "name", settings.sender)
    add(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    for r in rows:
        entry = add(feed, "entry")
        add(entry, "id", f"urn:geowarn:cap:{r.identifier}")
        add(entry, "title", r.headline)
        add(entry, "updated", r.sent_text)
        add(entry, "link", rel="alternate", type="application/cap+xml",
            href=message_url.replace("{identifier}", r.identifier))
        add(entry, "category", term=r.status, scheme="urn:oasis:names:tc:emergency:cap:1.2:status")
        add(entry, "summary", f"{r.status} {r.msg_type}: {r.headline}")
        content = add(entry, "content", type="application/cap+xml")
        content.append(etree.fromstring(r.xml))
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8")
