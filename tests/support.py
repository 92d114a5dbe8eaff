"""Real processes for integration tests: each test gets its own topic, keys, group and DB."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from redis import Redis as SyncRedis
from redis.exceptions import BusyLoadingError, RedisError

from common.events import UsageEvent
from common.keys import KeyLayout
from common.redis_client import connect
from common.settings import Settings
from common.topics import ensure_topic
from common.wire import from_wire
from load.traffic import CountKey, Ledger
from stack.processes import wait_for_port
from stack.redis import unlink_matching
from stack.servers import PROJECT_ROOT

SERVICES_TOML = """
[[service]]
id = "SP-ACME"
timezone = "UTC"
server_key = "acme-server-key-0123456789"
read_key = "acme-read-key-0123456789"
allowed_origins = ["http://127.0.0.1:9999"]
max_modules = 5
max_activities = 20
public_rate_limit_per_s = 0

[[service]]
id = "SP-OTHER"
timezone = "America/New_York"
server_key = ["other-server-key-0123456789", "other-server-key-rotated-01"]
read_key = "other-read-key-0123456789"

[[service]]
id = "SP-LIMITED"
timezone = "UTC"
server_key = "limited-server-key-0123456789"
read_key = "limited-read-key-0123456789"
allowed_origins = ["http://127.0.0.1:9999"]
public_rate_limit_per_s = 1
server_rate_limit_per_s = 1
"""
ACME_SERVER_KEY = "acme-server-key-0123456789"
ACME_READ_KEY = "acme-read-key-0123456789"
OTHER_SERVER_KEY = "other-server-key-0123456789"
OTHER_READ_KEY = "other-read-key-0123456789"
OTHER_SERVER_KEY_ROTATED = "other-server-key-rotated-01"
LIMITED_SERVER_KEY = "limited-server-key-0123456789"
OPERATOR_KEY = "operator-key-0123456789"
PARTITIONS = 4
TODAY = datetime.now(UTC).date().isoformat()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Pipeline:
    """One isolated copy of the system: its own topic, Redis prefix, group and SQLite file."""

    workdir: Path
    name: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    collector_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)

    database_url: str = ""

    def __post_init__(self) -> None:
        self.services_file = self.workdir / "services.toml"
        self.services_file.write_text(
            SERVICES_TOML.replace(
                '"http://127.0.0.1:9999"', f'"http://127.0.0.1:{self.collector_port}"'
            )
        )
        self.database_url = self.database_url or f"sqlite:///{self.workdir / 'usage.db'}"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "USAGE_TOPIC": self.name,
            "USAGE_TOPIC_PARTITIONS": str(PARTITIONS),
            "REDIS_KEY_PREFIX": self.name,
            "CONSUMER_GROUP": self.name,
            "DATABASE_URL": self.database_url,
            "SERVICES_FILE": str(self.services_file),
            "OPS_KEY": OPERATOR_KEY,
            "PYTHONUNBUFFERED": "1",
            **self.overrides,
        }

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    @property
    def keys(self) -> KeyLayout:
        return KeyLayout(self.name, self.name)

    @property
    def collector_url(self) -> str:
        return f"http://127.0.0.1:{self.collector_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    async def create_topic(self) -> None:
        await ensure_topic(self.settings.kafka_bootstrap, self.name, PARTITIONS)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start python -m <args> as process name, logging into the work dir."""
        with (self.workdir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", *args],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes[name] = process
        return process

    async def start_collector(self) -> None:
        self.start("collector", "collector", "--port", str(self.collector_port))
        await wait_http(f"{self.collector_url}/healthz", self.processes["collector"])

    async def start_api(self) -> None:
        self.start("api", "rollup", "serve", "--port", str(self.api_port))
        await wait_http(f"{self.api_url}/healthz", self.processes["api"])

    async def start_all(self) -> None:
        """The collector, one aggregator and the query API."""
        await self.start_collector()
        self.start_aggregator()
        await self.start_api()

    def start_aggregator(self, name: str = "aggregator") -> subprocess.Popen[bytes]:
        return self.start(name, "aggregator")

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout_s: float = 30) -> int:
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(sig)
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def flush(self, day: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run `python -m rollup flush --force` for SP-ACME's day."""
        return self.run_command(
            "rollup", "flush", "--service", "SP-ACME", "--day", day, "--force", env=env
        )

    def durable_counts(self, service_id: str | None = None) -> Counter[CountKey]:
        return durable_counts(self.database_url, service_id)

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text()

    def run_command(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", *args],
            cwd=PROJECT_ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )

    async def end_offsets(self) -> dict[int, int]:
        """Return each partition's log end offset."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap)
        await consumer.start()
        try:
            partitions = [TopicPartition(self.name, p) for p in range(PARTITIONS)]
            ends = await consumer.end_offsets(partitions)
            return {tp.partition: offset for tp, offset in ends.items()}
        finally:
            await consumer.stop()

    async def topic_events(self) -> list[UsageEvent]:
        """Read every record on the topic and return the events they hold, in offset order.

        A record holds the events of several requests (one partition's), so records are
        not events: count these.
        """
        ends = await self.end_offsets()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap, enable_auto_commit=False
        )
        await consumer.start()
        events: list[UsageEvent] = []
        try:
            partitions = [TopicPartition(self.name, p) for p in range(PARTITIONS)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            for tp in partitions:
                while await consumer.position(tp) < ends[tp.partition]:
                    batch = await consumer.getmany(tp, timeout_ms=1000)
                    for record in batch.get(tp, []):
                        assert record.value is not None
                        events.extend(from_wire(record.value))
            return events
        finally:
            await consumer.stop()

    async def applied_offsets(self) -> dict[int, int]:
        """Return each partition's offset stored with the counts in Redis (-1 when none)."""
        redis = connect(self.settings.redis_url)
        try:
            applied = {}
            for partition in range(PARTITIONS):
                value = await redis.hget(self.keys.applied(partition), "offset")
                applied[partition] = int(value) if value is not None else -1
            return applied
        finally:
            await redis.aclose()

    async def drain(self, timeout_s: float = 60) -> None:
        """Wait until every record in Kafka has been applied to Redis."""
        deadline = time.monotonic() + timeout_s
        while True:
            ends = await self.end_offsets()
            applied = await self.applied_offsets()
            if all(applied[p] + 1 >= ends[p] for p in ends):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"not drained: applied {applied}, log ends {ends}")
            await asyncio.sleep(0.2)

    async def delete_redis_keys(self) -> None:
        """Remove this test's keys (dedup markers would otherwise live for days)."""
        redis = connect(self.settings.redis_url)
        try:
            await redis.ping()
        except RedisError:
            await redis.aclose()
            return  # the test's own Redis is gone already
        try:
            await unlink_matching(redis, f"{self.name}:*")
        finally:
            await redis.aclose()

    async def redis_keys(self) -> list[str]:
        redis = connect(self.settings.redis_url, decode_responses=True)
        try:
            return sorted(
                [key async for key in redis.scan_iter(match=f"{self.name}:*", count=5000)]
            )
        finally:
            await redis.aclose()


async def wait_http(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Wait until url answers 200, failing early if the process died."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"process exited with {process.returncode} before {url} answered"
                )
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


async def get_json(
    session: aiohttp.ClientSession, url: str, key: str, params: Mapping[str, str] | None = None
) -> tuple[int, Any]:
    async with session.get(url, params=params, headers={"Authorization": f"Bearer {key}"}) as r:
        return r.status, await r.json()


DURABLE_COUNTS = (
    "SELECT account_id, user_id, module, activity, SUM(count) FROM daily_counts "
    "WHERE service_id = coalesce({}, service_id) GROUP BY account_id, user_id, module, activity"
)


def durable_counts(database_url: str, service_id: str | None = None) -> Counter[CountKey]:
    """Read the durable per-day counts straight from the database, summed over days."""
    if database_url.startswith("postgresql://"):
        # Its own event loop in a thread: callers are sync, and often inside a test's loop.
        with ThreadPoolExecutor(1) as thread:
            rows = thread.submit(asyncio.run, _postgresql_counts(database_url, service_id))
            return rows.result()
    path = database_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        found = connection.execute(DURABLE_COUNTS.format("?"), (service_id,)).fetchall()
    return Counter({(a, u, m, v): int(n) for a, u, m, v, n in found})


async def _postgresql_counts(database_url: str, service_id: str | None) -> Counter[CountKey]:
    connection = await asyncpg.connect(database_url)
    try:
        found = await connection.fetch(DURABLE_COUNTS.format("$1::varchar"), service_id)
    finally:
        await connection.close()
    return Counter({(a, u, m, v): int(n) for a, u, m, v, n in found})


def start_redis(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """Start a Redis of the test's own, with AOF in workdir, so a test may kill it."""
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "redis.log").open("ab") as log:
        process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_for_port("127.0.0.1", port, timeout_s=20, pid=process.pid)
    wait_until_loaded(port)
    return process


def wait_until_loaded(port: int, timeout_s: float = 20) -> None:
    """Wait until Redis has read its AOF: until then it answers LOADING to every command."""
    deadline = time.monotonic() + timeout_s
    with SyncRedis(port=port) as client:
        while True:
            try:
                client.ping()
                return
            except BusyLoadingError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def record(test: str, ledger: Ledger, counted: int, **extra: Any) -> None:
    """Keep the figures of each fault test for the report (artifacts/, not committed)."""
    out = PROJECT_ROOT / "artifacts" / "fault-tests.jsonl"
    out.parent.mkdir(exist_ok=True)
    line = {
        "test": test, "events_sent": ledger.sent_events,
        "events_acknowledged": ledger.acknowledged_events, "count_acknowledged": ledger.total,
        "count_durable": counted, "statuses": dict(ledger.statuses), **extra,
    }  # fmt: skip
    with out.open("a") as handle:
        handle.write(json.dumps(line) + "\n")


async def finish_and_check(pipeline: Pipeline, ledger: Ledger, test: str, **extra: Any) -> None:
    """Drain, flush today and check the durable counts equal the acknowledged ones exactly."""
    await pipeline.drain(timeout_s=120)
    flush = pipeline.flush(TODAY)
    assert flush.returncode == 0, flush.stderr
    durable = pipeline.durable_counts()
    record(test, ledger, sum(durable.values()), **extra)
    assert ledger.acknowledged_events > 0
    assert durable == ledger.expected
