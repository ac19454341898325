"""Stills from a site's video units when its alert opens or escalates. Fetched off the warning's
path (a small thread pool): the warning has already gone out when the camera is asked. The still
is stored in the state directory (`snapshots/`), recorded on the alert's audit trail, served at
`GET /api/v1/alerts/{id}/snapshot`, and linked in a follow-up message. A camera that does not
answer is a device fault for technicians (`snapshot_failed`), cleared by its next still."""
from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from ..alerts import store
from ..alerts.events import DeviceFault, SiteLevelChange
from ..alerts.outbox import OutMessage, enqueue_message
from ..alerts.recipients import resolve_secrets
from ..model.levels import Level

if TYPE_CHECKING:
    from ..service import Service

log = logging.getLogger("geowarn.video")
PRIORITY_SNAPSHOT = 8  # after every warning


class Snapshots:
    def __init__(self, service: "Service"):
        self.svc = service
        self.dir = Path(service.state_dir) / "snapshots"
        self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="geowarn-snapshot")
        self._failing: set[str] = set()

    @property
    def settings(self):
        return self.svc.config.settings.video

    def on_event(self, event: SiteLevelChange, alert_id: int | None) -> None:
        """After the lifecycle handled a rise: ask the site's cameras, without waiting."""
        if alert_id is None or event.level == "normal" or event.previous == event.level:
            return
        if Level.of(event.level) < Level.of(event.previous):
            return
        site = self.svc.config.registry.site(event.site)
        for dev in site.devices if site else ():
            if dev.kind == "video" and dev.snapshot_url:
                self._pool.submit(self._fetch, alert_id, event, dev.id, dev.snapshot_url)

    def _fetch(self, alert_id: int, event: SiteLevelChange, device: str, url: str) -> None:
        mgr = self.svc.alerts.manager
        now = time.time()
        try:
            with urllib.request.urlopen(resolve_secrets(url), timeout=self.settings.timeout_s) as r:
                data = r.read(self.settings.max_bytes + 1)
            if not data or len(data) > self.settings.max_bytes:
                raise ValueError(f"snapshot of {len(data)} bytes")
        except Exception as e:  # noqa: BLE001  -- any failure of a camera is its fault, never the service's
            detail = f"no still from the camera: {getattr(e, 'reason', e)}"
            log.warning("snapshot %s for A%d failed: %s", device, alert_id, detail)
            self._failing.add(device)
            mgr.handle(DeviceFault(event.site, device, "snapshot_failed", now, detail, True, event.drill))
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"A{alert_id}-{event.level}-{device}-{int(now)}.jpg"
        path.write_bytes(data)
        link = f"{self.settings.public_url.rstrip('/')}/api/v1/alerts/{alert_id}/snapshot" \
            if self.settings.public_url else None
        site = self.svc.config.registry.site(event.site)
        with mgr.db.tx() as db:
            store.audit(db, alert_id, now, "snapshot", None, device=device, path=str(path), bytes=len(data))
            for rec in mgr.setup.router.roles(site, self.settings.roles).recipients:
                zh = rec.lang != "en"
                title = (f"{'【演练】' if event.drill and zh else 'DRILL ' if event.drill else ''}"
                         + (f"现场图像 {site.name} 告警A{alert_id}" if zh else f"Site still {site.name} alert A{alert_id}"))
                body = (f"{site.name} 视频设备 {device} 现场截图已存档" if zh else
                        f"still from video unit {device} at {site.name} stored") + (f"：{link}" if link and zh else
                                                                                    f": {link}" if link else "")
                enqueue_message(db, OutMessage(
                    key=f"a{alert_id}:snapshot:{event.level}:{device}:{rec.key}", alert_id=alert_id, site=site.id,
                    role=rec.role, recipient=rec.name, target=rec.target, title=title, body=body,
                    drill=event.drill, priority=PRIORITY_SNAPSHOT), now)
        mgr.wake()
        if device in self._failing:
            self._failing.discard(device)
            mgr.handle(DeviceFault(event.site, device, "snapshot_failed", now, "camera answers again", False,
                                   event.drill))

    def latest(self, alert_id: int) -> Path | None:
        found = sorted(self.dir.glob(f"A{alert_id}-*.jpg"), key=lambda p: p.stat().st_mtime)
        return found[-1] if found else None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
