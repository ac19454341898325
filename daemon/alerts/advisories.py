"""Advisories outside any alert: a weather warning's patrol instruction and reminder to a
site's monitors, and its change of the site's devices' reporting. They go through the same
durable outbox as alerts (alert_id NULL), so they are retried, de-duplicated and recorded."""
from __future__ import annotations

import math
from datetime import datetime

from ..model.levels import Level
from ..registry import ACTUATOR_KINDS, HUMAN_KINDS, Site
from .manager import AlertManager
from .device_commands import PRIORITY_SAMPLING
from .outbox import enqueue_command

PRIORITY_PATROL = 3


def _when(mgr: AlertManager, ts: float) -> str:
    return datetime.fromtimestamp(ts, mgr.setup.renderer.tz).strftime("%m-%d %H:%M")


def patrol(mgr: AlertManager, key: str, site: Site, level: str, valid_from: float, valid_to: float,
           reminder: bool, now: float) -> int:
    """Tell the site's monitors to patrol (or remind them); the number of messages queued."""
    span = f"{_when(mgr, valid_from)}–{_when(mgr, valid_to)}"
    zh_title = f"【地质灾害气象风险{Level.of(level).colour_zh}预警】{'巡查提醒' if reminder else '巡查指令'} {site.name}"
    zh_body = (f"{'尚未收到您的巡查报告。' if reminder else ''}{site.name}（{site.id}）位于{Level.of(level).colour_zh}气象风险预警区域，"
               f"有效期 {span}。请立即巡查：读取裂缝标记，查看有无新裂缝、地面鼓胀、渗水或浑水、落石掉块、"
               f"树木电杆歪斜、异常声响，并提交现场报告（/field）。发现险情立即报告并组织避让。")
    en_title = f"[Weather risk {level}] {'patrol reminder' if reminder else 'patrol order'} {site.name}"
    en_body = (f"{'No field report from you yet. ' if reminder else ''}{site.name} ({site.id}) is in a {level} "
               f"meteorological geohazard risk warning area, valid {span}. Patrol now: read the crack markers, "
               f"look for new cracks, bulging, seepage or muddy water, falling rocks, tilting trees or poles, "
               f"unusual sounds, and send a field report (/field).")
    return mgr.tell(site, ("monitor",), f"{key}:{'reminder' if reminder else 'patrol'}:{site.id}",
                    lambda lang: (en_title, en_body) if lang == "en" else (zh_title, zh_body),
                    priority=PRIORITY_PATROL, now=now)


def reporting(mgr: AlertManager, key: str, site: Site, level: str, valid_to: float, box: tuple, accelerate: bool,
              now: float) -> int:
    """Accelerate (national devices: `meteorologicalearlywarning`; native: the configured
    accelerate commands) or restore the site's devices' reporting; commands queued."""
    planner, what = mgr.setup.planner, "accelerate" if accelerate else "restore"
    hours = max(1, math.ceil((valid_to - now) / 3600.0))
    n = 0
    with mgr.db.tx() as db:
        for dev in site.devices:
            if dev.kind in ACTUATOR_KINDS or dev.kind in HUMAN_KINDS:
                continue
            if accelerate and dev.protocol == "national":
                cmds = [("meteorologicalearlywarning",
                         {"level": Level.of(level).national, "effective_time": hours,
                          "lon_range": f"{box[0]:.4f},{box[2]:.4f}", "lat_range": f"{box[1]:.4f},{box[3]:.4f}"})]
            else:
                cmds = planner.reporting_commands(dev, accelerate)
            for i, (name, params) in enumerate(cmds):
                c = planner.command(None, f"{key}:sampling:{what}:{dev.id}:{i}", site, dev, name, params, "sampling",
                                    PRIORITY_SAMPLING, False)
                n += enqueue_command(db, c, now)
    mgr.wake()
    return n
