"""A meteorological geohazard risk warning as issued: level, area (counties or a lon/lat box),
validity. Parsed from the JSON that the HTTP API, the CLI and the MQTT topic all carry:

    {"id"?: str, "level": "yellow" | "黄色" | 3, "counties"?: ["湘潭县"],
     "box"?: [lon_min, lat_min, lon_max, lat_max], "valid_from": ts, "valid_to": ts, "text"?: str}
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from .. import limits
from ..limits import NAME_MAX_CHARS
from ..model.levels import Level
from ..registry import Registry, Site

# a warning's level as issued: its key, its colour word, or the warning scale's grade, which
# counts down (1 / 一级 red … 4 / 四级 blue)
_GRADE_ZH = "一二三四"
LEVEL_ALIASES = {alias: lv.key for lv in Level if lv > Level.NORMAL
                 for alias in (lv.key, lv.colour_zh, str(lv.national + 1), f"{_GRADE_ZH[lv.national]}级")}
MAX_COUNTIES = 200
TEXT_MAX_CHARS = 4000  # the issuer's wording


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
    """Raises ValueError with a reason a person can act on; the bounds are limits.py's."""
    if not isinstance(doc, dict):
        raise ValueError("a warning must be a JSON object")
    raw_level = doc.get("level", "")
    level = LEVEL_ALIASES.get(str(raw_level).strip()) if isinstance(raw_level, (str, int)) else None
    if level is None or isinstance(raw_level, bool):
        raise ValueError(f"level must be blue/yellow/orange/red (or 蓝色…红色, 1–4), not {str(raw_level)[:40]!r}")
    counties = doc.get("counties") or []
    if isinstance(counties, str):
        counties = [c for c in counties.replace("，", ",").split(",") if c.strip()]
    if not isinstance(counties, list) or not all(isinstance(c, str) and len(c) <= NAME_MAX_CHARS for c in counties) \
            or len(counties) > MAX_COUNTIES:
        raise ValueError(f"counties must be a list of at most {MAX_COUNTIES} county names")
    box = doc.get("box")
    if box is not None:
        box = _box(box)
    if not counties and box is None:
        raise ValueError("a warning needs counties or a box")
    valid_from = limits.bounded_ts(doc.get("valid_from"), "valid_from")
    valid_to = limits.bounded_ts(doc.get("valid_to"), "valid_to")
    limits.check_span(valid_from, valid_to, limits.MAX_WARNING_S, "a warning")
    raw_id = doc.get("id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    wid = limits.text(raw_id, "id", limits.ID_MAX_CHARS).strip() or hashlib.sha1(json.dumps(
        [level, sorted(counties), box, valid_from, valid_to], sort_keys=True).encode()).hexdigest()[:10]
    return Warning(wid, level, tuple(c.strip() for c in counties), box, valid_from, valid_to,
                   limits.text(doc.get("text"), "text", TEXT_MAX_CHARS))


def _box(raw: Any) -> tuple[float, float, float, float]:
    try:
        box = tuple(float(x) for x in raw) if isinstance(raw, (list, tuple)) else ()
    except (TypeError, ValueError, OverflowError):
        box = ()
    if len(box) != 4 or not all(math.isfinite(x) for x in box) or not (
            -180 <= box[0] <= box[2] <= 180 and -90 <= box[1] <= box[3] <= 90):
        raise ValueError("box must be [lon_min, lat_min, lon_max, lat_max] in degrees")
    return box  # type: ignore[return-value]
