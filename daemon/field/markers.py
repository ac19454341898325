"""Judging crack-marker readings the Dynaslope way: the movement between two readings per hour
of the interval, against per-hour thresholds; the middle level and above only with a trend
(the interval before moved too), since one misread tape must not call out a village."""
from __future__ import annotations

from dataclasses import dataclass

from ..model.levels import Level
from ..rules import MarkerRule


@dataclass(frozen=True, slots=True)
class MarkerJudgement:
    level: int
    rate_mm_h: float
    threshold: float
    trend_capped: bool


def rate_level(rate: float, rule: MarkerRule) -> tuple[int, float]:
    level, thr = 0, float("nan")
    for i, v in enumerate(rule.rate_mm_h.table(), start=1):
        if v == v and abs(rate) >= v:
            level, thr = i, float(v)
    return level, thr


def _rate(new: tuple[float, float], old: tuple[float, float], rule: MarkerRule) -> float:
    """mm/h between two readings; 0 when they differ by less than a tape can tell."""
    d = new[1] - old[1]
    return 0.0 if abs(d) < rule.min_displacement_mm else d / ((new[0] - old[0]) / 3600.0)


def judge(history: list[tuple[float, float]], rule: MarkerRule) -> MarkerJudgement | None:
    """history: (ts, mm) oldest first, the newest last. None: too few readings for a rate."""
    gap = rule.min_interval_h * 3600.0
    pts: list[tuple[float, float]] = []
    for ts, mm in reversed(history):  # newest back, skipping re-reads within min_interval_h
        if not pts or pts[-1][0] - ts >= gap:
            pts.append((ts, mm))
        if len(pts) == 3:
            break
    if len(pts) < 2:
        return None
    rate = _rate(pts[0], pts[1], rule)
    level, thr = rate_level(rate, rule)
    capped = False
    if level >= Level.of(rule.trend_check_from):
        before = None
        if len(pts) == 3:
            before = _rate(pts[1], pts[2], rule)
        if before is None or rate_level(before, rule)[0] < Level.of(rule.trend_min):
            level, capped = Level.of(rule.trend_check_from) - 1, True
            thr = float(rule.rate_mm_h.table()[level - 1]) if level else float("nan")
    return MarkerJudgement(level, rate, thr, capped)


def reason(device: str, j: MarkerJudgement) -> tuple[str, str]:
    lv = Level(j.level).key
    lz = Level(j.level).colour_zh
    note_zh = "（趋势未确认，暂不升级）" if j.trend_capped else ""
    note_en = " (trend not confirmed: held below)" if j.trend_capped else ""
    return (f"裂缝标记 {device} 位移速率 {j.rate_mm_h:.2f} mm/h ≥ {lz}阈值 {j.threshold:g} mm/h（群测群防员读数）{note_zh}",
            f"crack marker {device} moving {j.rate_mm_h:.2f} mm/h ≥ {lv} threshold {j.threshold:g} mm/h "
            f"(monitor's reading){note_en}")
