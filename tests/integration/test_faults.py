"""Fault tests on real processes: whatever crashes, the durable counts equal exactly the
events the collector acknowledged, no more, no less."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from load.traffic import Ledger, Sender, TrafficShape, batches, with_event_ids
from rollup.faults import CRASH_EXIT_CODE, STEPS
from tests.support import (
    ACME_READ_KEY,
    ACME_SERVER_KEY,
    TODAY,
    Pipeline,
    finish_and_check,
    free_port,
    get_json,
    start_redis,
)  # fmt: skip

pytestmark = pytest.mark.e2e

SHAPE = TrafficShape(accounts=300, users_per_account=30, seed=11)


def mixed_load(count: int, prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Events without ids (sent once) and events with ids (retried until accepted)."""
    events = [{**e, "account_id": f"{prefix}{e['account_id']}"} for e in SHAPE.events(count)]
    half = count // 2
    return events[:half], with_event_ids(events[half:], prefix)


async def send(
    sender: Sender,
    plain: Sequence[dict[str, Any]],
    with_ids: Sequence[dict[str, Any]],
    pause_s: float = 0.02,
    resend_ids: bool = True,
) -> None:
    """Send plain batches once and id batches until accepted (then once more, a retry)."""
    plain_batches = list(batches(plain, 100))
    id_batches = list(batches(with_ids, 100))
    for index in range(max(len(plain_batches), len(id_batches))):
        if index < len(plain_batches):
            await sender.post(plain_batches[index])
        if index < len(id_batches):
            assert await sender.post_until_accepted(id_batches[index])
            if resend_ids:
                await sender.post(id_batches[index])
        await asyncio.sleep(pause_s)


async def run_load_while(
    pipeline: Pipeline,
    count: int,
    prefix: str,
    fault: Callable[[asyncio.Task[None]], Awaitable[dict[str, Any]]],
    test: str,
) -> None:
    ledger = Ledger()
    plain, with_ids = mixed_load(count, prefix)
    async with aiohttp.ClientSession() as session:
        sender = Sender(session, pipeline.collector_url, ACME_SERVER_KEY, ledger)
        load = asyncio.create_task(send(sender, plain, with_ids))
        extra = await fault(load)
        await load
    await finish_and_check(pipeline, ledger, test, **extra)


async def test_aggregator_killed_repeatedly(pipeline: Pipeline) -> None:
    await pipeline.start_collector()
    pipeline.start_aggregator()
    rng = random.Random(3)

    async def kill_repeatedly(load: asyncio.Task[None]) -> dict[str, Any]:
        kills = 0
        while not load.done() or kills < 6:
            await asyncio.sleep(rng.uniform(0.8, 2.5))
            pipeline.stop("aggregator", signal.SIGKILL)
            kills += 1
            pipeline.start_aggregator()
        return {"kills": kills}

    await run_load_while(pipeline, 30_000, "k", kill_repeatedly, "aggregator kill -9")


async def test_rebalances_and_a_zombie_consumer(pipeline: Pipeline) -> None:
    await pipeline.start_collector()
    for name in ("agg1", "agg2", "agg3"):
        pipeline.start_aggregator(name)

    async def churn(load: asyncio.Task[None]) -> dict[str, Any]:
        await asyncio.sleep(2)
        pipeline.stop("agg2")  # leaves the group cleanly
        await asyncio.sleep(1)
        pipeline.start_aggregator("agg4")  # joins
        await asyncio.sleep(2)
        zombie = pipeline.processes["agg1"]
        os.kill(zombie.pid, signal.SIGSTOP)  # past the 10 s session timeout: evicted
        await asyncio.sleep(14)
        os.kill(zombie.pid, signal.SIGCONT)  # wakes up believing it still owns partitions
        await asyncio.sleep(2)
        pipeline.stop("agg3", signal.SIGKILL)
        pipeline.start_aggregator("agg5")
        return {"members_changed": 5}

    await run_load_while(pipeline, 30_000, "z", churn, "rebalances and a zombie")


