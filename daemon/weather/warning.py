"""A meteorological geohazard risk warning as issued: level, area (counties or a lon/lat box),
validity. Parsed from the JSON that the HTTP API, the CLI and the MQTT topic all carry:

    {"id"?: str, "level": "yellow" | "黄色" | 3, "counties"?: ["湘潭县"],
     "box"?: [lon_min, lat_min, lon_max, lat_max], "valid_from": ts, "valid_to": ts, "text"?: str}
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from geowarn.drivers.base import Invalid
from geowarn.drivers.timestamps import parse_ts

from ..registry import Registry, Site

# the national warning scale counts down: 一级 red … 四级 blue
LEVEL_ALIASES = {"blue": "blue", "yellow": "yellow", "orange": "orange", "red": "red",
                 "蓝色": "blue", "黄色": "yellow", "橙色": "orange", "红色": "red",
                 "4": "blue", "3": "yellow", "2": "orange", "1": "red",
                 "四级": "blue", "三级": "yellow", "二级": "orange", "一级": "red"}


@dataclass(frozen=True)
class Warning:
    id: str
    level: str
    counties: tuple[str, ...]
    box: tuple[float, float, float, float] | None  # lon_min, lat_min, lon_max, lat_max
    valid_from: float
    valid_to: float
    text: str = ""

    def covers(self, site: Site) -> bool:
        if site.county in self.counties:
            return True
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            return x0 <= site.lon <= x1 and y0 <= site.lat <= y1
        return False

    def sites(self, registry: Registry) -> list[Site]:
        return [s for s in registry.sites if self.covers(s)]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_warning(doc: Any) -> Warning:
    """Raises ValueError with a reason a person can act on."""
    if not isinstance(doc, dict):
        raise ValueError("a warning must be a JSON object")
    level = LEVEL_ALIASES.get(str(doc.get("level", "")).strip())
    if level is None:
        raise ValueError(f"level must be blue/yellow/orange/red (or 蓝色…红色, 1–4), not {doc.get('level')!r}")
    counties = doc.get("counties") or []
    if isinstance(counties, str):
        counties = [c for c in counties.replace("，", ",").split(",") if c.strip()]
    box = doc.get("box")
    if box is not None:
        try:
            box = tuple(float(x) for x in box)
        except (TypeError, ValueError):
            box = ()
        if len(box) != 4 or not (box[0] <= box[2] and box[1] <= box[3]):
            raise ValueError("box must be [lon_min, lat_min, lon_max, lat_max]")
    if not counties and box is None:
        raise ValueError("a warning needs counties or a box")
    try:
        valid_from, valid_to = parse_ts(doc.get("valid_from")), parse_ts(doc.get("valid_to"))
    except Invalid as e:
        raise ValueError(f"valid_from/valid_to: {e.detail}") from None
    if valid_to <= valid_from:
        raise ValueError("valid_to must be after valid_from")
    wid = str(doc.get("id") or "") or hashlib.sha1(json.dumps(
        [level, sorted(counties), box, valid_from, valid_to], sort_keys=True).encode()).hexdigest()[:10]
    return Warning(wid, level, tuple(str(c).strip() for c in counties), box, valid_from, valid_to,
                   str(doc.get("text") or ""))
