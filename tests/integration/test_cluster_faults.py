"""Fault tests on a real Redis Cluster (3 primaries, 1 replica each) and a 3-broker Kafka:
under load from several clients, counts stay exact through what those engines do."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from common.redis_client import connect
from load.traffic import Ledger, Sender, with_event_ids
from stack import kafka
from stack.clusters import start_redis_node
from stack.processes import read_pid
from stack.servers import STACK_HOME
from tests.clusters import (
    NODE_TIMEOUT_MS,
    Clusters,
    kill,
    migrate_slot,
    partition_leaders,
    primary_of_slot,
    replica_of,
    restart_broker,
    restart_node,
    slot_of,
    start_clusters,
    stop_all,
    wait_until_served_by_another,
)
from tests.integration.test_faults import SHAPE, mixed_load, send
from tests.support import ACME_SERVER_KEY, PARTITIONS, TODAY, Pipeline, finish_and_check, record

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

CLIENTS = 4
EVENTS = 16_000  # over all clients


class TimedSender(Sender):
    """A Sender that also remembers its slowest answer."""

    slowest_s = 0.0

    async def post(self, batch: Sequence[dict[str, Any]], timeout_s: float = 30) -> int:
        started = time.monotonic()
        status = await super().post(batch, timeout_s)
        self.slowest_s = max(self.slowest_s, time.monotonic() - started)
        return status


@pytest.fixture(scope="session")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clusters]:
    """The session's own clusters, on ports nothing else uses; stopped at the end."""
    libs = STACK_HOME / "kafka" / "libs"
    kafka.fetch_jars(libs)
    started = start_clusters(tmp_path_factory.mktemp("clusters"), libs)
    try:
        yield started
    finally:
        stop_all(started)


@pytest.fixture
async def pipeline_on_clusters(engines: Clusters, tmp_path: Path) -> AsyncIterator[Pipeline]:
    created = Pipeline(
        tmp_path,
        overrides={"REDIS_URL": engines.redis_url, "KAFKA_BOOTSTRAP": engines.kafka_bootstrap},
    )
    await created.create_topic()
    try:
        yield created
    finally:
        created.stop_all()
        await created.delete_redis_keys()