async def test_redis_killed_and_restarted_from_its_aof(pipeline: Pipeline, tmp_path: Path) -> None:
    port = free_port()
    redis_dir = tmp_path / "redis"
    redis = start_redis(redis_dir, port)
    pipeline.overrides["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    await pipeline.start_collector()
    pipeline.start_aggregator()

    async def kill_redis(load: asyncio.Task[None]) -> dict[str, Any]:
        nonlocal redis
        await asyncio.sleep(3)
        redis.kill()  # kill -9: everything written to the AOF survives
        redis.wait()
        await asyncio.sleep(1)
        redis = start_redis(redis_dir, port)
        # Then the harder case: a restart that lost the AOF's last seconds (as after a
        # power cut with appendfsync everysec). Counts and offsets go back in time together.
        # The restart comes after the load has ended, so every partition is idle: no new
        # batch will find the older offset; the consumer must notice it all the same.
        await asyncio.sleep(2)
        shutil.copytree(redis_dir / "appendonlydir", tmp_path / "aof-snapshot")
        await load
        await asyncio.sleep(1.5)
        redis.kill()
        redis.wait()
        shutil.rmtree(redis_dir / "appendonlydir")
        shutil.copytree(tmp_path / "aof-snapshot", redis_dir / "appendonlydir")
        redis = start_redis(redis_dir, port)
        return {"redis_kills": 2, "aof_rollbacks": 1}

    try:
        await run_load_while(pipeline, 30_000, "r", kill_redis, "redis kill -9")
        assert "Redis holds offset" in pipeline.log("aggregator")  # it did go back in time
    finally:
        redis.kill()
        redis.wait()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_flusher_killed_at_each_step_then_rerun(pipeline: Pipeline) -> None:
    await pipeline.start_all()
    ledger = Ledger()
    async with aiohttp.ClientSession() as session:
        sender = Sender(session, pipeline.collector_url, ACME_SERVER_KEY, ledger)
        for round_number, step in enumerate(STEPS):
            plain, with_ids = mixed_load(4_000, f"f{round_number}")
            await send(sender, plain, with_ids, pause_s=0)
            await pipeline.drain()
            crashed = pipeline.flush(TODAY, FLUSH_CRASH_AT=step)
            assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr
            # Whatever the crash left, queries see every acknowledged event exactly once.
            top_account = "f0acct-0"
            expected = sum(n for (a, *_), n in ledger.expected.items() if a == top_account)
            status, body = await get_json(
                session,
                f"{pipeline.api_url}/v1/services/SP-ACME/accounts/{top_account}/usage",
                ACME_READ_KEY,
                {"from": TODAY, "to": TODAY, "by": ""},
            )
            assert (status, body) == (200, {"rows": [{"count": expected}]}), step
    await finish_and_check(pipeline, ledger, "flusher crashes", steps=list(STEPS))
    leftovers = [k for k in await pipeline.redis_keys() if ":bucket:" in k or ":staged" in k]
    assert leftovers == []


async def test_client_retries_after_timeouts_reusing_event_ids(pipeline: Pipeline) -> None:
    await pipeline.start_collector()
    pipeline.start_aggregator()
    ledger = Ledger()
    events = with_event_ids(
        [{**e, "account_id": f"c{e['account_id']}"} for e in SHAPE.events(20_000)], "c"
    )
    async with aiohttp.ClientSession() as session:
        sender = Sender(session, pipeline.collector_url, ACME_SERVER_KEY, ledger)
        for batch in batches(events, 100):
            await sender.post(batch, timeout_s=0.002)  # the client gives up waiting
            assert await sender.post_until_accepted(batch)
            await sender.post(batch)  # and, to be sure, sends it once more
    assert ledger.acknowledged_events == 20_000
    await finish_and_check(pipeline, ledger, "client retries with event_id")


async def test_sigterm_drains_collector_and_aggregator(pipeline: Pipeline) -> None:
    """Plain events, sent once: every 202 must count, and nothing else may."""
    await pipeline.start_collector()
    pipeline.start_aggregator()

    async def restart_both(load: asyncio.Task[None]) -> dict[str, Any]:
        await asyncio.sleep(2)
        collector_exit = pipeline.stop("collector", timeout_s=20)
        await pipeline.start_collector()
        await asyncio.sleep(1.5)
        aggregator_exit = pipeline.stop("aggregator", timeout_s=20)
        pipeline.start_aggregator()
        assert (collector_exit, aggregator_exit) == (0, 0)
        return {"sigterms": 2}

    ledger = Ledger()
    plain = [{**e, "account_id": f"g{e['account_id']}"} for e in SHAPE.events(20_000)]
    async with aiohttp.ClientSession() as session:
        sender = Sender(session, pipeline.collector_url, ACME_SERVER_KEY, ledger)
        load = asyncio.create_task(send(sender, plain, [], pause_s=0.01))
        extra = await restart_both(load)
        await load
    assert ledger.statuses[202] < 200  # some batches hit the restart and were not accepted
    await finish_and_check(pipeline, ledger, "SIGTERM collector and aggregator", **extra)
