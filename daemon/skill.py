"""The skill of a back-test: dated landslides or failures (`geowarn replay --events FILE.csv`)
against the site levels the replay raised.

Per event: the highest level of its site (every site of the record for an event without one)
in the 72 h before it, and the lead time of each level reached there: how long before the
event the site had been at that level or above without a break. Overall: the events hit (at
`hit_level` or above in the 72 h before), the alert days (site-days at yellow or above at any
time) and the alert days no event followed within 72 h (false alarms, in days).

An event given as a date (no hour) is the whole UTC day: its 72 h look back from the day's
start and run to its end, and a lead time is counted to the day's start, so a level first
reached during the day has a negative lead (it came on the day, before or after the failure).
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geowarn.drivers.base import Invalid
from geowarn.drivers.timestamps import format_ts, parse_ts

from .config import ConfigError
from .model.levels import LEVELS, Level

LOOK_BACK_S = 72 * 3600.0  # the window before an event that counts for it
FOLLOW_S = 72 * 3600.0  # an alert day with no event this long after it is a false alarm
DAY_S = 86400.0
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Event:
    line: int
    start: float  # the event's instant, or its day's start
    end: float  # the same instant, or its day's end
    site: str | None  # None: any site of the record
    label: str  # as written in the file

    @property
    def dated(self) -> bool:
        return self.end > self.start


def read_events(path: str | Path) -> list[Event]:
    """EVENTS.csv with columns `date[,site]` (more columns are ignored): a date YYYY-MM-DD
    (the UTC day), an RFC 3339 time or epoch seconds. Any bad row is an error naming its line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), "", f"cannot read: {e}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    cols = [c.strip() for c in reader.fieldnames or []]
    if "date" not in cols:
        raise ConfigError(str(path), "", "the header must name a date column (and optionally site)", 1)
    reader.fieldnames = cols
    events = []
    for row in reader:
        line = reader.line_num
        raw = (row.get("date") or "").strip()
        site = (row.get("site") or "").strip() or None
        try:
            if _DATE.match(raw):
                start = parse_ts(raw + "T00:00:00Z")
                end = start + DAY_S
            else:
                start = end = parse_ts(float(raw)) if _is_number(raw) else parse_ts(raw)
        except Invalid as e:
            raise ConfigError(str(path), "date", e.detail, line) from None
        events.append(Event(line, start, end, site, raw))
    return events


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Episode:
    start: float
    end: float  # math.inf: still on at the end of the record


class Timeline:
    """One site's level as steps in time, from its level changes."""

    def __init__(self, changes: list[tuple[float, int]], record_start: float, record_end: float):
        self.steps = [(record_start, 0), *sorted(changes)]
        self.record_start, self.record_end = record_start, record_end

    def episodes(self, level: int) -> list[Episode]:
        """Spans at `level` or above, each without a break."""
        out: list[Episode] = []
        on: float | None = None
        for ts, lv in self.steps:
            if lv >= level and on is None:
                on = ts
            elif lv < level and on is not None:
                out.append(Episode(on, ts))
                on = None
        if on is not None:
            out.append(Episode(on, math.inf))
        return out

    def highest(self, t0: float, t1: float) -> int:
        """The highest level at any time in [t0, t1]."""
        top = 0
        for i, (ts, lv) in enumerate(self.steps):
            nxt = self.steps[i + 1][0] if i + 1 < len(self.steps) else math.inf
            if ts <= t1 and nxt > t0:
                top = max(top, lv)
        return top

    def lead(self, level: int, t0: float, t1: float, ref: float) -> float | None:
        """Seconds from the start of the first span at `level` or above that reaches into
        [t0, t1] to `ref`; None if there is none."""
        for ep in self.episodes(level):
            if ep.start <= t1 and ep.end > t0:
                return ref - ep.start
        return None

    def days_at(self, level: int) -> set[int]:
        """UTC day numbers at `level` or above at any time, within the record."""
        days: set[int] = set()
        for ep in self.episodes(level):
            first = math.floor(ep.start / DAY_S)
            # on at the end of the record: up to the last reading's day; else up to the span's end (exclusive)
            last = math.floor(self.record_end / DAY_S) if ep.end > self.record_end else math.ceil(ep.end / DAY_S) - 1
            days.update(range(first, max(first, last) + 1))
        return days


def skill(level_changes: list[Any], events: list[Event], record: dict[str, tuple[float, float]],
          hit_level: str = "yellow") -> dict[str, Any]:
    """level_changes: the replay's (ts, site, level); record: each site's first and last reading.
    Returns the report's `skill` section."""
    hit_i = Level.of(hit_level)
    per_site: dict[str, list[tuple[float, int]]] = {s: [] for s in record}
    for ch in level_changes:
        per_site.setdefault(ch.site, []).append((ch.ts, Level.of(ch.level)))
    lines = {s: Timeline(per_site[s], *record[s]) for s in record}
    rows = []
    hits = judged = 0
    for ev in events:
        sites = [ev.site] if ev.site is not None else sorted(lines)
        known = [s for s in sites if s in lines and lines[s].record_start <= ev.end]
        row: dict[str, Any] = {"date": ev.label, "site": ev.site}
        if not known:
            row.update(judged=False, why="no record of the site before the event" if ev.site else "no record before the event")
            rows.append(row)
            continue
        t0, t1 = ev.start - LOOK_BACK_S, ev.end
        top = max(lines[s].highest(t0, t1) for s in known)
        lead: dict[str, float] = {}
        for lv in range(1, len(LEVELS)):
            got = [x for s in known if (x := lines[s].lead(lv, t0, t1, ev.start)) is not None]
            if got:
                lead[LEVELS[lv]] = round(max(got) / 3600.0, 1)
        covered = all(lines[s].record_end >= ev.start for s in known)
        row.update(judged=True, highest=LEVELS[top], lead_h=lead, hit=top >= hit_i,
                   **({} if covered else {"note": "the record ends before the event"}))
        judged += 1
        hits += top >= hit_i
        rows.append(row)
    alert_days = false_days = 0
    sites_out = {}
    for s, line in sorted(lines.items()):
        days = line.days_at(Level.YELLOW)
        mine = [ev for ev in events if ev.site in (None, s)]
        false = {d for d in days if not any(d * DAY_S <= ev.start < (d + 1) * DAY_S + FOLLOW_S for ev in mine)}
        alert_days += len(days)
        false_days += len(false)
        if days:
            sites_out[s] = {"alert_days": len(days), "false_alert_days": len(false),
                            "first_alert_day": format_ts(min(days) * DAY_S)[:10]}
    return {"hit_level": hit_level, "look_back_h": LOOK_BACK_S / 3600, "events": rows,
            "events_judged": judged, "hits": hits, "alert_days": alert_days,
            "false_alert_days": false_days, "sites": sites_out}


def skill_summary(sk: dict[str, Any]) -> list[str]:
    out = [f"skill against {len(sk['events'])} events: {sk['hits']} of {sk['events_judged']} judged hit "
           f"({sk['hit_level']} or above in the {sk['look_back_h']:g} h before); alert days (yellow or above) "
           f"{sk['alert_days']}, of which {sk['false_alert_days']} with no event within 72 h after"]
    for e in sk["events"][:50]:
        where = e["site"] or "any site"
        if not e["judged"]:
            out.append(f"  {e['date']} {where}: not judged ({e['why']})")
            continue
        leads = ", ".join(f"{lv} {h:g} h" for lv, h in e["lead_h"].items()) or "none"
        out.append(f"  {e['date']} {where}: highest {e['highest']}, lead {leads}")
    return out
