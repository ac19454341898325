"""Stills from a site's video units when its alert opens or escalates. Fetched off the warning's
path (a small thread pool): the warning has already gone out when the camera is asked. The still
is stored in the state directory (`snapshots/`), recorded on the alert's audit trail, served at
`GET /api/v1/alerts/{id}/snapshot`, and linked in a follow-up message. A camera that does not
answer is a device fault for technicians (`snapshot_failed`), cleared by its next still."""
from __future__ import annotations

import logging
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..alerts.events import DeviceFault, SiteLevelChange
from ..alerts.recipients import resolve_secrets
from ..model.levels import Level
from ..registry import Registry, Site
from .settings import VideoSettings

log = logging.getLogger("geowarn.video")
PRIORITY_SNAPSHOT = 8  # after every warning


@dataclass(frozen=True)
class VideoSetup:
    """What stills are taken and told from: the sites' video units, the `video:` section."""

    registry: Registry
    settings: VideoSettings


class Snapshots:
    def __init__(self, state_dir: str | Path, setup: VideoSetup, tell: Callable[..., int],
                 fault: Callable[[DeviceFault], int | None]):
        """`tell` queues the follow-up messages (AlertManager.tell); `fault` reports a camera
        that does not answer (Signals.fault)."""
        self.setup = setup
        self.dir = Path(state_dir) / "snapshots"
        self._tell = tell
        self._fault = fault
        self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="geowarn-snapshot")
        self._failing: set[str] = set()

    def reconfigure(self, setup: VideoSetup) -> None:
        """A reload: stills asked for from now on follow it."""
        self.setup = setup

    def on_event(self, event: SiteLevelChange, alert_id: int | None) -> None:
        """After the lifecycle handled a rise: ask the site's cameras, without waiting."""
        if alert_id is None or event.level == "normal" or Level.of(event.level) <= Level.of(event.previous):
            return
        setup = self.setup
        site = setup.registry.site(event.site)
        for dev in site.devices if site else ():
            if dev.kind == "video" and dev.snapshot_url:
                self._pool.submit(self._fetch, setup, site, alert_id, event, dev.id, dev.snapshot_url)

    def _fetch(self, setup: VideoSetup, site: Site, alert_id: int, event: SiteLevelChange, device: str,
               url: str) -> None:
        settings = setup.settings
        now = time.time()
        try:
            with urllib.request.urlopen(resolve_secrets(url), timeout=settings.timeout_s) as r:
                data = r.read(settings.max_bytes + 1)
            if not data or len(data) > settings.max_bytes:
                raise ValueError(f"snapshot of {len(data)} bytes")
        except Exception as e:  # noqa: BLE001  -- any failure of a camera is its fault, never the service's
            detail = f"no still from the camera: {getattr(e, 'reason', e)}"
            log.warning("snapshot %s for A%d failed: %s", device, alert_id, detail)
            self._failing.add(device)
            self._fault(DeviceFault(event.site, device, "snapshot_failed", now, detail, True, event.drill))
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"A{alert_id}-{event.level}-{device}-{int(now)}.jpg"
        path.write_bytes(data)
        link = f"{settings.public_url.rstrip('/')}/api/v1/alerts/{alert_id}/snapshot" if settings.public_url else None

        def text(lang: str) -> tuple[str, str]:
            zh = lang != "en"
            title = (f"{'【演练】' if event.drill and zh else 'DRILL ' if event.drill else ''}"
                     + (f"现场图像 {site.name} 告警A{alert_id}" if zh else f"Site still {site.name} alert A{alert_id}"))
            body = (f"{site.name} 视频设备 {device} 现场截图已存档" if zh else
                    f"still from video unit {device} at {site.name} stored") + (f"：{link}" if link and zh else
                                                                                f": {link}" if link else "")
            return title, body

        self._tell(site, settings.roles, f"a{alert_id}:snapshot:{event.level}:{device}", text,
                   priority=PRIORITY_SNAPSHOT, alert_id=alert_id, drill=event.drill, now=now,
                   audit=("snapshot", {"device": device, "path": str(path), "bytes": len(data)}))
        if device in self._failing:
            self._failing.discard(device)
            self._fault(DeviceFault(event.site, device, "snapshot_failed", now, "camera answers again", False,
                                    event.drill))

    def latest(self, alert_id: int) -> Path | None:
        found = sorted(self.dir.glob(f"A{alert_id}-*.jpg"), key=lambda p: p.stat().st_mtime)
        return found[-1] if found else None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
