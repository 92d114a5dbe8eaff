"""Kafka and Redis for development and tests: start them once, reuse them when running."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiokafka.errors import KafkaError

from common.topics import ensure_topic
from stack import kafka, postgres, redis

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STACK_HOME = PROJECT_ROOT / ".stack"


def start_servers(home: Path = STACK_HOME) -> list[str]:
    """Start whichever of Redis and Kafka is not running; return the names started."""
    home.mkdir(parents=True, exist_ok=True)
    started = []
    if not redis.is_running(home):
        redis.start(home)
        started.append("redis")
    if not kafka.is_running(home):
        kafka.start(home)
        started.append("kafka")
    return started


def stop_servers(home: Path = STACK_HOME, names: list[str] | None = None) -> None:
    """Stop the servers this project started (all of them unless names says which)."""
    if names is None or "kafka" in names:
        kafka.stop_server(home)
    if names is None or "postgres" in names:
        postgres.stop_server(home)
    if names is None or "redis" in names:
        redis.stop_server(home)


def wait_for_kafka(bootstrap: str, topic: str, partitions: int, timeout_s: float = 90) -> None:
    """Wait until the broker answers by creating topic (a no-op when it exists)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            asyncio.run(ensure_topic(bootstrap, topic, partitions))
            return
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
