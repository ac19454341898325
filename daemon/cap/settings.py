"""Configuration section `cap:`."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CapSigning(_Section):
    """XML-DSig (enveloped, RSA-SHA256) with the issuing centre's key and certificate (PEM)."""

    key_file: str
    cert_file: str
    password_env: str | None = None  # the key's passphrase from the environment, if it has one


class CapSettings(_Section):
    enabled: bool = True
    # who issues the warnings, unique among CAP senders: e.g. the centre's domain or address
    sender: str = Field("geowarn@localhost", pattern=r"^[^\s,<&]+$")
    sender_name: dict[str, str] = {"zh": "地质灾害监测预警系统", "en": "Geohazard monitoring and early warning"}
    # identifiers are `<prefix>.<site>.<opened YYYYmmddHHMMSS>.A<alert>.<version>`
    identifier_prefix: str = Field("geowarn", pattern=r"^[A-Za-z0-9_.-]+$")
    radius_km: float = Field(1.0, gt=0, le=100)  # the site's warning circle
    site_radius_km: dict[str, float] = {}  # per site, e.g. a long runout below a debris flow
    # a message is valid this long; while its alert stays open an Update renews it in time
    valid_h: float = Field(24.0, gt=1, le=24 * 30)
    renew_before_h: float = Field(1.0, gt=0)
    web_url: str | None = None  # e.g. "https://warn.example/console/#/site/{site}"
    # HTTP(S) endpoints each message is POSTed to (application/cap+xml) through the outbox;
    # `${ENV}` in a URL is resolved at send time
    push: tuple[str, ...] = ()
    sign: CapSigning | None = None
    feed_days: float = Field(7.0, gt=0)  # the feed: open alerts' messages plus the last days'
