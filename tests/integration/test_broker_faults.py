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
from collections.abc import Iterator
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
LIBS = STACK_HOME / "kafka" / "libs"


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
        await asyncio.to_thread(kafka.start, self.home, self.port, self.controller_port, LIBS)

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


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One broker for the module: a JVM takes long to start on a busy machine."""
    started = Broker(tmp_path_factory.mktemp("broker") / "kafka-home")
    kafka.start(started.home, started.port, started.controller_port, LIBS)
    try:
        yield started
    finally:
        if (started.home / "kafka.pid").exists():
            os.kill(started.pid, signal.SIGCONT)
        kafka.stop_server(started.home)


# Three restarts 10 s apart (stopped and killed for a few seconds), then outages past the
# 10 s produce timeout, with requests in flight: those used to leave aiokafka's idempotent
# producer refused by the broker for good (OutOfOrderSequenceNumber); then a pause.
FAULTS = [
    (signal.SIGTERM, 3, 10.0),
    (signal.SIGKILL, 3, 10.0),
    (signal.SIGKILL, 3, 2.0),
    (signal.SIGTERM, 25, 2.0),
    (signal.SIGKILL, 25, 2.0),
    (signal.SIGSTOP, 15, 2.0),
]


@pytest.mark.timeout(1200)
async def test_collector_recovers_from_broker_faults(pipeline: Pipeline, broker: Broker) -> None:
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
            await asyncio.sleep(2)
            await pipeline.drain()  # the aggregator is up before the broker goes away
            for sig, down_s, after_s in FAULTS:
                recoveries.append(await outage(broker, load, session, pipeline, sig, down_s))
                await asyncio.sleep(after_s)
        finally:
            await load.stop()
    assert collector.poll() is None  # never restarted
    assert ledger.statuses[503] > 0
    # aiokafka logs each reconnection attempt; the collector's own lines say why, once.
    own_lines = [line for line in pipeline.log("collector").splitlines() if " collector." in line]
    assert len(own_lines) < 8 * len(FAULTS), "\n".join(own_lines)
    await finish_and_check(pipeline, ledger, "kafka broker faults", outages=recoveries)


def resident_mb(pid: int) -> float:
    """The process's resident memory (VmRSS) in MB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmRSS for process {pid}")


async def metric(session: aiohttp.ClientSession, pipeline: Pipeline, name: str) -> float:
    async with session.get(f"{pipeline.collector_url}/metrics") as response:
        text = await response.text()
    [value] = [line.split()[-1] for line in text.splitlines() if line.startswith(f"{name} ")]
    return float(value)


OVERLOAD_CLIENTS = 30
OVERLOAD_BATCH = 1000
MAX_COLLECTOR_RSS_MB = 150


async def test_a_paused_broker_fills_the_bound_then_requests_are_refused_at_once(
    pipeline: Pipeline, broker: Broker
) -> None:
    """More clients than the bound on events awaiting acks (MAX_PENDING_EVENTS, 10 000 by
    default): the first 10 batches of 1000 wait, the other 20 get 503 at once."""
    bound = pipeline.settings.max_pending_events
    held = bound // OVERLOAD_BATCH
    pipeline.overrides["KAFKA_BOOTSTRAP"] = broker.bootstrap
    await ensure_topic(broker.bootstrap, PROBE_TOPIC, 1)
    await pipeline.create_topic()
    await pipeline.start_collector()
    collector = pipeline.processes["collector"]
    ledger = Ledger()
    connector = aiohttp.TCPConnector(limit=OVERLOAD_CLIENTS + 5)
    async with aiohttp.ClientSession(connector=connector) as session:
        load = Load(Sender(session, pipeline.collector_url, ACME_SERVER_KEY, ledger), "ov")
        batches = [load.batch(OVERLOAD_BATCH) for _ in range(OVERLOAD_CLIENTS)]
        # Every client connects first, so that all the batches arrive while the
        # collector still believes the broker reachable (its probe gives up after 1 s).
        warm = await asyncio.gather(*(load.sender.post(load.batch(1)) for _ in batches))
        assert set(warm) == {202}
        idle_mb = resident_mb(collector.pid)
        os.kill(broker.pid, signal.SIGSTOP)
        posts = [asyncio.create_task(post_batch(session, pipeline, batch)) for batch in batches]
        refused = []
        for answered in asyncio.as_completed(posts):
            refused.append(await answered)
            if len(refused) == OVERLOAD_CLIENTS - held:
                break
        awaiting = await metric(session, pipeline, "usage_collector_events_awaiting_ack")
        refusals = await metric(session, pipeline, "usage_collector_overload_refusals_total")
        loaded_mb = resident_mb(collector.pid)
        still_waiting = sum(not post.done() for post in posts)
        os.kill(broker.pid, signal.SIGCONT)
        late = await asyncio.gather(*posts)
        await broker.accepting_writes()
        for _ in range(10 * RECOVERY_S):
            if await load.sender.post(load.batch(1)) == 202:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("no 2xx within 10 s of the broker accepting writes again")
    assert (awaiting, refusals, still_waiting) == (bound, OVERLOAD_CLIENTS - held, held)
    assert refused == [(503, "5")] * (OVERLOAD_CLIENTS - held)
    assert {status for status, _ in late} <= {202, 503}
    assert loaded_mb < MAX_COLLECTOR_RSS_MB, f"{idle_mb:.0f} MB idle, {loaded_mb:.0f} MB held"
    print(f"collector RSS {idle_mb:.0f} MB idle, {loaded_mb:.0f} MB holding {bound} events")


async def post_batch(
    session: aiohttp.ClientSession, pipeline: Pipeline, batch: list[dict[str, Any]]
) -> tuple[int, str | None]:
    """Post once; the status and the Retry-After header."""
    async with session.post(
        f"{pipeline.collector_url}/v1/events",
        json={"batch": batch},
        headers={"Authorization": f"Bearer {ACME_SERVER_KEY}"},
    ) as response:
        await response.read()
        return response.status, response.headers.get("Retry-After")