async def load_from_clients(
    pipeline: Pipeline,
    prefix: str,
    fault: Callable[[asyncio.Task[None]], Awaitable[dict[str, Any]]],
    plain: bool = True,
) -> tuple[Ledger, list[TimedSender], dict[str, Any]]:
    """CLIENTS clients send at once (those with event_ids retry 503s) while fault runs."""
    ledger = Ledger()
    async with aiohttp.ClientSession() as session:
        senders = [
            TimedSender(session, pipeline.collector_url, ACME_SERVER_KEY, ledger)
            for _ in range(CLIENTS)
        ]
        loads = []
        for number, sender in enumerate(senders):
            client_prefix = f"{prefix}{number}"
            if plain:
                events, with_ids = mixed_load(EVENTS // CLIENTS, client_prefix)
            else:
                events = []
                with_ids = with_event_ids(
                    [
                        {**e, "account_id": f"{client_prefix}{e['account_id']}"}
                        for e in SHAPE.events(EVENTS // CLIENTS)
                    ],
                    client_prefix,
                )
            loads.append(send(sender, events, with_ids, resend_ids=plain))

        async def everyone() -> None:
            await asyncio.gather(*loads)

        load = asyncio.create_task(everyone())
        extra = await fault(load)
        await load
    return ledger, senders, extra


async def wait_until_counting(pipeline: Pipeline, timeout_s: float = 90) -> None:
    """Wait until the aggregator has applied batches of every partition (it starts slowly)."""
    deadline = time.monotonic() + timeout_s
    while min((await pipeline.applied_offsets()).values()) < 0:
        assert time.monotonic() < deadline, "the aggregator applied nothing"
        await asyncio.sleep(0.2)


def offsets_gone_back(log: str, partition: int) -> list[tuple[int, int]]:
    """(held, expected) of each time the aggregator found an older offset of partition."""
    pattern = rf"partition {partition}: Redis holds offset (-?\d+), expected (\d+)"
    found = [(int(held), int(expected)) for held, expected in re.findall(pattern, log)]
    return [(held, expected) for held, expected in found if held < expected]


async def test_redis_primary_killed_and_a_replica_that_missed_writes_promoted(
    pipeline_on_clusters: Pipeline, engines: Clusters
) -> None:
    pipeline = pipeline_on_clusters
    await pipeline.start_collector()
    pipeline.start_aggregator()
    slot = slot_of(pipeline.keys.applied(0))

    async def fail_over(load: asyncio.Task[None]) -> dict[str, Any]:
        await wait_until_counting(pipeline)
        primary, primary_id = primary_of_slot(engines, slot)
        replica = replica_of(engines, primary_id)
        # The replica stalls, so it misses the primary's last writes; it is then killed and
        # started again from its own AOF, and promoted: counts and offsets of the missed
        # batches are gone together.
        os.kill(read_pid(replica.pid_file) or 0, signal.SIGSTOP)
        before = (await pipeline.applied_offsets())[0]
        await asyncio.sleep(2)
        at_kill = (await pipeline.applied_offsets())[0]
        kill(primary.pid_file)
        kill(replica.pid_file)
        start_redis_node(replica, NODE_TIMEOUT_MS)
        promoted = await asyncio.to_thread(wait_until_served_by_another, engines, slot, primary)
        await asyncio.to_thread(restart_node, engines, primary)  # rejoins as a replica
        assert promoted == replica
        assert at_kill > before  # the primary applied batches the replica never saw
        return {"offset_at_replica_stall": before, "offset_at_kill": at_kill}

    ledger, _, extra = await load_from_clients(pipeline, "p", fail_over)
    await finish_and_check(
        pipeline, ledger, "cluster: redis primary kill -9, stale replica", **extra
    )
    gone_back = offsets_gone_back(pipeline.log("aggregator"), partition=0)
    assert any(held < extra["offset_at_kill"] for held, _ in gone_back), gone_back


async def test_hash_slots_migrate_between_primaries_under_load(
    pipeline_on_clusters: Pipeline, engines: Clusters
) -> None:
    pipeline = pipeline_on_clusters
    await pipeline.start_collector()
    pipeline.start_aggregator()

    async def migrate(load: asyncio.Task[None]) -> dict[str, Any]:
        await wait_until_counting(pipeline)
        await asyncio.sleep(1)
        keys_moved = 0
        for partition in range(PARTITIONS):
            slot = slot_of(pipeline.keys.applied(partition))
            source, _ = primary_of_slot(engines, slot)
            others = {primary_of_slot(engines, s)[0] for s in (0, 6000, 12000)} - {source}
            target = min(others, key=lambda node: node.port)
            keys_moved += await asyncio.to_thread(migrate_slot, source, target, slot, engines)
            assert primary_of_slot(engines, slot)[0] == target
        return {"slots_moved": PARTITIONS, "keys_moved": keys_moved}

    ledger, _, extra = await load_from_clients(pipeline, "m", migrate)
    assert extra["keys_moved"] > 0
    assert all(process.poll() is None for process in pipeline.processes.values())
    await finish_and_check(pipeline, ledger, "cluster: slots migrated under load", **extra)


async def test_day_flushed_while_a_primary_fails_over(
    pipeline_on_clusters: Pipeline, engines: Clusters
) -> None:
    pipeline = pipeline_on_clusters
    await pipeline.start_collector()
    pipeline.start_aggregator()

    async def no_fault(load: asyncio.Task[None]) -> dict[str, Any]:
        return {}

    ledger, _, _ = await load_from_clients(pipeline, "d", no_fault)
    await pipeline.drain(timeout_s=120)
    slot = slot_of(pipeline.keys.staged(0))
    primary, _ = primary_of_slot(engines, slot)
    flush = pipeline.start(
        "flush", "rollup", "flush", "--service", "SP-ACME", "--day", TODAY, "--force"
    )
    # Fail over as soon as the day's buckets are staged: the flush is then mid-way.
    redis = connect(pipeline.settings.redis_url)
    try:
        while flush.poll() is None:
            if await redis.hlen(pipeline.keys.staged(0)):
                break
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()
    kill(primary.pid_file)
    await asyncio.to_thread(wait_until_served_by_another, engines, slot, primary)
    first_exit = await asyncio.to_thread(flush.wait, 120)
    await asyncio.to_thread(restart_node, engines, primary)
    # A flush cut off by the failover is run again, as the flusher's next pass would.
    await finish_and_check(
        pipeline, ledger, "cluster: flush during a redis failover", first_flush_exit=first_exit
    )


async def test_kafka_broker_leading_partitions_killed_under_load(
    pipeline_on_clusters: Pipeline, engines: Clusters
) -> None:
    pipeline = pipeline_on_clusters
    await pipeline.start_collector()
    pipeline.start_aggregator()
    leaders_before = await partition_leaders(engines.kafka_bootstrap, pipeline.name)
    victim = next(b for b in engines.brokers if b.node_id == leaders_before[0])
    led = sorted(p for p, leader in leaders_before.items() if leader == victim.node_id)

    async def kill_leader(load: asyncio.Task[None]) -> dict[str, Any]:
        await wait_until_counting(pipeline)
        kill(victim.pid_file)
        killed_at = time.monotonic()
        survivors = ",".join(f"127.0.0.1:{b.port}" for b in engines.brokers if b != victim)
        while True:  # the controller fences the dead broker and elects new leaders
            await asyncio.sleep(0.5)
            leaders_after = await partition_leaders(survivors, pipeline.name)
            if all(leaders_after[p] not in (victim.node_id, -1) for p in led):
                break
            assert time.monotonic() - killed_at < 60, leaders_after
        return {
            "killed_broker": victim.node_id,
            "partitions_it_led": led,
            "new_leaders_after_s": round(time.monotonic() - killed_at, 1),
        }

    try:
        ledger, senders, extra = await load_from_clients(pipeline, "b", kill_leader, plain=False)
    finally:
        restart_broker(engines, victim)
    slowest_s = max(sender.slowest_s for sender in senders)
    record("cluster: kafka leader kill -9 (timing)", ledger, 0, slowest_answer_s=slowest_s)
    assert ledger.acknowledged_events == EVENTS
    assert ledger.statuses[0] == 0  # every request was answered
    assert slowest_s < pipeline.settings.produce_timeout_ms / 1000 + 2
    await finish_and_check(pipeline, ledger, "cluster: kafka leader kill -9", **extra)
