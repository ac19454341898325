"""Human-readable reasons, Chinese and English, with the numbers and thresholds behind them."""
from __future__ import annotations

from geowarn.drivers.timestamps import format_ts

from ...model.levels import Level
from ...model.slots import Slot

KIND_ZH = {"gnss": "GNSS", "crack": "裂缝计", "tilt": "倾角计", "rain": "雨量计", "pressure": "土压力计",
           "accel": "加速度计", "marker": "裂缝标记", "alarm": "声光报警器", "video": "视频"}
UNITS = {"gnss": "mm", "crack": "mm", "tilt": "°", "rain": "mm", "pressure": "kPa", "accel": "g", "marker": "mm"}


def _n(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def describe(slot: int, kind: str, device: str, channel: str, level: int, value: float, thr: float,
             ctx: dict) -> tuple[str, str]:
    name = Slot(slot).key
    lvl = Level(level)
    lv = lvl.key
    unit = UNITS.get(kind, "")
    who_zh = f"{KIND_ZH.get(kind, kind)} {device} {channel}"
    who_en = f"{kind} {device} {channel}"
    cmp_zh = f"≥ {lvl.colour_zh}阈值 {_n(thr)}" if level else "未超阈值"
    cmp_en = f"≥ {lv} threshold {_n(thr)}" if level else "below thresholds"
    if name == "absolute":
        return (f"{who_zh} 当前值 {_n(value)} {unit} {cmp_zh} {unit}",
                f"{who_en} value {_n(value)} {unit} {cmp_en} {unit}")
    if name == "change":
        d = ctx.get("change_window_h", 720) / 24
        return (f"{who_zh} {d:g} 天变化 {_n(value)} {unit} {cmp_zh} {unit}",
                f"{who_en} change over {d:g} days {_n(value)} {unit} {cmp_en} {unit}")
    if name == "rate":
        h = ctx.get("rate_window_h", 72)
        return (f"{who_zh} {h:g} h 速率 {_n(value)} {unit}/d {cmp_zh} {unit}/d",
                f"{who_en} {h:g} h rate {_n(value)} {unit}/day {cmp_en} {unit}/day")
    if name == "tangent":
        v, v0, a = ctx.get("v_now", float("nan")), ctx.get("v_ref", float("nan")), ctx.get("accel", float("nan"))
        acc_zh = f"，加速度 {_n(a)} {unit}/d²" if a == a else ""
        acc_en = f", acceleration {_n(a)} {unit}/day²" if a == a else ""
        return (f"{who_zh} 改进切线角 {value:.1f}° {cmp_zh}°（速率 {_n(v)} {unit}/d，等速阶段 {_n(v0)} {unit}/d{acc_zh}）",
                f"{who_en} improved tangent angle {value:.1f}° {cmp_en}° (v {_n(v)} {unit}/day, "
                f"constant-velocity v {_n(v0)} {unit}/day{acc_en})")
    if name == "inverse_velocity":
        tf, r2, sg = ctx.get("tf"), ctx.get("r2", float("nan")), ctx.get("sigma", float("nan"))
        h = value / 3600.0
        when = format_ts(tf) if tf is not None else "?"
        return (f"{who_zh} 反速度法预测失稳时间 {when}（剩余 {h:.1f} h ± {sg / 3600:.1f} h，R²={r2:.2f}）"
                + (f" ≤ {lvl.colour_zh}时限 {thr / 3600:g} h" if level else ""),
                f"{who_en} inverse-velocity failure forecast {when} (in {h:.1f} h ± {sg / 3600:.1f} h, "
                f"r² {r2:.2f})" + (f" within the {lv} horizon {thr / 3600:g} h" if level else ""))
    if name.startswith("rain_"):
        h = name.removeprefix("rain_")
        return (f"{who_zh} {h} 累计雨量 {_n(value)} mm {cmp_zh} mm",
                f"{who_en} {h} rainfall {_n(value)} mm {cmp_en} mm")
    if name == "antecedent":
        return (f"{who_zh} 有效前期雨量 {_n(value)} mm {cmp_zh} mm",
                f"{who_en} effective antecedent rainfall {_n(value)} mm {cmp_en} mm")
    d = ctx.get("duration_h", float("nan"))
    return (f"{who_zh} {d:g} h 雨量 {_n(value)} mm 超过 I–D 阈值 {_n(thr)} mm（I={_n(value / d)} mm/h）",
            f"{who_en} {d:g} h rainfall {_n(value)} mm exceeds the intensity-duration threshold "
            f"{_n(thr)} mm (I {_n(value / d)} mm/h)")


def change_note(level: int, previous: int, capped_from: int | None, lowered_after_h: float | None) -> tuple[str, str]:
    """The sentence that heads a level change."""
    new, old = Level(level), Level(previous)
    zh = f"{old.zh} → {new.zh}"
    en = f"{old.key} → {new.key}"
    if capped_from is not None:
        zh += f"（单一仪器达{Level(capped_from).zh}，未获其他仪器或雨量印证，限为{new.zh}）"
        en += f" (one instrument alone at {Level(capped_from).key}, not corroborated: capped at {new.key})"
    if lowered_after_h is not None:
        zh += f"（持续 {lowered_after_h:g} h 低于{old.zh}且数据正常，解除降级）"
        en += f" (below {old.key} for {lowered_after_h:g} h with data present)"
    return zh, en
