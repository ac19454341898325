"""Who a message goes to, and how: a recipient is a name, a role, a language and one apprise
target. Targets keep `${ENV}` placeholders until the moment of sending, so no secret is ever
written to the journal; targets from an apprise configuration file are kept by reference."""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

from ..registry import Contact, Site

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
CONFIG_PREFIX = "apprise-config:"


class MissingSecret(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    role: str
    lang: str
    target: str

    @property
    def key(self) -> str:
        """Stable across restarts: part of the outbox idempotency key."""
        return f"{self.role}:{hashlib.sha1(f'{self.name}|{self.target}'.encode()).hexdigest()[:12]}"


def fill(template: str, **values: str) -> str:
    """`{phone}`-style placeholders only; `${ENV}` is left for send time."""
    for k, v in values.items():
        template = template.replace("{" + k + "}", v)
    return template


def resolve_secrets(target: str, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in env:
            raise MissingSecret(f"environment variable {name} is not set")
        return env[name]

    return _ENV.sub(sub, target)


def redact(text: str, target: str, environ: dict[str, str] | None = None) -> str:
    """Put `${NAME}` back wherever a secret of `target` appears in `text` (apprise's privacy
    mode only hides the fields it knows to be secret, not a key in a path)."""
    env = os.environ if environ is None else environ
    for name in _ENV.findall(target):
        value = env.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "${" + name + "}")
    return text


def from_contact(contact: Contact, role: str, site: Site, phone_url: str | None) -> Recipient | None:
    """A registry contact: its own apprise URL, or the name of an environment variable holding
    one, or its phone through the configured phone → URL template. None when unreachable."""
    if contact.url:
        target = contact.url if "://" in contact.url else "${" + contact.url + "}"
    elif contact.phone and phone_url:
        target = fill(phone_url, phone=contact.phone, site=site.id, role=role, county=site.county)
    else:
        return None
    return Recipient(contact.name, role, contact.lang, target)
