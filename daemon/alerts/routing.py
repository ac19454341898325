"""Routing: which recipients a site's level, an escalation tier or a device fault goes to.

Sources, merged and de-duplicated by target: the registry's per-site contacts, the
`notify.contacts` list (county duty office, township head …) and an apprise configuration
file whose URLs carry a role tag plus the site id, township, county or `all`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import apprise

from ..registry import Site
from .recipients import CONFIG_PREFIX, Recipient, fill, from_contact
from .settings import ExtraContact, NotifySettings

log = logging.getLogger("geowarn.alerts.routing")


@dataclass
class Route:
    recipients: list[Recipient] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # "role:name" without a URL or phone route


def load_apprise_config(path: str | None) -> list[apprise.plugins.NotifyBase]:
    """The services of an apprise configuration file. A file that is missing, unreadable or
    yields no service is an error: apprise alone would give an empty list, and every contact
    configured there would silently be dropped."""
    if not path:
        return []
    try:
        Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"notify.apprise_config: cannot read {path}: {e.strerror or e}") from None
    cfg = apprise.AppriseConfig()
    if not cfg.add(path):
        raise ValueError(f"notify.apprise_config: cannot read {path}")
    services = list((getattr(cfg, "services", None) or cfg.servers)())  # apprise 2.x / 1.x
    if not services:
        raise ValueError(f"notify.apprise_config: {path} holds no URL apprise can use")
    return services


def _applies(c: ExtraContact, site: Site) -> bool:
    if c.sites:
        return site.id in c.sites
    return (c.county is None or c.county == site.county) and (c.township is None or c.township == site.township)


class Router:
    def __init__(self, settings: NotifySettings, config_services: list | None = None):
        self.settings = settings
        services = load_apprise_config(settings.apprise_config) if config_services is None else config_services
        self._config = [({str(t).lower() for t in s.tags}, s) for s in services]

    def roles(self, site: Site, roles: tuple[str, ...]) -> Route:
        route = Route()
        seen: set[str] = set()

        def add(r: Recipient) -> None:
            if r.target not in seen:
                seen.add(r.target)
                route.recipients.append(r)

        places = {site.id.lower(), site.county.lower(), site.township.lower(), "all"} - {""}
        for role in roles:
            for contact in site.contacts.get(role, ()):  # type: ignore[call-overload]
                phone_url = self.settings.phone_url_by_role.get(role, self.settings.phone_url)
                r = from_contact(contact, role, site, phone_url)
                if r is None:
                    route.unreachable.append(f"{role}:{contact.name}")
                else:
                    add(r)
            for c in self.settings.contacts:
                if c.role == role and _applies(c, site):
                    add(Recipient(c.name, role, c.lang, fill(c.url, site=site.id, county=site.county)))
            for tags, svc in self._config:
                if role.lower() in tags and tags & places:
                    add(Recipient(f"{role}@{svc.url_id()}", role, "en" if "en" in tags else "zh",
                                  CONFIG_PREFIX + str(svc.url_id())))
        return route

    def level(self, site: Site, level: str) -> Route:
        return self.roles(site, self.settings.levels[level].roles)

    def tier(self, site: Site, index: int) -> Route:
        return self.roles(site, self.settings.escalation[index].roles)

    def fault(self, site: Site, fault: str) -> Route:
        roles = self.settings.fault_roles.get(fault, self.settings.fault_roles["default"])
        route = self.roles(site, tuple(r for r in roles if r != "household"))
        # a household never hears of device faults, whatever the configuration says
        route.recipients = [r for r in route.recipients if r.role != "household"]
        return route
