"""The atomic apply step against a real Redis: replays, zombies and event_id retries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from aggregator.batch import RawRecord, summarize
from aggregator.buckets import BucketWriter
from common.events import UsageEvent
from common.keys import KeyLayout, bucket_field, encode_parts
from common.wire import to_wire


@pytest.fixture
async def redis(servers: None) -> AsyncIterator[Redis]:
    client = Redis.from_url("redis://127.0.0.1:6379/0")
    yield client
    await client.aclose()


@pytest.fixture
def keys() -> KeyLayout:
    name = f"w{uuid.uuid4().hex[:10]}"
    return KeyLayout(name, name)


def event_record(offset: int, event_id: str = "", count: int = 1, account: str = "A") -> RawRecord:
    event = UsageEvent("S", account, "u", "M", "a", count, 1, 1000 + offset, "2026-11-22", event_id)
    return RawRecord(offset, to_wire(event))


async def bucket(redis: Redis, keys: KeyLayout, account: str = "A") -> int:
    value = await redis.hget(
        keys.bucket(0, "S", "2026-11-22", account), bucket_field("u", "M", "a")
    )
    return int(value or 0)


async def test_batch_applies_once_and_a_replay_changes_nothing(
    redis: Redis, keys: KeyLayout
) -> None:
    writer = BucketWriter(redis, keys, 48 * 3600 * 1000)
    batch = summarize(0, [event_record(0, count=2), event_record(1), event_record(2, account="B")])
    first = await writer.apply(batch, expected_offset=-1, now_ms=5)
    assert (first.applied, first.stored_offset) == (True, 2)
    replay = await writer.apply(batch, expected_offset=-1, now_ms=6)
    assert (replay.applied, replay.stored_offset) == (False, 2)
    assert await bucket(redis, keys) == 3
    assert await bucket(redis, keys, "B") == 1
    assert await writer.stored_offset(0) == 2
    assert await redis.smembers(keys.days(0)) == {encode_parts("S", "2026-11-22").encode()}
    assert await redis.smembers(keys.accounts(0, "S", "2026-11-22")) == {b"A", b"B"}
    assert await redis.hget(keys.applied(0), "received_ms") == b"1002"


async def test_zombie_that_lost_the_partition_is_fenced_out(redis: Redis, keys: KeyLayout) -> None:
    writer = BucketWriter(redis, keys, 48 * 3600 * 1000)
    await writer.apply(summarize(0, [event_record(0)]), -1, 1)
    # The new owner applies 1..2; the zombie, still at offset 0, then tries 1..3.
    await writer.apply(summarize(0, [event_record(1), event_record(2)]), 0, 2)
    zombie = await writer.apply(summarize(0, [event_record(i) for i in (1, 2, 3)]), 0, 3)
    assert (zombie.applied, zombie.stored_offset) == (False, 2)
    assert await bucket(redis, keys) == 3


async def test_event_id_retries_count_once_within_and_across_batches(
    redis: Redis, keys: KeyLayout
) -> None:
    writer = BucketWriter(redis, keys, 48 * 3600 * 1000)
    first = await writer.apply(
        summarize(0, [event_record(0, "e1", 5), event_record(1, "e1", 5), event_record(2, "e2")]),
        -1,
        1,
    )
    second = await writer.apply(summarize(0, [event_record(3, "e2"), event_record(4)]), 2, 2)
    assert (first.duplicates, second.duplicates) == (1, 1)
    assert await bucket(redis, keys) == 7
    ttl_ms = await redis.pttl(keys.seen(0, "S", "e1"))
    assert 47 * 3600 * 1000 < ttl_ms <= 48 * 3600 * 1000


async def test_many_accounts_in_one_batch_fit_in_one_script_call(
    redis: Redis, keys: KeyLayout
) -> None:
    writer = BucketWriter(redis, keys, 48 * 3600 * 1000)
    records = [event_record(i, account=f"acct-{i}") for i in range(12_000)]
    result = await writer.apply(summarize(0, records), -1, 1)
    assert result.applied
    assert await redis.scard(keys.accounts(0, "S", "2026-11-22")) == 12_000
