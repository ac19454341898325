"""Configuration section `http:`."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HttpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"  # loopback unless a reverse proxy with TLS stands in front
    port: int = Field(8787, ge=0, le=65535)
    token_env: str = "GEOWARN_HTTP_TOKEN"  # writes need `Authorization: Bearer <token>`
    token_credential: str = "http-token"  # or the token from systemd's LoadCredential= of this name
    open_reads: bool = False  # GET without a token (e.g. a wall display on the LAN)
    # the console map's county outlines: a GeoJSON file (relative to the configuration file);
    # default: the built-in Xiangtan counties (daemon/boundaries.py says what the file holds)
    boundaries: str | None = None
    # a token /metrics also takes (and nothing else), for a scraper: `authorization: {credentials_file: …}`
    metrics_token_env: str | None = None
