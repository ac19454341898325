"""Configuration: the network registry plus service settings, from YAML.

A configuration file either holds the registry inline (`sites:`, as the built-in example
does) or names a registry file (`registry: path.yaml`), plus optional sections (`intake:`,
`journal:`, …). Every problem is reported as `file:line: place: problem`, never a traceback.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .alerts.settings import NotifySettings, SamplingSettings, SirenSettings
from .cap.settings import CapSettings
from .field.settings import FieldSettings
from .http.settings import HttpSettings
from .video.settings import VideoSettings
from .registry import Registry, RegistryDoc
from .shard import ShardSettings

REGISTRY_KEYS = ("name", "example", "note", "sites")


def default_config_path() -> Path:
    return Path(str(resources.files("geowarn.daemon") / "defaults" / "xiangtan_example.yaml"))


class ConfigError(Exception):
    def __init__(self, file: str, place: str, problem: str, line: int | None = None):
        self.file, self.place, self.problem, self.line = file, place, problem, line
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {place}: {problem}" if place else f"{where}: {problem}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TLSSettings(_Section):
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    # never turn this on outside a lab: it accepts any server certificate
    insecure: bool = False


class IntakeSettings(_Section):
    broker: str = "mqtt://127.0.0.1:1883"
    client_id: str = Field("geowarn", min_length=1, max_length=128)
    # MQTT 5 (session expiry, receive maximum) unless the broker only speaks 3.1.1
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    # secrets come from the environment, or a systemd credential of this name
    password_env: str = "GEOWARN_MQTT_PASSWORD"
    password_credential: str = "mqtt-password"
    tls: TLSSettings | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    # un-acknowledged QoS 1 messages the broker may have in flight to us: bounds our memory
    receive_maximum: int = Field(1000, ge=1, le=65535)
    session_expiry_s: int = Field(7 * 86400, ge=60)
    batch_max: int = Field(2000, ge=1)
    batch_wait_ms: float = Field(20.0, ge=0)
    future_s: float = Field(600.0, ge=0)


class JournalSettings(_Section):
    # full: fsync each batch (survives power loss); normal: survives a process crash
    synchronous: str = Field("full", pattern="^(full|normal)$")
    # prune rows received longer ago than this; never what InfluxDB has not got yet (None: keep all)
    retention_days: float | None = Field(None, gt=0)


class InfluxSettings(_Section):
    """InfluxDB export (daemon/influx_export.py); absent: the journal alone serves."""

    url: str = Field(pattern=r"^https?://[^/\s]+")
    org: str = Field("geowarn", min_length=1)
    bucket: str = Field("geowarn", min_length=1)
    token_env: str = "GEOWARN_INFLUX_TOKEN"  # secrets come from the environment ...
    token_file: str | None = None  # ... or a credentials file (wins over the environment)
    batch_size: int = Field(5000, ge=1, le=100_000)  # journal rows per write
    timeout_s: float = Field(10.0, gt=0)
    poll_s: float = Field(1.0, gt=0)  # idle wait when everything is exported
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(60.0, gt=0)
    ca_file: str | None = None
    verify_ssl: bool = True


class Settings(_Section):
    intake: IntakeSettings = IntakeSettings()
    journal: JournalSettings = JournalSettings()
    influx: InfluxSettings | None = None
    # alert rules directory, relative to the configuration file; default: the packaged alert_rules/
    rules: str | None = None
    notify: NotifySettings = NotifySettings()
    sirens: SirenSettings = SirenSettings()
    sampling: SamplingSettings = SamplingSettings()
    http: HttpSettings = HttpSettings()
    field: FieldSettings = FieldSettings()
    video: VideoSettings = VideoSettings()
    cap: CapSettings = CapSettings()  # public warnings as CAP 1.2 (daemon/cap/)
    # this instance's part of a sharded network (docs/scale-out.md); absent: every site
    shard: ShardSettings | None = None


@dataclass(frozen=True)
class Config:
    source: str
    registry: Registry
    settings: Settings


# What a reload cannot change: open connections and files, a bound socket, the sites this
# instance owns. A reload changing any of them is refused by name (`restart_changes`);
# `section.*` names each key of the section.
RESTART_ONLY = ("intake.*", "journal.synchronous", "http.*", "notify.mqtt_ack_topic", "cap.enabled", "shard")
RESTART_SETTINGS_META = "restart_settings"  # the journal meta key a running service keeps them under


def restart_settings(config: Config) -> dict[str, Any]:
    """The settings only a restart applies, as plain JSON values by dotted name (`intake.broker`,
    `http.port` …): what a running service keeps (journal meta) so `geowarn check` can compare."""
    out: dict[str, Any] = {}
    doc = config.settings.model_dump(mode="json")
    for name in RESTART_ONLY:
        value: Any = doc
        for part in name.removesuffix(".*").split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if name.endswith(".*"):
            out.update({f"{name[:-2]}.{k}": v for k, v in value.items()})
        else:
            out[name] = value
    return out


def restart_changes(running: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The names whose value differs: these need a restart, a reload would be refused."""
    return sorted(k for k in running.keys() | new.keys() if running.get(k) != new.get(k))


