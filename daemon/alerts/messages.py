"""Message text from editable templates (`templates/<lang>/<kind>.txt`, string.Template;
first line is the title) and words (`templates/words.yaml`). A `notify.templates_dir` may
override any of these files."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ..registry import Site

KINDS = ("hazard", "closed", "fault", "broadcast")
LANGS = ("zh", "en")


@dataclass(frozen=True, slots=True)
class Rendered:
    title: str
    body: str


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        if name == "Asia/Shanghai":  # no tzdata on the machine: China has no DST
            return timezone(timedelta(hours=8), "CST")
        raise ValueError(f"notify.timezone: unknown time zone {name!r}") from None


class Renderer:
    def __init__(self, templates_dir: str | None = None, tz: str = "Asia/Shanghai"):
        builtin = Path(str(resources.files("geowarn.daemon.alerts") / "templates"))
        override = Path(templates_dir) if templates_dir else None

        def read(rel: str) -> str:
            path = override / rel if override is not None and (override / rel).exists() else builtin / rel
            return path.read_text(encoding="utf-8")

        self.words: dict[str, Any] = yaml.safe_load(read("words.yaml"))
        self.templates = {(lang, kind): Template(read(f"{lang}/{kind}.txt")) for lang in LANGS for kind in KINDS}
        self.tz = _zone(tz)

    def time(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.tz).strftime("%Y-%m-%d %H:%M")

    def _render(self, lang: str, kind: str, values: dict[str, Any]) -> Rendered:
        text = self.templates[(lang, kind)].safe_substitute(values)
        lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]  # optional lines vanish when empty
        return Rendered(lines[0] if lines else "", "\n".join(lines[1:]))

    def _common(self, lang: str, site: Site, ts: float, drill: bool) -> dict[str, Any]:
        w = self.words[lang]
        return {"drill": w["drill"] if drill else "", "site_name": site.name, "site_id": site.id,
                "county": site.county, "township": site.township, "time": self.time(ts),
                "households": site.households, "people": site.people}

    def _level(self, lang: str, level: str) -> dict[str, str]:
        lv = self.words[lang]["levels"][level]
        return {"level_colour": lv["colour"], "level_word": lv["word"]}

    def advice(self, lang: str, level: str, role: str) -> str:
        table = self.words[lang]["advice"].get(level, {})
        return table.get(role) or table.get("default", "")

    def hazard(self, *, lang: str, event: str, site: Site, level: str, role: str, reasons: list[str],
               forecast_ts: float | None, alert_id: int, drill: bool, ts: float, ack_url: str | None) -> Rendered:
        w = self.words[lang]
        ack = w["ack"].format(id=alert_id) + (" " + ack_url.replace("{id}", str(alert_id)) if ack_url else "")
        return self._render(lang, "hazard", {
            **self._common(lang, site, ts, drill), **self._level(lang, level),
            "event": w["events"][event], "title_event": w["titles"][event], "reasons": "；".join(reasons) if reasons else w["no_reasons"],
            "forecast": w["forecast"].format(time=self.time(forecast_ts)) if forecast_ts is not None else "",
            "advice": self.advice(lang, level, role), "ack": ack, "id": alert_id})

    def closed(self, *, lang: str, event: str, site: Site, level: str, role: str, note: str, alert_id: int,
               drill: bool, ts: float) -> Rendered:
        return self._render(lang, "closed", {
            **self._common(lang, site, ts, drill), **self._level(lang, level),
            "event": self.words[lang]["events"][event], "note": note,
            "title_event": self.words[lang]["titles"][event],
            "advice": self.advice(lang, "closed", role), "id": alert_id})

    def fault(self, *, lang: str, site: Site, device: str, fault: str, detail: str, active: bool, alert_id: int,
              drill: bool, ts: float) -> Rendered:
        w = self.words[lang]
        return self._render(lang, "fault", {
            **self._common(lang, site, ts, drill), "device": device or "-",
            "fault": w["faults"].get(fault, fault), "cleared": "" if active else w["fault_cleared"],
            "detail": detail or "-", "ack": w["ack"].format(id=alert_id), "id": alert_id})

    def broadcast(self, *, site: Site, level: str, drill: bool, lang: str = "zh") -> str:
        text = self.templates[(lang, "broadcast")].safe_substitute(
            {**self._common(lang, site, 0.0, drill), **self._level(lang, level)}).strip()
        # `&` and `=` would break the national command's key=value framing
        return text.replace("&", "＆").replace("=", "＝")
