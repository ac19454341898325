"""Configuration section `video:`."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class VideoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(5.0, gt=0)  # a camera slower than this is a fault; the warning never waits
    max_bytes: int = Field(5_000_000, gt=0)
    # where people reach this service's API, for the link in the follow-up message (None: no link)
    public_url: str | None = None
    roles: tuple[str, ...] = ("monitor", "official", "duty_officer")  # who gets the still's link
