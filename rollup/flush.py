"""Flush a service's day: move its live buckets from Redis into durable counts in SQL."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from rollup.live import LiveBuckets
from rollup.store import Flush, Store

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


async def finish_staged(live: LiveBuckets, store: Store, partition: int) -> int:
    """Complete flushes a crash left half done in partition; return how many there were."""
    staged = await live.staged(partition)
    if not staged:
        return 0
    committed = await store.committed(staged)
    for flush_id, (service_id, day) in staged.items():
        if flush_id not in committed:
            rows = await live.staged_rows(partition, flush_id, service_id, day)
            flush = Flush(flush_id, service_id, day, partition, datetime.now(UTC))
            await store.commit_flush(flush, rows)
        await live.drop_staged(partition, flush_id)
    log.info("partition %d: finished %d interrupted flushes", partition, len(staged))
    return len(staged)


async def flush_partition(
    live: LiveBuckets, store: Store, partition: int, service_id: str, day: date
) -> tuple[int, int]:
    """Flush one partition's buckets of (service, day); return (rows, events).

    Exactly once: buckets are renamed under a new flush id, the SQL transaction records
    that id with the counts, and only then are the renamed buckets deleted; a re-run
    after a crash anywhere commits an uncommitted id once and drops a committed one.
    """
    accounts = await live.accounts(partition, service_id, day)
    if not accounts:
        return 0, 0
    flush = Flush(str(uuid.uuid4()), service_id, day, partition, datetime.now(UTC))
    await live.stage(partition, service_id, day, flush.flush_id, accounts)
    rows = await live.staged_rows(partition, flush.flush_id, service_id, day)
    await store.commit_flush(flush, rows)
    await live.drop_staged(partition, flush.flush_id)
    return len(rows), sum(row.count for row in rows)


async def flush_day(live: LiveBuckets, store: Store, service_id: str, day: date) -> FlushReport:
    """Flush every partition's live buckets of a service's day; safe to repeat."""
    started = time.monotonic()
    partitions = await live.partitions()
    recovered = rows = events = 0
    for partition in partitions:
        recovered += await finish_staged(live, store, partition)
        partition_rows, partition_events = await flush_partition(
            live, store, partition, service_id, day
        )
        rows += partition_rows
        events += partition_events
    report = FlushReport(
        service_id, day, len(partitions), rows, events, recovered, time.monotonic() - started
    )
    log.info(
        "flushed %s %s: %d rows, %d events from %d partitions in %.2f s",
        service_id, day, rows, events, len(partitions), report.seconds,
    )  # fmt: skip
    return report
