"""Node configuration: ``HOME/config.toml`` plus ``RISKMESH_<SECTION>_<KEY>`` overrides.

Every setting is one row of :data:`SETTINGS` (name, type, default, help); the
docs and a test are generated from and checked against that table. A bad
setting is refused with an error naming it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.errors import ConfigError

__all__ = ["SETTINGS", "Config", "ConfigError", "Setting", "load_config", "render_config"]


@dataclass(frozen=True, slots=True)
class Setting:
    section: str
    key: str
    type: type
    default: Any
    help: str
    #: never shown: not in a repr, a log line or an error message
    secret: bool = False

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def env(self) -> str:
        return f"RISKMESH_{self.section.upper()}_{self.key.upper()}"


SETTINGS: tuple[Setting, ...] = (
    Setting("node", "name", str, "", "This member's display name in the charter."),
    Setting(
        "node",
        "region",
        str,
        "CN",
        "Default region for phone numbers written without a country code (ISO 3166 alpha-2).",
    ),
    Setting(
        "node",
        "warning_list",
        str,
        "",
        "JSON file ({kind: [entry, ...]}, relative to HOME) of values this node never "
        "reports, on top of the shipped and the charter's warning lists; empty: none.",
    ),
    Setting(
        "api",
        "listen",
        str,
        "127.0.0.1:7700",
        "HOST:PORT of the local API, for this member's own platforms only.",
    ),
    Setting(
        "api",
        "max_body_bytes",
        int,
        8 * 1024 * 1024,
        "Largest request body the local API accepts; larger gets 413.",
    ),
    Setting("api", "max_batch", int, 10_000, "Most items in one /v1/query batch."),
    Setting(
        "api",
        "max_connections",
        int,
        1000,
        "Most open connections to the local API; past it a new connection is closed at once.",
    ),
    Setting(
        "peer",
        "listen",
        str,
        "127.0.0.1:7701",
        "HOST:PORT of the peer API that other members' nodes call.",
    ),
    Setting(
        "peer",
        "endpoint",
        str,
        "",
        "URL other members use to reach this node's peer API (published in the charter).",
    ),
    Setting(
        "peer",
        "max_connections",
        int,
        512,
        "Most open connections to the peer API; past it a new connection is closed at once.",
    ),
    Setting(
        "serve",
        "workers",
        int,
        0,
        "Local-API serving processes sharing api.listen (SO_REUSEPORT) beside the one writer "
        "process (gossip, reports, administration, upkeep); 0: one per core.",
    ),
    Setting(
        "serve",
        "summary_overlay",
        int,
        200_000,
        "Token changes kept in memory on top of the verdict summary file before a new file "
        "is built (off the serving path).",
    ),
    Setting(
        "http",
        "header_timeout_s",
        float,
        10.0,
        "Seconds a new connection (either listener) has to send a whole request head.",
    ),
    Setting(
        "http",
        "body_timeout_s",
        float,
        30.0,
        "Seconds a request (either listener) has to send its whole body; later gets 408.",
    ),
    Setting("gossip", "interval_s", float, 2.0, "Seconds between gossip rounds (jittered)."),
    Setting("gossip", "fanout", int, 3, "Peers contacted per gossip round."),
    Setting(
        "gossip",
        "frame_bytes",
        int,
        1_048_576,
        "Most bytes of entries in one gossip message; the charter's policy caps it.",
    ),
    Setting(
        "gossip",
        "timeout_s",
        float,
        10.0,
        "Seconds to wait for a peer's answer before counting the exchange as failed.",
    ),
    Setting("index", "error_rate", float, 0.001, "Target false-positive rate of the Bloom index."),
    Setting(
        "index",
        "rebuild_interval_s",
        float,
        600.0,
        "Seconds between scheduled index rebuilds (expired and retracted tokens drop out).",
    ),
    Setting(
        "alerts",
        "recent_query_hours",
        int,
        72,
        "Hours a queried value stays watched for alerts (0: queries are not watched).",
    ),
    Setting("alerts", "retention_days", int, 30, "Days an alert is kept for delivery."),
    Setting(
        "alerts",
        "webhook_url",
        str,
        "",
        "URL that alerts are POSTed to (empty: no webhook); needs alerts.webhook_secret.",
    ),
    Setting(
        "alerts",
        "webhook_secret",
        str,
        "",
        "Key of the webhook's X-Riskmesh-Signature (HMAC-SHA256 of the body); never shown.",
        secret=True,
    ),
    Setting("store", "path", str, "riskmesh.db", "SQLite database file, relative to HOME."),
    Setting("log", "level", str, "info", "Log level: debug, info, warning or error."),
    Setting(
        "log",
        "format",
        str,
        "text",
        "Log line format: text, or json (one object per line: ts, level, logger, msg).",
    ),
)
_BY_NAME = {s.name: s for s in SETTINGS}
_SECRET = frozenset(s.name for s in SETTINGS if s.secret)


@dataclass(frozen=True, slots=True)
class Config:
    home: Path
    values: Mapping[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def __repr__(self) -> str:
        shown = {k: "<secret>" if k in _SECRET and v else v for k, v in self.values.items()}
        return f"Config(home={self.home!r}, values={shown!r})"

    def get(self, name: str) -> Any:
        return self.values[name]

    @property
    def db_path(self) -> Path:
        p = Path(self.values["store.path"])
        return p if p.is_absolute() else self.home / p

    @property
    def key_path(self) -> Path:
        return self.home / "keys" / "member.key"

    @property
    def token_path(self) -> Path:
        return self.home / "api-token"


def parse_listen(value: str, name: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"setting {name} must be HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _coerce(s: Setting, value: Any, where: str) -> Any:
    if s.type is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "0", "false", "no"}:
            return value.lower() in {"1", "true", "yes"}
    elif s.type is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif s.type is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(value, str):
        return value
    got = "a value that is not shown" if s.secret else repr(value)
    raise ConfigError(f"setting {s.name} ({where}) must be a {s.type.__name__}, got {got}")


def _validate(values: dict[str, Any]) -> None:
    for name in ("api.listen", "peer.listen"):
        parse_listen(values[name], name)
    for name in ("api.max_body_bytes", "api.max_batch", "gossip.fanout", "gossip.frame_bytes"):
        if values[name] < 1:
            raise ConfigError(f"setting {name} must be positive")
    for name in ("gossip.interval_s", "gossip.timeout_s", "index.rebuild_interval_s"):
        if not values[name] > 0:
            raise ConfigError(f"setting {name} must be positive")
    if not 0 <= values["serve.workers"] <= 256:
        raise ConfigError("setting serve.workers must be 0 (one per core) to 256")
    if values["serve.summary_overlay"] < 1000:
        raise ConfigError("setting serve.summary_overlay must be 1000 or more")
    if not 0 < values["index.error_rate"] < 0.5:
        raise ConfigError("setting index.error_rate must be between 0 and 0.5")
    if values["alerts.recent_query_hours"] < 0 or values["alerts.retention_days"] < 1:
        raise ConfigError(
            "setting alerts.recent_query_hours must be 0 or more, alerts.retention_days 1 or more"
        )
    url = values["alerts.webhook_url"]
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError("setting alerts.webhook_url must be an http:// or https:// URL")
    if url and not values["alerts.webhook_secret"]:
        raise ConfigError("setting alerts.webhook_url needs alerts.webhook_secret")
    if values["log.level"] not in {"debug", "info", "warning", "error"}:
        raise ConfigError("setting log.level must be debug, info, warning or error")
    if values["log.format"] not in {"text", "json"}:
        raise ConfigError("setting log.format must be text or json")
    if len(values["node.region"]) != 2 or not values["node.region"].isalpha():
        raise ConfigError("setting node.region must be a two-letter region code")


def load_config(home: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read ``HOME/config.toml`` and apply environment overrides."""
    home = Path(home)
    env = os.environ if env is None else env
    path = home / "config.toml"
    values = {s.name: s.default for s in SETTINGS}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        for section, table in data.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: [{section}] must be a table")
            for key, value in table.items():
                s = _BY_NAME.get(f"{section}.{key}")
                if s is None:
                    raise ConfigError(f"{path}: unknown setting {section}.{key}")
                values[s.name] = _coerce(s, value, str(path))
    elif not home.exists():
        raise ConfigError(f"no riskmesh home at {home} (run `riskmesh init` first)")
    for s in SETTINGS:
        if s.env in env:
            values[s.name] = _coerce(s, env[s.env], s.env)
    _validate(values)
    return Config(home=home, values=values)


def render_config(values: Mapping[str, Any]) -> str:
    """A config.toml with every setting, its help as a comment, and ``values`` filled in."""
    lines = [
        "# riskmesh node configuration. Every setting can be overridden by",
        "# RISKMESH_<SECTION>_<KEY> in the environment.",
        "",
    ]
    section = None
    for s in SETTINGS:
        if s.section != section:
            if section is not None:
                lines.append("")
            lines.append(f"[{s.section}]")
            section = s.section
        v = values.get(s.name, s.default)
        lines.append(f"# {s.help}")
        lines.append(f"{s.key} = {_toml(v)}")
    return "\n".join(lines) + "\n"


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'
