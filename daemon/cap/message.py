"""One CAP 1.2 <alert> from a site warning's state: identity and status in the header, one
<info> per language (zh-CN, en) with the grade, texts from the message templates' words, and
the site as a circle with its county and township."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from lxml import etree

from ..alerts.messages import Renderer
from ..alerts.store import Alert
from ..registry import Site
from .grades import ALL_CLEAR, grade
from .settings import CapSettings

NS = "urn:oasis:names:tc:emergency:cap:1.2"
LANGUAGE = {"zh": "zh-CN", "en": "en"}
MSG_TYPE = {"opened": "Alert", "raised": "Update", "lowered": "Update", "renewed": "Update",
            "closed": "Cancel", "stood_down": "Cancel"}
CLOSING = ("closed", "stood_down")


@dataclass(frozen=True, slots=True)
class Issue:
    """What one message says: which alert, which version, at what moment, after which others."""

    alert: Alert
    site: Site
    event: str  # opened raised lowered renewed closed stood_down
    version: int
    sent: float
    references: tuple[str, ...] = ()  # "sender,identifier,sent" of the alert's earlier messages
    note: str = ""  # a stand-down's reason

    @property
    def msg_type(self) -> str:
        return MSG_TYPE[self.event]

    @property
    def status(self) -> str:
        return "Exercise" if self.alert.drill else "Actual"  # a drill is never Actual


def identifier(settings: CapSettings, alert: Alert, version: int) -> str:
    opened = datetime.fromtimestamp(alert.opened_at, timezone.utc).strftime("%Y%m%d%H%M%S")
    return f"{settings.identifier_prefix}.{alert.site}.{opened}.A{alert.id}.{version}"


def cap_time(renderer: Renderer, ts: float) -> str:
    """CAP's dateTime: local time with its offset, to the second (no Z, no fraction)."""
    return datetime.fromtimestamp(int(ts), renderer.tz).isoformat(timespec="seconds")


def build(issue: Issue, settings: CapSettings, renderer: Renderer) -> etree._Element:
    a = issue.alert
    root = etree.Element(f"{{{NS}}}alert", nsmap={None: NS})

    def add(parent, tag: str, text: str | None = None):
        el = etree.SubElement(parent, f"{{{NS}}}{tag}")
        if text is not None:
            el.text = text
        return el

    add(root, "identifier", identifier(settings, a, issue.version))
    add(root, "sender", settings.sender)
    add(root, "sent", cap_time(renderer, issue.sent))
    add(root, "status", issue.status)
    add(root, "msgType", issue.msg_type)
    add(root, "scope", "Public")
    if a.drill:
        add(root, "note", " / ".join(renderer.words[lang]["cap"]["drill_note"] for lang in LANGUAGE))
    if issue.references:
        add(root, "references", " ".join(issue.references))
    closing = issue.event in CLOSING
    level = (a.max_level or a.level) if closing else a.level
    g = ALL_CLEAR if closing else grade(level, a.forecast_failure_ts, issue.sent)
    for lang, code in LANGUAGE.items():
        w = renderer.words[lang]
        c = w["cap"]
        lv = w["levels"][level]
        hazard = w["hazards"][issue.site.hazard]
        names = {"drill": w["drill"] if a.drill else "", "site_name": issue.site.name, "hazard": hazard,
                 "colour": lv["colour"], "word": lv["word"], "county": issue.site.county,
                 "township": issue.site.township, "event": w["events"].get(issue.event, ""), "note": issue.note}
        info = add(root, "info")
        add(info, "language", code)
        add(info, "category", "Geo")
        add(info, "event", hazard)
        add(info, "responseType", g.response)
        add(info, "urgency", g.urgency)
        add(info, "severity", g.severity)
        add(info, "certainty", g.certainty)
        add(info, "audience", c["audience"])
        code_el = add(info, "eventCode")
        add(code_el, "valueName", "geowarn:hazard")
        add(code_el, "value", issue.site.hazard)
        if not closing and a.forecast_failure_ts is not None:
            add(info, "onset", cap_time(renderer, a.forecast_failure_ts))
        add(info, "expires", cap_time(renderer, issue.sent + settings.valid_h * 3600))
        add(info, "senderName", settings.sender_name.get(lang) or settings.sender)
        add(info, "headline", c["headline_closed" if closing else "headline"].format(**names))
        if closing:
            description = c["description_closed"].format(**names).strip()
        else:
            lines = [*a.reasons] or [w["no_reasons"]]
            if a.forecast_failure_ts is not None:
                lines.append(w["forecast"].format(time=renderer.time(a.forecast_failure_ts)))
            description = "\n".join(lines)
        add(info, "description", description)
        add(info, "instruction", renderer.advice(lang, "closed" if closing else level, "household"))
        if settings.web_url:
            add(info, "web", settings.web_url.replace("{site}", issue.site.id))
        for name, value in (("geowarn:level", level), ("geowarn:alert", f"A{a.id}"),
                            ("geowarn:site", issue.site.id)):
            p = add(info, "parameter")
            add(p, "valueName", name)
            add(p, "value", value)
        area = add(info, "area")
        add(area, "areaDesc", c["area"].format(**names))
        radius = settings.site_radius_km.get(issue.site.id, settings.radius_km)
        add(area, "circle", f"{issue.site.lat:.5f},{issue.site.lon:.5f} {radius:g}")
        if issue.site.division_code:
            gc = add(area, "geocode")
            add(gc, "valueName", "GB/T 2260" if len(issue.site.division_code) == 6 else "GB/T 10114")
            add(gc, "value", issue.site.division_code)
    return root
