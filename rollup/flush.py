"""Flush a service's day: move its live buckets from Redis into durable counts in SQL."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from rollup.faults import crash_point
from rollup.live import LiveBuckets
from rollup.metrics import FLUSH_SECONDS, FLUSHED_ROWS, FLUSHES
from rollup.registry import sync_account_updates
from rollup.rollups import rebuild_rollups
from rollup.store import Flush, Store

REPLICA_WAIT_S = 10.0  # replicas acknowledge once a second; longer means one is in trouble

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlushReport:
    service_id: str
    day: date
    partitions: int
    rows: int
    events: int
    recovered: int
    seconds: float


async def stage_partition(
    live: LiveBuckets, partition: int, service_id: str, day: date
) -> str | None:
    """Rename one partition's live buckets of (service, day) under a new flush id."""
    accounts = await live.accounts(partition, service_id, day)
    if not accounts:
        return None
    flush_id = str(uuid.uuid4())
    await live.stage(partition, service_id, day, flush_id, accounts)
    return flush_id


async def finish_staged(live: LiveBuckets, store: Store, partition: int) -> tuple[int, int]:
    """Commit every staged flush of partition not yet in SQL, then drop the staged buckets.

    Exactly once: the SQL transaction records the flush id with the counts, and staged
    buckets are dropped only after it; a run after a crash anywhere commits an
    uncommitted id once and only drops a committed one. Returns (rows, events) committed.
    """
    staged = await live.staged(partition)
    committed = await store.committed(staged)
    rows_total = events_total = 0
    for flush_id, (service_id, day) in staged.items():
        if flush_id not in committed:
            chunks = live.staged_rows(partition, flush_id)
            flush = Flush(flush_id, service_id, day, partition, datetime.now(UTC))
            totals = await store.commit_flush_chunks(flush, chunks)
            if totals is not None:
                rows_total += totals[0]
                events_total += totals[1]
            crash_point("committed")
        await live.drop_staged(partition, flush_id)
    return rows_total, events_total


async def count_staged(live: LiveBuckets, partitions: list[int]) -> int:
    """Count the flushes staged and not yet cleaned up, over partitions."""
    return sum([len(await live.staged(partition)) for partition in partitions])


async def commit_all_staged(
    live: LiveBuckets, store: Store, partitions: list[int], fsync_wait_s: float
) -> tuple[int, int]:
    """Commit and drop every staged flush; return the (rows, events) committed.

    It first waits fsync_wait_s, so that Redis's append-only file holds the renames before
    SQL holds the counts: a Redis that restarts from its AOF cannot bring back buckets that
    SQL has already counted. On a Redis Cluster it also waits for the replicas to hold them.
    """
    await asyncio.sleep(fsync_wait_s)
    await live.wait_for_replicas(partitions, REPLICA_WAIT_S)
    rows = events = 0
    for partition in partitions:
        partition_rows, partition_events = await finish_staged(live, store, partition)
        rows += partition_rows
        events += partition_events
    return rows, events


async def finish_interrupted(live: LiveBuckets, store: Store, fsync_wait_s: float) -> int:
    """Finish the flushes a crash left staged in any partition; return how many there were."""
    partitions = await live.partitions()
    pending = await count_staged(live, partitions)
    if pending:
        await commit_all_staged(live, store, partitions, fsync_wait_s)
        log.info("finished %d interrupted flushes", pending)
    return pending


async def flush_day(
    live: LiveBuckets, store: Store, service_id: str, day: date, fsync_wait_s: float
) -> FlushReport:
    """Flush every partition's live buckets of a service's day; safe to repeat."""
    started = time.monotonic()
    partitions = await live.partitions()
    pending = await count_staged(live, partitions)
    staged = [await stage_partition(live, p, service_id, day) for p in partitions]
    crash_point("staged")
    rows = events = 0
    if any(staged) or pending:
        rows, events = await commit_all_staged(live, store, partitions, fsync_wait_s)
    # Accounts named by this day's events must be in the registry before it rolls up.
    await sync_account_updates(live, store)
    await rebuild_rollups(store, service_id, day)
    report = FlushReport(
        service_id, day, len(partitions), rows, events, pending, time.monotonic() - started
    )
    FLUSHES.labels(service_id).inc()
    FLUSHED_ROWS.labels(service_id).inc(rows)
    FLUSH_SECONDS.observe(report.seconds)
    log.info(
        "flushed %s %s: %d rows, %d events from %d partitions (%d interrupted flushes "
        "finished) in %.2f s",
        service_id, day, rows, events, len(partitions), pending, report.seconds,
    )  # fmt: skip
    return report
