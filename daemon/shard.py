"""Site shards: which of N geowarn instances owns which site.

A province runs N instances on one (clustered) broker; each owns a shard of the sites and is
the only one that journals, judges, warns and commands for them, so each site's state lives in
exactly one place. The assignment is a pure function every instance computes alike:

    owner(site) = pin[site] if the site is pinned, else crc32(site id as UTF-8) mod count

crc32 gives the same answer in every process, on every machine and Python version (Python's
own `hash()` of a string is randomised per process and must never decide ownership). All
instances share `count` and `pin`; only `index` differs. What names no known device (an
unknown device id, a malformed frame) belongs to shard 0, so exactly one instance quarantines
it; a command reply that names no known device goes to every shard, which match it against
their own outbox by msgid.
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .registry import Registry


def shard_of(site_id: str, count: int, pin: Mapping[str, int] | None = None) -> int:
    """The index of the shard owning `site_id` among `count` shards."""
    if pin and site_id in pin:
        return pin[site_id]
    return zlib.crc32(site_id.encode("utf-8")) % count


class ShardSettings(BaseModel):
    """`shard: {index: 0, count: 2, pin: {YHQ005: 1}}`; absent: one instance owns every site."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=0)
    count: int = Field(ge=1, le=4096)
    # sites placed by hand (a busy county split, a site moved without moving the others)
    pin: dict[str, int] = {}

    @model_validator(mode="after")
    def _in_range(self) -> "ShardSettings":
        if self.index >= self.count:
            raise ValueError(f"index {self.index} is not below count {self.count} (indices run 0..{self.count - 1})")
        for site, index in self.pin.items():
            if not 0 <= index < self.count:
                raise ValueError(f"pin {site}: {index} is not a shard index 0..{self.count - 1}")
        return self


@dataclass(frozen=True)
class Shard:
    """This instance's part of the network."""

    index: int = 0
    count: int = 1
    pin: Mapping[str, int] | None = None

    @classmethod
    def of(cls, settings: ShardSettings | None) -> "Shard":
        return cls() if settings is None else cls(settings.index, settings.count, dict(settings.pin))

    @property
    def whole(self) -> bool:
        """One instance for the whole network: nothing to filter."""
        return self.count == 1

    @property
    def label(self) -> str:
        return f"shard {self.index} of {self.count}"

    def client_id(self, base: str) -> str:
        """MQTT client ids per shard, so the instances' persistent sessions never take each other over."""
        return base if self.whole else f"{base}-shard-{self.index}-of-{self.count}"

    def owns(self, site_id: str) -> bool:
        return self.whole or shard_of(site_id, self.count, self.pin) == self.index

    def owns_item(self, registry: Registry, topic_site: str | None, device_id: str | None) -> bool:
        """Whose is one reading, status, reply or rejection of a message: the shard of the site its
        topic names (the only shard subscribed to that topic), else of its device's site; what
        names no site of the registry belongs to shard 0."""
        if topic_site is None:
            device = registry.device(device_id) if device_id else None
            topic_site = device.site if device is not None else None
        if topic_site is None or registry.site(topic_site) is None:
            return self.index == 0
        return self.owns(topic_site)

    def narrows(self) -> bool:
        """Subscribe to this shard's sites only (where topics name sites)? Shard 0 keeps the
        wildcards: it quarantines what names no known site, which only a wildcard receives."""
        return self.index != 0

    def sites(self, registry: Registry) -> list[str]:
        return [s.id for s in registry.sites if self.owns(s.id)]

    def view(self, registry: Registry) -> Registry:
        """The registry as this instance's core, alerts and desks see it: its own sites only."""
        if self.whole:
            return registry
        return Registry(registry.doc.model_copy(update={"sites": tuple(s for s in registry.sites if self.owns(s.id))}))

    def describe(self, registry: Registry) -> dict:
        return {"index": self.index, "count": self.count, "sites": len(self.sites(registry)),
                "network_sites": len(registry.sites)}


WHOLE_NETWORK = Shard()  # one instance, every site: the default where no shard is configured
