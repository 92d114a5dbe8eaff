"""Process settings, read from the environment once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.clock import Clock
from common.redis_client import cluster_seeds, is_cluster_url

MIN_KEY_CHARS = 16


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:9092"
    # redis://host:port/db is one server; redis+cluster://host:port,host:port,... a Redis
    # Cluster (any listed node that answers is enough). See common/redis_client.py.
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "sqlite:///data/usage.db"
    services_file: Path = Path("services.toml")
    usage_topic: str = "usage-events"
    topic_partitions: int = 12
    consumer_group: str = "usage-aggregator"
    redis_key_prefix: str = "usage"
    produce_timeout_ms: int = 10_000
    dedup_window_s: int = 72 * 3600
    flush_fsync_wait_ms: int = 2500
    flusher_interval_ms: int = 2000
    clock_shift_file: Path | None = None
    metrics_port: int = 0
    ops_keys: tuple[str, ...] = ()

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
        defaults = cls()
        settings = cls(
            kafka_bootstrap=_text(env, "KAFKA_BOOTSTRAP", defaults.kafka_bootstrap),
            redis_url=_text(env, "REDIS_URL", defaults.redis_url),
            database_url=_text(env, "DATABASE_URL", defaults.database_url),
            services_file=Path(_text(env, "SERVICES_FILE", str(defaults.services_file))),
            usage_topic=_text(env, "USAGE_TOPIC", defaults.usage_topic),
            topic_partitions=_integer(env, "USAGE_TOPIC_PARTITIONS", defaults.topic_partitions),
            consumer_group=_text(env, "CONSUMER_GROUP", defaults.consumer_group),
            redis_key_prefix=_text(env, "REDIS_KEY_PREFIX", defaults.redis_key_prefix),
            produce_timeout_ms=_integer(env, "PRODUCE_TIMEOUT_MS", defaults.produce_timeout_ms),
            dedup_window_s=_integer(env, "DEDUP_WINDOW_S", defaults.dedup_window_s),
            flush_fsync_wait_ms=_integer(env, "FLUSH_FSYNC_WAIT_MS", defaults.flush_fsync_wait_ms),
            flusher_interval_ms=_integer(env, "FLUSHER_INTERVAL_MS", defaults.flusher_interval_ms),
            metrics_port=_integer(env, "METRICS_PORT", defaults.metrics_port),
            clock_shift_file=Path(env["CLOCK_SHIFT_FILE"]) if env.get("CLOCK_SHIFT_FILE") else None,
            ops_keys=_keys(env, "OPS_KEY"),
        )
        settings.check()
        return settings

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
        if self.flusher_interval_ms < 100:
            raise SettingsError("FLUSHER_INTERVAL_MS must be at least 100")
        if self.flush_fsync_wait_ms < 0:
            raise SettingsError("FLUSH_FSYNC_WAIT_MS must not be negative")
        if any(len(key) < MIN_KEY_CHARS for key in self.ops_keys):
            raise SettingsError(f"OPS_KEY: every key must have at least {MIN_KEY_CHARS} characters")
        if self.dedup_window_s < 48 * 3600:
            raise SettingsError("DEDUP_WINDOW_S must be at least 172800 (48 hours)")


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, default).strip()
    if not value:
        raise SettingsError(f"{name} is set but empty")
    return value


def _integer(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None


def _keys(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Read one key, or two separated by a comma during a rotation."""
    return tuple(key.strip() for key in env.get(name, "").split(",") if key.strip())
