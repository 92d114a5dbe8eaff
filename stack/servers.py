"""Kafka and Redis for development and tests: start them once, reuse them when running."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiokafka.errors import KafkaError

from common.topics import ensure_topic
from stack import clusters, kafka, postgres, redis

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STACK_HOME = PROJECT_ROOT / ".stack"


def start_servers(
    home: Path = STACK_HOME, with_redis: bool = True, with_kafka: bool = True
) -> list[str]:
    """Start whichever of Redis and Kafka is not running; return the names started."""
    home.mkdir(parents=True, exist_ok=True)
    started = []
    if with_redis and not redis.is_running(home):
        redis.start(home)
        started.append("redis")
    if with_kafka and not kafka.is_running(home):
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


def start_clusters(
    redis_cluster: bool, kafka_brokers: int, home: Path = STACK_HOME
) -> dict[str, str]:
    """Start the Redis Cluster and/or the multi-broker Kafka; return the settings that name them."""
    settings = {}
    cluster_home = home / "cluster"
    if redis_cluster:
        nodes = clusters.redis_nodes(
            cluster_home, clusters.REDIS_CLUSTER_PORTS, clusters.REDIS_CLUSTER_BUS_PORTS
        )
        settings["REDIS_URL"] = clusters.start_redis_cluster(nodes)
    if kafka_brokers > 1:
        if kafka_brokers != len(clusters.KAFKA_CLUSTER_PORTS):
            raise ValueError(f"--kafka-brokers: 1 or {len(clusters.KAFKA_CLUSTER_PORTS)}")
        libs = home / "kafka" / "libs"
        kafka.fetch_jars(libs)
        brokers = clusters.brokers(
            cluster_home, clusters.KAFKA_CLUSTER_PORTS, clusters.KAFKA_CLUSTER_CONTROLLER_PORTS
        )
        settings["KAFKA_BOOTSTRAP"] = clusters.start_kafka_cluster(brokers, libs)
    return settings


def stop_clusters(home: Path = STACK_HOME) -> None:
    """Stop whatever start_clusters started."""
    cluster_home = home / "cluster"
    clusters.stop_kafka_cluster(
        clusters.brokers(
            cluster_home, clusters.KAFKA_CLUSTER_PORTS, clusters.KAFKA_CLUSTER_CONTROLLER_PORTS
        )
    )
    clusters.stop_redis_cluster(
        clusters.redis_nodes(
            cluster_home, clusters.REDIS_CLUSTER_PORTS, clusters.REDIS_CLUSTER_BUS_PORTS
        )
    )
