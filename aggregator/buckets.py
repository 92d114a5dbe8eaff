"""Apply a batch to Redis exactly once: counts and the partition's offset in one atomic step."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

from aggregator.batch import BucketId, PartitionBatch
from common.keys import KeyLayout, encode_parts
from common.redis_client import RedisClient

# KEYS[1] applied hash, KEYS[2] days set, KEYS[3..] accounts sets, buckets and seen markers.
# ARGV: expected offset, new offset, max received ms, dedup ttl ms, now ms, events carried,
#       then day groups, plain increments and deduplicated increments, each count-prefixed.
APPLY_BATCH = """
-- Variadic command over ARGV[first .. first + count - 1], in chunks: unpack() has a stack
-- limit of a few thousand values.
local function chunked(command, key, first, count)
  local j = first
  while j < first + count do
    local last = math.min(j + 999, first + count - 1)
    redis.call(command, key, unpack(ARGV, j, last))
    j = last + 1
  end
end
local stored = tonumber(redis.call('HGET', KEYS[1], 'offset') or '-1')
if stored ~= tonumber(ARGV[1]) then return {0, stored, 0} end
local i = 7
local groups = tonumber(ARGV[i]); i = i + 1
for _ = 1, groups do
  redis.call('SADD', KEYS[2], ARGV[i])
  local accounts_key = KEYS[tonumber(ARGV[i + 1])]
  local n = tonumber(ARGV[i + 2]); i = i + 3
  chunked('SADD', accounts_key, i, n)
  i = i + n
end
local increments = tonumber(ARGV[i]); i = i + 1
for _ = 1, increments do
  redis.call('HINCRBY', KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2]); i = i + 3
end
local deduplicated = tonumber(ARGV[i]); i = i + 1
local duplicates = 0
for _ = 1, deduplicated do
  if redis.call('SET', KEYS[tonumber(ARGV[i])], '1', 'NX', 'PX', ARGV[4]) then
    redis.call('HINCRBY', KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2], ARGV[i + 3])
  else
    duplicates = duplicates + 1
  end
  i = i + 4
end
local updates = tonumber(ARGV[i]); i = i + 1
if updates > 0 then
  local list = KEYS[tonumber(ARGV[i])]; i = i + 1
  chunked('RPUSH', list, i, updates)
  i = i + updates
end
local received = tonumber(redis.call('HGET', KEYS[1], 'received_ms') or '0')
redis.call('HSET', KEYS[1], 'offset', ARGV[2], 'applied_at_ms', ARGV[5],
  'received_ms', math.max(received, tonumber(ARGV[3])))
redis.call('HINCRBY', KEYS[1], 'events', ARGV[6])
return {1, tonumber(ARGV[2]), duplicates}
"""


# Records that the consumer has applied everything up to the partition's end as of
# caught_up_ms, only if Redis still holds the offset it applied (so a zombie cannot claim it).
MARK_CAUGHT_UP = """
local stored = tonumber(redis.call('HGET', KEYS[1], 'offset') or '-1')
if stored ~= tonumber(ARGV[1]) then return {0, stored} end
local current = tonumber(redis.call('HGET', KEYS[1], 'caught_up_ms') or '0')
if tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], 'caught_up_ms', ARGV[2]) end
return {1, stored}
"""


@dataclass(frozen=True)
class ApplyResult:
    applied: bool
    stored_offset: int
    duplicates: int


class BucketWriter:
    """Writes partition batches into live buckets, fenced by the stored offset."""

    def __init__(self, redis: RedisClient, keys: KeyLayout, dedup_window_ms: int) -> None:
        self._redis = redis
        self._keys = keys
        self._dedup_window_ms = dedup_window_ms
        self._apply = redis.register_script(APPLY_BATCH)
        self._mark_caught_up = redis.register_script(MARK_CAUGHT_UP)

    async def stored_offset(self, partition: int) -> int:
        """Return the last offset applied for partition, or -1."""
        value = await self._redis.hget(self._keys.applied(partition), "offset")
        return int(value) if value is not None else -1

    async def apply(self, batch: PartitionBatch, expected_offset: int, now_ms: int) -> ApplyResult:
        """Add the batch's counts and move the offset, only if Redis still holds expected_offset.

        Exactly once: a replayed batch, or one from a consumer that lost the partition,
        finds another offset stored and changes nothing.
        """
        keys, args = self.script_arguments(batch, expected_offset, now_ms)
        applied, stored, duplicates = await self._apply(keys=keys, args=args)
        return ApplyResult(bool(applied), int(stored), int(duplicates))

    async def mark_caught_up(self, caught_up: dict[int, tuple[int, int]]) -> dict[int, int]:
        """Record, per partition, (applied offset, time it was the partition's end).

        Returns the partitions where Redis holds another offset than the one applied,
        with the offset it holds: Redis went back in time (restored from its AOF) or
        another consumer owns the partition now.
        """
        # One call per partition, not a pipeline: a Redis Cluster answers a script that is
        # not in a node's cache (after a failover or a slot migration) only outside one.
        results = await asyncio.gather(
            *(
                self._mark_caught_up(keys=[self._keys.applied(partition)], args=[offset, at_ms])
                for partition, (offset, at_ms) in caught_up.items()
            )
        )
        return {
            partition: int(stored)
            for partition, (marked, stored) in zip(caught_up, results, strict=True)
            if not marked
        }

    def script_arguments(
        self, batch: PartitionBatch, expected_offset: int, now_ms: int
    ) -> tuple[list[str], list[str | int]]:
        partition = batch.partition
        keys = [self._keys.applied(partition), self._keys.days(partition)]
        index: dict[str, int] = {}

        def key_index(key: str) -> int:
            if key not in index:
                keys.append(key)
                index[key] = len(keys)
            return index[key]

        args: list[str | int] = [
            expected_offset,
            batch.last_offset,
            batch.max_received_ms,
            self._dedup_window_ms,
            now_ms,
            batch.carried,
        ]
        accounts_by_day: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        for service_id, day, account_id in sorted(batch.buckets):
            accounts_by_day[(service_id, day)].append(account_id)
        args.append(len(accounts_by_day))
        for (service_id, day), accounts in accounts_by_day.items():
            accounts_key = key_index(self._keys.accounts(partition, service_id, day))
            args.extend([encode_parts(service_id, day), accounts_key, len(accounts), *accounts])

        def bucket_index(bucket: BucketId) -> int:
            return key_index(self._keys.bucket(partition, *bucket))

        plain = [(b, f, n) for b, fields in batch.increments.items() for f, n in fields.items()]
        args.append(len(plain))
        for bucket, name, count in plain:
            args.extend([bucket_index(bucket), name, count])
        args.append(len(batch.deduplicated))
        for item in batch.deduplicated:
            seen = key_index(self._keys.seen(partition, item.bucket[0], item.event_id))
            args.extend([seen, bucket_index(item.bucket), item.field, item.count])
        args.append(len(batch.account_updates))
        if batch.account_updates:
            args.append(key_index(self._keys.account_updates(partition)))
            args.extend(update.decode() for update in batch.account_updates)
        return keys, args
