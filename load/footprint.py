"""Measure what a live bucket entry, a remembered event_id and a flushed entry cost.

    .venv/bin/python -m load.footprint [--events 400000] [--accounts 2000] [--users 20]

Events shaped by load/traffic.py go through the collector's validation and Kafka encoding
(one record per account per request, as the collector packs them) and the aggregator's own
code (summarize, then BucketWriter.apply's Lua script) into the shared Redis, under a fresh
key prefix; Kafka itself is left out, it does not change what lands in Redis. MEMORY USAGE
of every key under the prefix gives bytes per live entry (one user x module x activity of
an account's day) and per event_id marker. The real flush then moves the same population
into a fresh SQLite file and a fresh PostgreSQL database (a depth-3 hierarchy: accounts
under 20 parents under one root), whose table sizes give SQL bytes per flushed row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
import uuid
import zlib
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis

from aggregator.batch import RawRecord, summarize
from aggregator.buckets import BucketWriter
from common.events import validate_event
from common.keys import KeyLayout
from common.services import load_services
from common.wire import pack_wire, to_wire
from load.traffic import TrafficShape
from rollup.flush import flush_day
from rollup.live import LiveBuckets
from rollup.store import AccountUpdate, Store
from stack import postgres
from stack.redis import unlink_matching
from stack.servers import PROJECT_ROOT, STACK_HOME

SERVICE = "SP-DEMO"
PARTITIONS = 12
EVENTS_PER_REQUEST = 100
RECORDS_PER_BATCH = 500
REDIS_URL = "redis://127.0.0.1:6379/0"
TABLES = ("daily_counts", "daily_rollups", "daily_rollup_users", "flushes", "accounts")


def records_by_partition(
    shape: TrafficShape, events: int, with_ids: bool, received_ms: int
) -> dict[int, list[bytes]]:
    """Validate and encode events as the collector does: a record per account per request."""
    services = load_services(PROJECT_ROOT / "load" / "services.toml")
    records: defaultdict[int, list[bytes]] = defaultdict(list)
    request: defaultdict[str, list[bytes]] = defaultdict(list)
    for index, raw in enumerate(shape.events(events), start=1):
        raw["service_id"] = SERVICE
        if with_ids:
            raw["event_id"] = f"evt-{index}"
        event = validate_event(raw, services, received_ms)
        request[event.account_id].append(to_wire(event))
        if index % EVENTS_PER_REQUEST == 0 or index == events:
            for account_id, encoded in request.items():
                partition = zlib.crc32(account_id.encode()) % PARTITIONS
                records[partition].append(pack_wire(encoded))
            request.clear()
    return records


async def aggregate(redis: Redis, keys: KeyLayout, records: dict[int, list[bytes]]) -> None:
    """Apply every partition's records to Redis with the aggregator's summarize and Lua."""
    writer = BucketWriter(redis, keys, 72 * 3600 * 1000)
    await redis.sadd(keys.partitions(), *range(PARTITIONS))
    for partition, values in records.items():
        for start in range(0, len(values), RECORDS_PER_BATCH):
            stored = await writer.stored_offset(partition)
            chunk = [RawRecord(stored + 1 + i, value) for i, value in
                     enumerate(values[start : start + RECORDS_PER_BATCH])]  # fmt: skip
            result = await writer.apply(
                summarize(partition, chunk), stored, int(time.time() * 1000)
            )
            assert result.applied, f"partition {partition} refused a batch"


async def key_bytes(redis: Redis, pattern: str) -> tuple[int, int]:
    """Return (keys, MEMORY USAGE summed) over the keys matching pattern."""
    keys = [key async for key in redis.scan_iter(match=pattern, count=5000)]
    total = 0
    for start in range(0, len(keys), 5000):
        async with redis.pipeline(transaction=False) as pipe:
            for key in keys[start : start + 5000]:
                pipe.memory_usage(key, samples=0)
            total += sum(int(size or 0) for size in await pipe.execute())
    return len(keys), total


async def live_entries(redis: Redis, prefix: str) -> int:
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:*:bucket:*", count=5000)]
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hlen(key)
        return sum(await pipe.execute())


async def used_memory(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


async def measure_redis(shape: TrafficShape, events: int, markers: int) -> dict[str, Any]:
    """Bytes per live bucket entry, and per event_id marker, in a fresh key prefix."""
    prefix = f"footprint{uuid.uuid4().hex[:8]}"
    keys = KeyLayout(prefix, prefix)
    redis = Redis.from_url(REDIS_URL)
    received_ms = int(time.time() * 1000)
    try:
        await aggregate(redis, keys, records_by_partition(shape, events, False, received_ms))
        entries = await live_entries(redis, prefix)
        bucket_keys, bucket_bytes = await key_bytes(redis, f"{prefix}:*:bucket:*")
        all_keys, all_bytes = await key_bytes(redis, f"{prefix}:*")
        before = await used_memory(redis)
        marked = records_by_partition(TrafficShape(shape.accounts, shape.users_per_account, 8),
                                      markers, True, received_ms)  # fmt: skip
        await aggregate(redis, keys, marked)
        grown = await used_memory(redis) - before
        seen_keys, seen_bytes = await key_bytes(redis, f"{prefix}:*:seen:*")
        return {
            "events": events, "live_entries": entries, "bucket_keys": bucket_keys,
            "bytes_per_entry_buckets": round(bucket_bytes / entries, 1),
            "bytes_per_entry_all_keys": round(all_bytes / entries, 1), "keys": all_keys,
            "markers": seen_keys, "bytes_per_marker": round(seen_bytes / seen_keys, 1),
            "used_memory_growth_per_marker": round(grown / seen_keys, 1),
        }  # fmt: skip
    finally:
        await unlink_matching(redis, f"{prefix}:*")
        await redis.aclose()


async def flush_population(shape: TrafficShape, events: int, database_url: str) -> date:
    """Aggregate events into a fresh prefix and flush their day into database_url."""
    prefix = f"footprint{uuid.uuid4().hex[:8]}"
    keys = KeyLayout(prefix, prefix)
    redis = Redis.from_url(REDIS_URL)
    received_ms = int(time.time() * 1000)
    day = datetime.fromtimestamp(received_ms / 1000, UTC).date()
    store = await Store.open(database_url)
    try:
        updates = [AccountUpdate(SERVICE, f"parent-{p}", day, {"parent_id": "root"})
                   for p in range(20)]  # fmt: skip
        updates += [AccountUpdate(SERVICE, f"acct-{a}", day, {"parent_id": f"parent-{a % 20}"})
                    for a in range(shape.accounts)]  # fmt: skip
        await store.apply_updates(updates, datetime.now(UTC))
        await aggregate(redis, keys, records_by_partition(shape, events, False, received_ms))
        await flush_day(LiveBuckets(redis, keys), store, SERVICE, day, 0)
    finally:
        await store.close()
        await unlink_matching(redis, f"{prefix}:*")
        await redis.aclose()
    return day


async def measure_sqlite(shape: TrafficShape, events: int) -> dict[str, Any]:
    path = Path(tempfile.mkdtemp(prefix="footprint-")) / "usage.db"
    await flush_population(shape, events, f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        # Each table with its indexes: dbstat names b-trees, sqlite_master their tables.
        sizes = dict(connection.execute(
            "SELECT m.tbl_name, SUM(d.pgsize) FROM dbstat d JOIN sqlite_master m "
            "ON m.name = d.name GROUP BY m.tbl_name"
        ))  # fmt: skip
        rows = {t: connection.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
    return {"rows": rows, "table_and_index_bytes": {t: sizes.get(t, 0) for t in TABLES},
            "file_bytes": path.stat().st_size}  # fmt: skip


async def measure_postgresql(shape: TrafficShape, events: int) -> dict[str, Any]:
    postgres.start(STACK_HOME)
    admin_dsn = f"postgresql://postgres@127.0.0.1:{postgres.POSTGRES_PORT}/postgres"
    name = f"footprint_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:{postgres.POSTGRES_PORT}/{name}"
    try:
        await flush_population(shape, events, url)
        connection = await asyncpg.connect(url)
        try:
            await connection.execute("VACUUM ANALYZE")
            rows = {t: await connection.fetchval(f"SELECT COUNT(*) FROM {t}") for t in TABLES}
            total = {t: await connection.fetchval("SELECT pg_total_relation_size($1)", t)
                     for t in TABLES}  # fmt: skip
        finally:
            await connection.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return {"rows": rows, "total_relation_bytes": total}


def per_row(sizes: dict[str, int], rows: dict[str, int]) -> dict[str, float]:
    return {t: round(sizes[t] / rows[t], 1) for t in TABLES if rows.get(t)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--markers", type=int, default=100_000, help="events with an event_id")
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--users", type=int, default=20, help="users per account")
    parser.add_argument("--skip-sql", action="store_true")
    args = parser.parse_args()
    shape = TrafficShape(accounts=args.accounts, users_per_account=args.users)
    report: dict[str, Any] = {"shape": vars(args), "redis": await measure_redis(
        shape, args.events, args.markers)}  # fmt: skip
    if not args.skip_sql:
        sqlite_sizes = await measure_sqlite(shape, args.events)
        sqlite_sizes["bytes_per_row"] = per_row(
            sqlite_sizes["table_and_index_bytes"], sqlite_sizes["rows"]
        )
        report["sqlite"] = sqlite_sizes
        pg = await measure_postgresql(shape, args.events)
        pg["bytes_per_row"] = per_row(pg["total_relation_bytes"], pg["rows"])
        report["postgresql"] = pg
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
