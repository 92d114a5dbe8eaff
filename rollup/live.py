"""Read live buckets from Redis, and move a day's buckets aside for a flush."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import date

import orjson
from redis.asyncio.cluster import RedisCluster

from common.keys import KeyLayout, decode_parts, encode_parts
from common.redis_client import RedisClient
from rollup.faults import crash_point
from rollup.store import CountRow, CountTuple
from rollup.watermark import PartitionProgress, progress_from_hash

CHUNK = 1000
REPLICA_POLL_S = 0.05


class ReplicasBehind(RuntimeError):
    """A Redis Cluster replica did not acknowledge the staging in time; commit nothing yet."""


# Moves the listed accounts' buckets of one (service, day) under a flush id, atomically
# with the indexes, so increments that arrive meanwhile land in fresh live buckets.
# KEYS: accounts set, days set, staged registry, staged accounts set, then pairs of
# (live bucket, staged bucket). ARGV: flush id, days member, then the account ids.
STAGE_BUCKETS = """
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
local moved = 0
for i = 3, #ARGV do
  local live = KEYS[5 + (i - 3) * 2]
  local staged = KEYS[6 + (i - 3) * 2]
  if redis.call('EXISTS', live) == 1 then
    redis.call('RENAME', live, staged)
    moved = moved + 1
  end
  redis.call('SADD', KEYS[4], ARGV[i])
  redis.call('SREM', KEYS[1], ARGV[i])
