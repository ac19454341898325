"""The shapes every driver speaks: what a decoded frame yields, and the plugin contracts.

A wire format turns (topic, payload) into readings, device statuses, command replies and
rejections; a sensor kind turns one sensor's raw value into normalised channels. Neither
touches the journal or the network: the intake does that.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol


class Invalid(ValueError):
    """A value or frame that must be quarantined; `reason` is one of `Reason`."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Reason:
    """Quarantine reasons: stable identifiers, counted per reason and shown to technicians."""

    UNKNOWN_DEVICE = "unknown_device"
    SITE_MISMATCH = "site_mismatch"
    UNKNOWN_TOPIC = "unknown_topic"
    BAD_FRAMING = "bad_framing"
    BAD_LENGTH = "bad_length"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    BAD_SCHEMA = "bad_schema"
    UNKNOWN_FRAME_TYPE = "unknown_frame_type"
    UNKNOWN_SENSOR = "unknown_sensor"
    MISSING_VALUE = "missing_value"
    NON_NUMERIC = "non_numeric"
    NON_FINITE = "non_finite"
    IMPOSSIBLE_VALUE = "impossible_value"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    ANCIENT_TIMESTAMP = "ancient_timestamp"
    OVERSIZE = "oversize"
    DECODER_ERROR = "decoder_error"  # a bug of ours, kept with the frame that caused it


@dataclass(frozen=True, slots=True)
class Reading:
    """One normalised value of one channel of one device at one instant (epoch seconds, UTC)."""

    device: str
    kind: str
    channel: str
    ts: float
    value: float
    seq: int | None = None
    # the site the wire claimed (native topics carry one); the screen checks it
    site: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A device's health report, normalised (battery_pct, signal, sensor_state, ...)."""

    device: str
    ts: float
    fields: dict[str, Any]
    # the site the wire claimed (native topics carry one); the screen checks it
    site: str | None = None


@dataclass(frozen=True, slots=True)
class CommandReply:
    device: str | None
    command: str
    ok: bool
    msgid: str | None
    raw: str


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    detail: str
    device: str | None = None


@dataclass(slots=True)
class Decoded:
    readings: list[Reading] = field(default_factory=list)
    statuses: list[DeviceStatus] = field(default_factory=list)
    replies: list[CommandReply] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, reason: str, detail: str, device: str | None = None) -> None:
        self.rejections.append(Rejection(reason, detail, device))


def _nothing_derived(values: dict[str, float]) -> dict[str, float]:
    return {}


@dataclass(frozen=True)
class SensorKind:
    """A kind of sensor: its national codes, normalised channels with units, and the values
    that are physically possible (anything outside is a broken sensor or frame, never data)."""

    name: str
    codes: tuple[str, ...]
    channels: dict[str, str]
    limits: dict[str, tuple[float, float]]
    # national value (object, bare number or comma string) -> {channel: value}
    from_national: Callable[[Any], dict[str, float]]
    # native "values" object -> {channel: value}
    from_native: Callable[[dict[str, Any]], dict[str, float]]
    # {channel: value} -> the national object (simulators speak it)
    to_national: Callable[[dict[str, float]], Any]
    # channels computed from the measured ones (gnss dh from dx and dy): {} where their inputs
    # are not all there. The one function serves the wire formats and `geowarn replay` (rows
    # given as measured components), so a back-test judges what the service judges
    derive: Callable[[dict[str, float]], dict[str, float]] = _nothing_derived
    derived: tuple[str, ...] = ()  # the channels `derive` makes

    def decode_national(self, raw: Any) -> dict[str, float]:
        """A national value -> every channel, derived ones included."""
        return self.with_derived(self.from_national(raw))

    def decode_native(self, values: dict[str, Any]) -> dict[str, float]:
        """A native "values" object -> every channel, derived ones included."""
        return self.with_derived(self.from_native(values))

    def with_derived(self, values: dict[str, float]) -> dict[str, float]:
        """The measured channels plus the derived ones (a derived channel given as well is
        replaced: the service never takes it from the wire)."""
        values.update(self.derive(values))
        return values


class DeviceInfo(Protocol):
    id: str
    site: str
    kind: str
    sensors: tuple[str, ...]


class DeviceLookup(Protocol):
    """What drivers may ask of the registry."""

    def device(self, device_id: str) -> DeviceInfo | None: ...


class WireFormat(Protocol):
    """A wire format plugin (one file in drivers/formats/)."""

    name: str
    # MQTT topic filters the intake subscribes to for this format
    subscriptions: tuple[str, ...]

    def claims(self, topic: str) -> bool: ...

    # a sharded service (daemon/shard.py) narrows its subscriptions to its own sites where the
    # topic names the site; None where it does not (every shard subscribes and keeps its own)
    def site_subscriptions(self, site_ids: list[str]) -> tuple[str, ...] | None: ...

    def topic_site(self, topic: str) -> str | None: ...

    def decode(self, topic: str, payload: bytes) -> Decoded: ...

    def command_topic(self, device_id: str, site_id: str) -> str: ...

    def encode_readings(self, device: DeviceInfo, ts: float, values: dict[str, float]) -> tuple[str, bytes]: ...

    def encode_command(self, name: str, params: dict[str, Any], msgid: str) -> bytes: ...
