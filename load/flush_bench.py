"""The flush benchmark: live buckets of a depth-3 hierarchy written to Redis, flushed to SQL."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from redis.asyncio import Redis

from aggregator.batch import PartitionBatch
from aggregator.buckets import BucketWriter
from common.keys import KeyLayout, bucket_field
from load.harness import SERVICE, Stage, peak_rss_mb
from rollup.store import AccountUpdate, Store
from stack import postgres
from stack.servers import PROJECT_ROOT, STACK_HOME


async def measure_flush(stage: Stage, kind: str, entries: int) -> dict[str, Any]:
    """Flush entries live bucket entries of a depth-3 hierarchy into SQL; the figures."""
    if kind == "postgresql":
        postgres.start(STACK_HOME)
        name = f"bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(
            f"postgresql://postgres@127.0.0.1:{postgres.POSTGRES_PORT}/postgres"
        )
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        stage.database_url = f"postgresql://postgres@127.0.0.1:{postgres.POSTGRES_PORT}/{name}"
    day = datetime.now(UTC).date()
    await fill_buckets(stage, entries, day)
    started = time.monotonic()
    flush = subprocess.Popen(
        [sys.executable, "-m", "rollup", "flush", "--service", SERVICE, "--day", day.isoformat(), "--force"],
        cwd=PROJECT_ROOT, env=stage.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    stage.profile("flush", flush.pid)
    peak = 0.0
    while flush.poll() is None:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            peak = max(peak, peak_rss_mb(flush.pid))
        await asyncio.sleep(0.05)
    stdout, stderr = flush.communicate()
    seconds = time.monotonic() - started
    if flush.returncode != 0:
        raise RuntimeError(f"flush failed: {stderr}")
    stage.stop_all()
    match = re.search(r"(\d+) rows", stdout)
    rows = int(match.group(1)) if match else 0
    await stage.cleanup_redis()
    return {
        "entries": entries, "rows_flushed": rows, "seconds": round(seconds, 2),
        "peak_mb": round(peak, 1),
    }  # fmt: skip


async def fill_buckets(stage: Stage, entries: int, day: date) -> None:
    """Write live buckets straight into Redis (as the aggregator would) and the hierarchy."""
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    keys = KeyLayout(stage.name, stage.topic_name)
    writer = BucketWriter(redis, keys, 72 * 3600 * 1000)
    corporations, subsidiaries = 10, 10
    leaves = max(entries // 500, 1)
    per_leaf = entries // leaves
    updates = []
    leaf_ids = []
    for leaf in range(leaves):
        corp, sub = leaf % corporations, (leaf // corporations) % subsidiaries
        sub_id, leaf_id = f"corp-{corp}/sub-{sub}", f"corp-{corp}/sub-{sub}/product-{leaf}"
        updates.append(AccountUpdate(SERVICE, sub_id, day, {"parent_id": f"corp-{corp}"}))
        updates.append(AccountUpdate(SERVICE, leaf_id, day, {"parent_id": sub_id}))
        leaf_ids.append(leaf_id)
    store = await Store.open(stage.env["DATABASE_URL"])
    await store.apply_updates(updates, datetime.now(UTC))
    await store.close()
    pairs = [(m, a) for m in ("Invoices", "Payments", "Reports", "Customers", "Settings")
             for a in ("Create", "View")]  # fmt: skip
    await redis.sadd(keys.partitions(), *range(12))
    for index, leaf_id in enumerate(leaf_ids):
        partition = index % 12
        stored = await writer.stored_offset(partition)
        batch = PartitionBatch(partition, stored + 1, stored + 1)
        batch.increments = {
            (SERVICE, day.isoformat(), leaf_id): {
                bucket_field(f"user{u}@example.com", m, a): 1 + (u % 3)
                for u in range(per_leaf // len(pairs)) for m, a in pairs
            }
        }  # fmt: skip
        await writer.apply(batch, stored, int(time.time() * 1000))
    await redis.aclose()