end
if redis.call('SCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return moved
"""


def decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def count_rows(
    service_id: str, day: date, account_id: str, fields: dict[bytes, bytes]
) -> list[CountRow]:
    """Turn one bucket's hash into count rows."""
    rows = []
    for name, value in fields.items():
        user_id, module, activity = decode_parts(name)
        rows.append(CountRow(service_id, day, account_id, user_id, module, activity, int(value)))
    return rows


def count_tuples(account_id: str, fields: dict[bytes, bytes]) -> list[CountTuple]:
    """Turn one bucket's hash into flush rows, decoding all its field names in one parse."""
    names = orjson.loads(b"[" + b",".join(fields) + b"]")
    return [
        (account_id, user_id, module, activity, int(count))
        for (user_id, module, activity), count in zip(names, fields.values(), strict=True)
    ]


@dataclass(frozen=True)
class LiveBuckets:
    redis: RedisClient
    keys: KeyLayout

    async def partitions(self) -> list[int]:
        """Return the topic's partitions that aggregators have registered."""
        members = await self.redis.smembers(self.keys.partitions())
        return sorted(int(member) for member in members)

    async def progress(self) -> list[PartitionProgress]:
        """Return every registered partition's aggregation progress."""
        partitions = await self.partitions()
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in partitions:
                pipe.hgetall(self.keys.applied(partition))
            results = await pipe.execute()
        return [
            progress_from_hash(p, fields) for p, fields in zip(partitions, results, strict=True)
        ]

    async def service_live_days(self, service_id: str) -> list[date]:
        """Return the service's days with live buckets in any partition."""
        days: set[date] = set()
        for partition in await self.partitions():
            days.update(await self.live_days(partition, service_id))
        return sorted(days)

    async def live_days(self, partition: int, service_id: str) -> list[date]:
        """Return the service's days that have live buckets in partition."""
        days = []
        for member in await self.redis.smembers(self.keys.days(partition)):
            member_service, day = decode_parts(member)
            if member_service == service_id:
                days.append(date.fromisoformat(day))
        return sorted(days)

    async def staged(self, partition: int) -> dict[str, tuple[str, date]]:
        """Return flush id -> (service, day) of buckets moved aside and not yet cleaned up."""
        registry = await self.redis.hgetall(self.keys.staged(partition))
        staged = {}
        for flush_id, member in registry.items():
            service_id, day = decode_parts(member)
            staged[decode(flush_id)] = (service_id, date.fromisoformat(day))
        return staged

    async def rows_of_accounts(
        self,
        service_id: str,
        account_ids: Collection[str],
        first_day: date,
        last_day: date,
        committed: Callable[[list[str]], Awaitable[set[str]]],
    ) -> list[CountRow]:
        """Return the live rows of some accounts in a range of days.

        Buckets staged for a flush count as live until their flush commits; committed
        answers which staged flush ids SQL already holds (those are left out).
        """
        wanted = set(account_ids)
        targets: list[tuple[str, date, str]] = []
        for partition in await self.partitions():
            for day in await self.live_days(partition, service_id):
                if first_day <= day <= last_day:
                    members = await self._members_wanted(
                        self.keys.accounts(partition, service_id, day.isoformat()), wanted
                    )
                    targets.extend(
                        (self.keys.bucket(partition, service_id, day.isoformat(), a), day, a)
                        for a in members
                    )
            staged = {
                flush_id: day
                for flush_id, (staged_service, day) in (await self.staged(partition)).items()
                if staged_service == service_id and first_day <= day <= last_day
            }
            done = await committed(list(staged)) if staged else set()
            for flush_id, day in staged.items():
                if flush_id in done:
                    continue
                members = await self._members_wanted(
                    self.keys.staged_accounts(partition, flush_id), wanted
                )
                targets.extend(
                    (self.keys.staged_bucket(partition, flush_id, a), day, a) for a in members
                )
        rows: list[CountRow] = []
        for start in range(0, len(targets), CHUNK):
            chunk = targets[start : start + CHUNK]
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, _, _ in chunk:
                    pipe.hgetall(key)
                results = await pipe.execute()
            for (_, day, account_id), fields in zip(chunk, results, strict=True):
                rows.extend(count_rows(service_id, day, account_id, fields))
        return rows

    async def _members_wanted(self, key: str, wanted: set[str]) -> set[str]:
        """Intersect a set of account ids in Redis with wanted, reading the smaller side."""
        if len(wanted) <= 16:
            async with self.redis.pipeline(transaction=False) as pipe:
                for account_id in wanted:
                    pipe.sismember(key, account_id)
                present = await pipe.execute()
            return {a for a, there in zip(wanted, present, strict=True) if there}
        return {decode(m) async for m in self.redis.sscan_iter(key, count=CHUNK)} & wanted

    async def accounts(self, partition: int, service_id: str, day: date) -> list[str]:
        """Return the accounts with a live bucket for (service, day) in partition."""
        key = self.keys.accounts(partition, service_id, day.isoformat())
        return [decode(member) async for member in self.redis.sscan_iter(key, count=CHUNK)]

    async def stage(
        self, partition: int, service_id: str, day: date, flush_id: str, accounts: list[str]
    ) -> int:
        """Move accounts' buckets of (service, day) under flush_id; return how many moved."""
        script = self.redis.register_script(STAGE_BUCKETS)
        member = encode_parts(service_id, day.isoformat())
        moved = 0
        for start in range(0, len(accounts), CHUNK):
            chunk = accounts[start : start + CHUNK]
            keys = [
                self.keys.accounts(partition, service_id, day.isoformat()),
                self.keys.days(partition),
                self.keys.staged(partition),
                self.keys.staged_accounts(partition, flush_id),
            ]
            for account_id in chunk:
                keys.append(self.keys.bucket(partition, service_id, day.isoformat(), account_id))
                keys.append(self.keys.staged_bucket(partition, flush_id, account_id))
            moved += int(await script(keys=keys, args=[flush_id, member, *chunk]))
        return moved

    async def wait_for_replicas(self, partitions: Iterable[int], timeout_s: float) -> None:
        """On a Redis Cluster, wait until the partitions' replicas hold every write so far.

        A replica promoted after its primary fails then holds the staging renames too, and
        cannot bring back as live the buckets SQL is about to count. Raises ReplicasBehind
        after timeout_s. One Redis: nothing to wait for (its AOF covers a restart).
        """
        if not isinstance(self.redis, RedisCluster):
            return
        primaries = {}
        for partition in partitions:
            node = self.redis.get_node_from_key(self.keys.staged(partition))
            if node is None:
                raise ReplicasBehind(f"no primary serves partition {partition} now")
            primaries[node.name] = node
        deadline = time.monotonic() + timeout_s
        for node in primaries.values():
            written = int(
                (await self.redis.info("replication", target_nodes=node))["master_repl_offset"]
            )
            while True:
                info = await self.redis.info("replication", target_nodes=node)
                replicas = [v for k, v in info.items() if k.startswith("slave")]
                if all(int(replica["offset"]) >= written for replica in replicas):
                    break
                if time.monotonic() > deadline:
                    raise ReplicasBehind(f"replicas of {node.name} behind {written}: {replicas}")
                await asyncio.sleep(REPLICA_POLL_S)

    async def staged_rows(self, partition: int, flush_id: str) -> AsyncIterator[list[CountTuple]]:
        """Read the buckets staged under flush_id, a chunk of accounts at a time."""
        accounts = [
            decode(m)
            async for m in self.redis.sscan_iter(
                self.keys.staged_accounts(partition, flush_id), count=CHUNK
            )
        ]
        for chunk in _chunks(accounts):
            async with self.redis.pipeline(transaction=False) as pipe:
                for account_id in chunk:
                    pipe.hgetall(self.keys.staged_bucket(partition, flush_id, account_id))
                results = await pipe.execute()
            rows: list[CountTuple] = []
            for account_id, fields in zip(chunk, results, strict=True):
                rows.extend(count_tuples(account_id, fields))
            yield rows

    async def drop_staged(self, partition: int, flush_id: str) -> None:
        """Delete a committed flush's staged buckets, then its registry entry (last)."""
        accounts_key = self.keys.staged_accounts(partition, flush_id)
        accounts = [decode(m) async for m in self.redis.sscan_iter(accounts_key, count=CHUNK)]
        for chunk in _chunks(accounts):
            await self.redis.delete(
                *(self.keys.staged_bucket(partition, flush_id, account) for account in chunk)
            )
        crash_point("dropped-buckets")
        await self.redis.delete(accounts_key)
        await self.redis.hdel(self.keys.staged(partition), flush_id)


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
