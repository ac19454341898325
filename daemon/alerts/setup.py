"""What the alert lifecycle reads from the configuration, built in one piece: the registry's
sites and contacts, the `notify:`, `sirens:` and `sampling:` sections, and what is made from
them (routes with the apprise configuration file read, templates, device command formats).
Everything that can fail (an unreadable apprise file or template, an unknown time zone) fails
while building, so a reload that cannot apply is refused before anything changed."""
from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry
from .device_commands import CommandPlanner
from .messages import Renderer
from .routing import Router
from .settings import NotifySettings, SamplingSettings, SirenSettings


@dataclass(frozen=True)
class AlertSetup:
    registry: Registry
    notify: NotifySettings
    sirens: SirenSettings
    sampling: SamplingSettings
    router: Router
    renderer: Renderer
    planner: CommandPlanner

    @classmethod
    def build(cls, registry: Registry, notify: NotifySettings | None = None, sirens: SirenSettings | None = None,
              sampling: SamplingSettings | None = None, *, router: Router | None = None,
              renderer: Renderer | None = None) -> "AlertSetup":
        notify = notify or NotifySettings()
        sirens = sirens or SirenSettings()
        sampling = sampling or SamplingSettings()
        renderer = renderer or Renderer(notify.templates_dir, notify.timezone)
        return cls(registry, notify, sirens, sampling, router or Router(notify), renderer,
                   CommandPlanner(registry, sirens, sampling, renderer))
