"""Process settings, read from the environment once at start.

Each setting is written once, as a field with its variable, default and meaning; the
reading, every command's --help and README's settings table all come from these fields.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from common.clock import Clock
from common.redis_client import cluster_seeds, is_cluster_url

MIN_KEY_CHARS = 16
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

T = TypeVar("T")
Reader = Callable[[str, str], Any]  # (variable's name, its raw value) -> the setting's value


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


def _text(name: str, raw: str) -> str:
    value = raw.strip()
    if not value:
        raise SettingsError(f"{name} is set but empty")
    return value


def _integer(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None


def _path(name: str, raw: str) -> Path:
    return Path(_text(name, raw))


def _upper(name: str, raw: str) -> str:
    return _text(name, raw).upper()


def _optional_path(_name: str, raw: str) -> Path | None:
    return Path(raw.strip()) if raw.strip() else None


def _keys(_name: str, raw: str) -> tuple[str, ...]:
    """Read one key, or two separated by a comma during a rotation."""
    return tuple(key.strip() for key in raw.split(",") if key.strip())


def setting(
    variable: str, default: T, meaning: str, read: Reader = _text, shown_default: str = ""
) -> T:
    """Declare a settings field: the variable it is read from, its default and its meaning."""
    about = {"variable": variable, "meaning": meaning, "read": read, "shown": shown_default}
    result: T = field(default=default, metadata=about)
    return result


@dataclass(frozen=True)
class SettingDoc:
    """One setting as --help and README show it."""

    variable: str
    default: str
    meaning: str


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = setting(
        "KAFKA_BOOTSTRAP", "127.0.0.1:9092", "Kafka brokers, `host:port[,host:port...]`"
    )
    # See common/redis_client.py for how each URL form is opened.
    redis_url: str = setting(
        "REDIS_URL",
        "redis://127.0.0.1:6379/0",
        "Redis for live buckets: one server (`redis://`, `rediss://`, `unix://`, as "
        "redis-py's `Redis.from_url`), or a Redis Cluster as "
        "`redis+cluster://host:port,host:port,...` (any reachable node is enough; list "
        "several so a process can start while one is down)",
    )
    database_url: str = setting(
        "DATABASE_URL", "sqlite:///data/usage.db", "durable store (`postgresql://...` too)"
    )
    services_file: Path = setting(
        "SERVICES_FILE",
        Path("services.toml"),
        "the tenants: time zone, keys, origins, limits",
        _path,
    )
    usage_topic: str = setting("USAGE_TOPIC", "usage-events", "the Kafka topic")
    topic_partitions: int = setting(
        "USAGE_TOPIC_PARTITIONS", 12, "partitions when the topic is created", _integer
    )
    consumer_group: str = setting(
        "CONSUMER_GROUP", "usage-aggregator", "the aggregators' consumer group"
    )
    redis_key_prefix: str = setting("REDIS_KEY_PREFIX", "usage", "first part of every Redis key")
    produce_timeout_ms: int = setting(
        "PRODUCE_TIMEOUT_MS",
        10_000,
        "how long the collector waits for Kafka's ack before `503`",
        _integer,
    )
    max_pending_events: int = setting(
        "MAX_PENDING_EVENTS",
        10_000,
        "events a collector process holds awaiting Kafka's ack; past it `503` at once "
        "(at least 1000)",
        _integer,
    )
    dedup_window_s: int = setting(
        "DEDUP_WINDOW_S",
        72 * 3600,
        "how long an `event_id` is remembered (at least 48 h)",
        _integer,
    )
    flusher_interval_ms: int = setting(
        "FLUSHER_INTERVAL_MS", 2000, "how often the flusher looks for complete days", _integer
    )
    flush_fsync_wait_ms: int = setting(
        "FLUSH_FSYNC_WAIT_MS",
        2500,
        "pause between moving a day's buckets aside and committing them, so that the move "
        "is in Redis's append-only file first",
        _integer,
    )
    metrics_port: int = setting(
        "METRICS_PORT",
        0,
        "port of `/metrics` for the aggregator and the flusher (9101, 9102 under "
        "`./dev start`); 0: none (the HTTP processes serve it on their own port)",
        _integer,
    )
    ops_keys: tuple[str, ...] = setting(
        "OPS_KEY",
        (),
        "operator key for `/v1/ops/*` and the dashboard; two, comma-separated, during a "
        "rotation; unset: refused",
        _keys,
        shown_default="unset (`demo-ops-key-change-me` under `./dev start`)",
    )
    log_level: str = setting(
        "LOG_LEVEL",
        "INFO",
        "least severe log level written: DEBUG, INFO, WARNING or ERROR",
        _upper,
    )
    clock_shift_file: Path | None = setting(
        "CLOCK_SHIFT_FILE",
        None,
        "test hook: a file holding a shift in ms added to every process's clock",
        _optional_path,
        shown_default="unset",
    )

    @property
    def watermark_slack_ms(self) -> int:
        """How long after its receipt an event may still be appended to Kafka.

        The collector gives up on an acknowledgement after produce_timeout_ms; one more
        second covers the broker's own latency. A day is complete only once every
        partition has applied everything received up to its end plus this slack.
        """
        return self.produce_timeout_ms + 1000

    def clock(self) -> Clock:
        return Clock(self.clock_shift_file)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from environment variables, failing loudly with the variable's name."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for each in fields(cls):
            variable = each.metadata["variable"]
            if variable in env:
                values[each.name] = each.metadata["read"](variable, env[variable])
        settings = cls(**values)
        settings.check()
        return settings

    @classmethod
    def documented(cls) -> Iterator[SettingDoc]:
        """Each setting's variable, default (as written in docs) and meaning, in order."""
        for each in fields(cls):
            about = each.metadata
            default = about["shown"] or f"`{_as_written(each.default)}`"
            yield SettingDoc(about["variable"], default, about["meaning"])

    def check(self) -> None:
        """Refuse values that cannot work, naming the setting."""
        if is_cluster_url(self.redis_url):
            try:
                cluster_seeds(self.redis_url)
            except ValueError as error:
                raise SettingsError(f"REDIS_URL: {error}") from None
        elif not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                "REDIS_URL must start with redis:// (one server) or redis+cluster:// "
                f"(a Redis Cluster), got {self.redis_url!r}"
            )
        if not self.database_url.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise SettingsError(
                "DATABASE_URL must be sqlite:///PATH or postgresql://..., "
                f"got {self.database_url!r}"
            )
        if not all(":" in server for server in self.kafka_bootstrap.split(",")):
            raise SettingsError(
                f"KAFKA_BOOTSTRAP must be host:port[,host:port], got {self.kafka_bootstrap!r}"
            )
        if not self.usage_topic or not all(c.isalnum() or c in "._-" for c in self.usage_topic):
            raise SettingsError(
                f"USAGE_TOPIC is not a valid Kafka topic name: {self.usage_topic!r}"
            )
        # Braces would change the hash tag; glob characters would widen the SCANs by prefix.
        if any(c in self.redis_key_prefix for c in "{}*?[]\\") or not self.redis_key_prefix:
            raise SettingsError("REDIS_KEY_PREFIX must be non-empty and free of { } * ? [ ] \\")
        if self.topic_partitions < 1:
            raise SettingsError("USAGE_TOPIC_PARTITIONS must be at least 1")
        if self.produce_timeout_ms < 100:
            raise SettingsError("PRODUCE_TIMEOUT_MS must be at least 100")
        if self.max_pending_events < 1000:
            raise SettingsError("MAX_PENDING_EVENTS must be at least 1000 (a full batch)")
        if self.flusher_interval_ms < 100:
            raise SettingsError("FLUSHER_INTERVAL_MS must be at least 100")
        if self.flush_fsync_wait_ms < 0:
            raise SettingsError("FLUSH_FSYNC_WAIT_MS must not be negative")
        if any(len(key) < MIN_KEY_CHARS for key in self.ops_keys):
            raise SettingsError(f"OPS_KEY: every key must have at least {MIN_KEY_CHARS} characters")
        if self.dedup_window_s < 48 * 3600:
            raise SettingsError("DEDUP_WINDOW_S must be at least 172800 (48 hours)")
        if self.log_level not in LOG_LEVELS:
            raise SettingsError(
                f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}"
            )


def _as_written(value: object) -> str:
    """Show a default as one would set it in the environment."""
    return ",".join(value) if isinstance(value, tuple) else str(value)
