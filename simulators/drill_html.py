"""The drill report as one self-contained HTML page: verdict, checks, the timeline, and plots
of the sensors involved (inline SVG: no scripts, no network)."""
from __future__ import annotations

import html
from typing import Any

LEVEL_COLOURS = {"normal": "#8a8a8a", "blue": "#1f6fd1", "yellow": "#d4a000", "orange": "#e8700a", "red": "#d11f1f"}


def _plot(name: str, t: list[float], v: list[float], w: int = 720, h: int = 160) -> str:
    if len(t) < 2:
        return ""
    t0, t1 = min(t), max(t)
    lo, hi = min(v), max(v)
    span_t, span_v = (t1 - t0) or 1.0, (hi - lo) or 1.0
    pts = " ".join(f"{(x - t0) / span_t * (w - 60) + 50:.1f},{h - 20 - (y - lo) / span_v * (h - 40):.1f}"
                   for x, y in zip(t, v))
    days = (t1 - t0) / 86400
    return (f'<figure><figcaption>{html.escape(name)}</figcaption>'
            f'<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{html.escape(name)}">'
            f'<rect x="50" y="20" width="{w - 60}" height="{h - 40}" fill="#fafafa" stroke="#ccc"/>'
            f'<polyline fill="none" stroke="#1f6fd1" stroke-width="1.5" points="{pts}"/>'
            f'<text x="4" y="26" font-size="11">{hi:.4g}</text><text x="4" y="{h - 20}" font-size="11">{lo:.4g}</text>'
            f'<text x="50" y="{h - 4}" font-size="11">0</text>'
            f'<text x="{w - 60}" y="{h - 4}" font-size="11">{days:.1f} d</text></svg></figure>')


def _timeline_text(t: dict) -> str:
    e = html.escape
    what = t["what"]
    if what == "level":
        colour = LEVEL_COLOURS.get(t.get("level", ""), "transparent")
        return (f'{t["site"]}: {t["previous"]} → <b style="color:{colour}">{t["level"]}</b> — '
                + "；".join(e(r) for r in t["reasons"][:3]))
    if what == "fault":
        return f'{t["site"]} {t["device"]}: {e(t["fault"])} — {e(t["detail"])}'
    if what == "notification":
        return f'{t["site"]} → {e(t["role"])}: {e(t["title"])}'
    if what == "ack":
        return f'{t["site"]} alert {t["alert"]} acknowledged by {e(t["by"])}'
    return f'{t.get("site") or ""} {t.get("device") or ""} {e(str(t.get("detail", ""))[:120])}'


def render(report: dict[str, Any]) -> str:
    e = html.escape
    verdict = "通过 PASS" if report["passed"] else "未通过 FAIL"
    checks = "".join(f'<tr class="{"ok" if c["passed"] else "bad"}"><td>{"✔" if c["passed"] else "✘"}</td>'
                     f'<td>{e(c["name"])}</td><td>{e(c["detail"])}</td></tr>' for c in report["checks"])
    rows = [f'<tr><td>{t["ts"] or ""}</td><td>{e(t["what"])}</td><td>{_timeline_text(t)}</td></tr>'
            for t in report["timeline"]]
    plots = "".join(_plot(name, s["t"], s["v"]) for name, s in report.get("series", {}).items())
    leads = "".join(f'<li>{e(site)}: failure {lt["failure"]}, first warning {lt["first_warning"]}, '
                    f'lead time {lt["lead_time_h"]} h</li>' for site, lt in report["lead_times"].items())
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>【演练】{e(report["title"])}</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:auto;padding:1em}}table{{border-collapse:collapse;width:100%}}
td{{border-bottom:1px solid #eee;padding:3px 6px;font-size:13px;vertical-align:top}}tr.bad td{{color:#b00}}
h1 small{{font-size:60%;color:#666}}.verdict{{font-size:140%;font-weight:bold;color:{"#080" if report["passed"] else "#b00"}}}</style>
</head><body>
<h1>【演练】DRILL {e(report["title"])} <small>{e(report["scenario"])}</small></h1>
<p class="verdict">{verdict}</p>
<h2>检查 Checks</h2><table>{checks}</table>
<h2>提前量 Lead time</h2><ul>{leads or "<li>no failure in this scenario</li>"}</ul>
<p>first anomaly: {report["first_anomaly"] or "none"}; acknowledgements: {report["acknowledgements"]}</p>
<h2>时间线 Timeline</h2><table>{"".join(rows)}</table>
<h2>传感器 Sensors</h2>{plots or "<p>no sensor plots</p>"}
</body></html>
"""
