"""Configuration section `field:`: who may report. Judgement (marker rates, observation
severity) lives in the alert rules (`field:` in alert_rules/defaults.yaml)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FieldSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # monitor name -> environment variable (or systemd credential of that name) holding their token
    monitors: dict[str, str] = {}
    photo_max_bytes: int = Field(3_000_000, ge=0)  # decoded; a phone photo resized by the form
    text_max_chars: int = Field(2000, ge=0)
    future_s: float = Field(600.0, ge=0)  # a reading stamped further ahead is a wrong phone clock
    max_age_days: float = Field(30.0, gt=0)  # older readings are refused: a typo in the date
