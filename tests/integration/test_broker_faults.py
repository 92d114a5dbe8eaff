"""A Kafka broker of the test's own stopped, killed, restarted and paused under sustained load.

Each time the collector must answer 2xx again within 10 s of the broker accepting writes,
without being restarted, and the durable counts must equal the acknowledged events exactly.
The clients do what the contract asks of careful clients: every event has an id, and a
batch answered 503 is sent again, same ids, until accepted.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from common.topics import ensure_topic
from load.traffic import Ledger, Sender, TrafficShape
from stack import kafka
from stack.processes import is_alive
from stack.servers import STACK_HOME
from tests.support import ACME_SERVER_KEY, Pipeline, finish_and_check, free_port

pytestmark = pytest.mark.e2e

SHAPE = TrafficShape(accounts=200, users_per_account=20, seed=5)
RECOVERY_S = 10  # the collector answers 2xx within this long after the broker accepts writes
CLIENTS = 4
BATCH_EVENTS = 20
PROBE_TOPIC = "broker-probe"


@dataclass
class Broker:
    """A single-node KRaft broker the test may stop, kill and pause."""

    home: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return int((self.home / "kafka.pid").read_text())

    async def start(self) -> None:
        libs = STACK_HOME / "kafka" / "libs"
        await asyncio.to_thread(kafka.start, self.home, self.port, self.controller_port, libs)

    async def stop(self, sig: signal.Signals) -> None:
        """SIGTERM: a clean shutdown, waited for; SIGKILL: gone at once, logs unflushed."""
        if sig == signal.SIGTERM:
            await asyncio.to_thread(kafka.stop_server, self.home)
            return
        pid = self.pid
        os.kill(pid, sig)
        for _ in range(600):
            if not is_alive(pid):
                break
            await asyncio.sleep(0.05)
        (self.home / "kafka.pid").unlink()

    async def accepting_writes(self) -> None:
        """Return once a fresh producer of the test's own has a write acknowledged."""
        while True:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
            try:
                async with asyncio.timeout(2):
                    await producer.start()
                    await producer.send_and_wait(PROBE_TOPIC, b"probe")
                return
            except (KafkaError, TimeoutError):
                await asyncio.sleep(0.1)
            finally:
                await producer.stop()


class Load:
    """Clients posting batches with event_ids, each retrying a 503 until accepted."""

    def __init__(self, sender: Sender, prefix: str) -> None:
        self.sender = sender
        self.prefix = prefix
        self.events = SHAPE.events(10**8, prefix)
        self.ids = itertools.count()
        self.stopping = asyncio.Event()
        self.clients: list[asyncio.Task[None]] = []

    def batch(self, size: int = BATCH_EVENTS) -> list[dict[str, Any]]:
        return [
            {**next(self.events), "event_id": f"{self.prefix}-{next(self.ids)}"}
            for _ in range(size)
        ]

    async def client(self) -> None:
        while not self.stopping.is_set():
            assert await self.sender.post_until_accepted(self.batch(), attempts=400, pause_s=0.2)
            await asyncio.sleep(0.05)

    def start(self) -> None:
        self.clients = [asyncio.create_task(self.client()) for _ in range(CLIENTS)]

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.gather(*self.clients)


async def readiness(session: aiohttp.ClientSession, pipeline: Pipeline) -> tuple[int, Any]:
    async with session.get(f"{pipeline.collector_url}/readyz") as response:
        return response.status, await response.json()


async def outage(
    broker: Broker, load: Load, session: aiohttp.ClientSession, pipeline: Pipeline,
    sig: signal.Signals, down_s: float,
) -> dict[str, Any]:  # fmt: skip
    """Take the broker away for down_s, bring it back, time the collector's recovery."""
    if sig == signal.SIGSTOP:
        os.kill(broker.pid, signal.SIGSTOP)
    else:
        await broker.stop(sig)
    await asyncio.sleep(down_s)
    readiness_while_down = await readiness(session, pipeline) if down_s >= 3 else None
    if sig == signal.SIGSTOP:
        os.kill(broker.pid, signal.SIGCONT)
    else:
        await broker.start()
    await broker.accepting_writes()
    accepting = time.monotonic()
    for _ in range(10 * RECOVERY_S):
        if await load.sender.post(load.batch(1)) == 202:
            break
        await asyncio.sleep(0.1)
    recovery_s = time.monotonic() - accepting
    assert recovery_s <= RECOVERY_S, f"{sig.name} {down_s} s: 2xx again after {recovery_s:.1f} s"
    if readiness_while_down is not None:
        status, body = readiness_while_down
        assert status == 503
        assert body["status"] == "unavailable"
        assert "Kafka" in body["reason"]
    return {"fault": f"{sig.name} {down_s} s", "recovery_s": round(recovery_s, 2)}


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    started = Broker(tmp_path / "kafka-home")
    await started.start()
    try:
        yield started
    finally:
        if (started.home / "kafka.pid").exists():
            os.kill(started.pid, signal.SIGCONT)
        await asyncio.to_thread(kafka.stop_server, started.home)


SCENARIOS = {
    # Short stops heal inside aiokafka; long ones (past the 10 s produce timeout, with
    # requests in flight) used to leave the idempotent producer stuck for good.
    "stopped and killed, short and past the produce timeout": (
        [(signal.SIGTERM, 3), (signal.SIGKILL, 3), (signal.SIGTERM, 25), (signal.SIGKILL, 25)],
        2.0,
    ),
    "three restarts 10 s apart": ([(signal.SIGKILL, 0), (signal.SIGTERM, 0), (signal.SIGKILL, 0)], 10.0),
    "paused 15 s": ([(signal.SIGSTOP, 15)], 2.0),
}  # fmt: skip


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_collector_recovers_from_broker_faults(
    pipeline: Pipeline, broker: Broker, scenario: str
) -> None:
    faults, between_s = SCENARIOS[scenario]
    pipeline.overrides["KAFKA_BOOTSTRAP"] = broker.bootstrap
    await ensure_topic(broker.bootstrap, PROBE_TOPIC, 1)
    await pipeline.create_topic()
    await pipeline.start_collector()
    pipeline.start_aggregator()
    collector = pipeline.processes["collector"]
    ledger = Ledger()
    recoveries = []
    async with aiohttp.ClientSession() as session:
        load = Load(Sender(session, pipeline.collector_url, ACME_SERVER_KEY, ledger), "bf")
        load.start()
        try:
            for sig, down_s in faults:
                await asyncio.sleep(between_s)
                recoveries.append(await outage(broker, load, session, pipeline, sig, down_s))
            await asyncio.sleep(1)
        finally:
            await load.stop()
    assert collector.poll() is None  # never restarted
    assert ledger.statuses[503] > 0
    # aiokafka logs each reconnection attempt; the collector's own lines say why, once.
    own_lines = [line for line in pipeline.log("collector").splitlines() if " collector." in line]
    assert len(own_lines) < 8 * len(faults), "\n".join(own_lines)
    await finish_and_check(pipeline, ledger, f"kafka broker: {scenario}", outages=recoveries)