def load_config(path: str | Path | None = None) -> Config:
    path = Path(path) if path is not None else default_config_path()
    doc, root = _read_yaml(path)
    if not isinstance(doc, dict):
        raise ConfigError(str(path), "", "the top level must be a mapping")
    if "registry" in doc:
        try:
            reg_path = (path.parent / str(doc["registry"])).resolve()
        except (OSError, ValueError) as e:  # ValueError: a NUL in the name
            raise ConfigError(str(path), "registry", f"not a usable file name: {e}") from None
        reg_doc, reg_root = _read_yaml(reg_path)
        if not isinstance(reg_doc, dict):
            raise ConfigError(str(reg_path), "", "the top level must be a mapping")
        reg_src, reg_node = str(reg_path), reg_root
        rest = {k: v for k, v in doc.items() if k != "registry"}
    else:
        reg_doc = {k: doc[k] for k in REGISTRY_KEYS if k in doc}
        reg_src, reg_node = str(path), root
        rest = {k: v for k, v in doc.items() if k not in REGISTRY_KEYS}
    if "sites" not in reg_doc:
        raise ConfigError(reg_src, "sites", "no sites: a configuration needs `sites:` or `registry: FILE`")
    registry = Registry(_validate(RegistryDoc, reg_doc, reg_src, reg_node))
    settings = _validate(Settings, rest, str(path), root)
    _check_pins(settings, registry, str(path), root)
    return Config(source=str(path), registry=registry, settings=settings)


def _check_pins(settings: Settings, registry: Registry, source: str, doc: "_Doc") -> None:
    """A pin naming no site of the registry is a typo that would silently move nothing."""
    for site in settings.shard.pin if settings.shard else ():
        if registry.site(site) is None:
            loc = ["shard", "pin", site]
            raise ConfigError(source, place(loc), f"no site {site!r} in the registry", _line_of(doc.root, loc))


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster


class _Doc:
    """A parsed YAML file; its node tree (for line numbers) is composed only when an error needs it."""

    def __init__(self, text: str):
        self.text = text

    @property
    def root(self) -> yaml.Node | None:
        try:
            return yaml.compose(self.text, Loader=_Loader)
        except yaml.YAMLError:
            return None


def _read_yaml(path: Path) -> tuple[Any, _Doc]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as e:  # ValueError: a NUL in the path
        raise ConfigError(str(path), "", f"cannot read: {e}") from None
    try:
        return yaml.load(text, Loader=_Loader), _Doc(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(str(path), "", f"invalid YAML: {problem}", mark.line + 1 if mark else None) from None
    except Exception as e:  # noqa: BLE001  -- PyYAML's constructors raise plain errors too: 2020-13-45, `!!timestamp x`
        raise ConfigError(str(path), "", f"invalid YAML: {type(e).__name__}: {e}") from None


def _validate(model: type[BaseModel], doc: dict, source: str, node: "_Doc | yaml.Node | None"):
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        err = e.errors()[0]
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal[")))]
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        root = node.root if isinstance(node, _Doc) else node
        raise ConfigError(source, place(loc), msg + more, _line_of(root, loc)) from None


def place(loc: list) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _line_of(node: yaml.Node | None, loc: list) -> int | None:
    """The line of the deepest YAML node the error location reaches."""
    line = None
    for p in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(p)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(p, int) and p < len(node.value):
            node = node.value[p]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line
