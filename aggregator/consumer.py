"""The consumer loop: getmany batches, one atomic Redis step per partition batch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from aggregator.batch import Record, summarize
from aggregator.buckets import BucketWriter
from aggregator.metrics import (
    APPLY_SECONDS,
    BATCH_SIZE,
    BATCHES,
    DUPLICATES,
    EVENTS_APPLIED,
    FENCED,
    RECORDS_APPLIED,
    REDIS_RETRIES,
)
from common.clock import Clock
from common.heartbeat import Heartbeat
from common.keys import KeyLayout
from common.metrics import serve_metrics
from common.redis_client import RedisClient, connect
from common.settings import Settings
from common.topics import ensure_topic

log = logging.getLogger(__name__)

MAX_RECORDS_PER_POLL = 20_000
POLL_TIMEOUT_MS = 500
REDIS_RETRY_S = 0.5
REGISTER_EVERY_S = 10.0
SHUTDOWN_TIMEOUT_S = 10.0
CAUGHT_UP_EVERY_MS = 500

T = TypeVar("T")


class Aggregator(ConsumerRebalanceListener):  # type: ignore[misc]
    """Counts a consumer's partitions into Redis; the offsets stored there are the truth."""

    def __init__(self, consumer: AIOKafkaConsumer, writer: BucketWriter, redis: RedisClient,
                 keys: KeyLayout, stop: asyncio.Event, clock: Clock) -> None:  # fmt: skip
        self.consumer = consumer
        self.writer = writer
        self.redis = redis
        self.keys = keys
        self.stop = stop
        self.clock = clock
        self.caught_up_marked: dict[TopicPartition, int] = {}
        self.heartbeat = Heartbeat(redis, keys, "aggregator")
        self.applied: dict[TopicPartition, int] = {}
        self.gaps: dict[TopicPartition, int] = {}
        self.stats: Counter[str] = Counter()
        self.registered_at = 0.0

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Resume each new partition right after the offset stored with its counts."""
        for tp in assigned:
            await self.resume(tp)
        if assigned:
            await self.redis_call(
                lambda: self.redis.sadd(self.keys.partitions(), *(tp.partition for tp in assigned))
            )
        log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self.applied.pop(tp, None)
        if revoked:
            log.info("revoked partitions %s", sorted(tp.partition for tp in revoked))

    async def resume(self, tp: TopicPartition) -> None:
        """Seek tp to the offset after the one Redis holds for it."""
        stored = await self.redis_call(lambda: self.writer.stored_offset(tp.partition))
        if stored is None:
            return  # stopping while Redis is down: nothing applied, nothing lost
        if tp not in self.consumer.assignment():
            return  # revoked while Redis answered
        self.applied[tp] = stored
        self.consumer.seek(tp, stored + 1)

    async def redis_call(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """Run a Redis call, retrying while Redis is down; None if asked to stop meanwhile."""
        while True:
            try:
                return await call()
            except RedisError as error:
                self.stats["redis_retries"] += 1
                REDIS_RETRIES.inc()
                log.warning("Redis unavailable (%r); retrying", error)
                if self.stop.is_set():
                    return None
                await asyncio.sleep(REDIS_RETRY_S)

    async def apply(self, tp: TopicPartition, messages: Sequence[Record]) -> None:
        """Apply one partition's fetched records exactly once."""
        if tp not in self.consumer.assignment():
            return  # revoked while the batch was in flight
        if tp not in self.applied:
            await self.resume(tp)  # the assignment callback could not reach Redis
            return
        expected = self.applied[tp]
        fresh = [m for m in messages if m.offset > expected]
        if not fresh:
            return
        if fresh[0].offset > expected + 1 and self.gaps.get(tp) != expected:
            # Records in between were not fetched (a seek raced a prefetch): fetch them.
            self.gaps[tp] = expected
            self.consumer.seek(tp, expected + 1)
            return
        if fresh[0].offset > expected + 1:
            log.error("partition %d: offsets %d..%d are gone from Kafka (retention?)",
                      tp.partition, expected + 1, fresh[0].offset - 1)  # fmt: skip
        batch = summarize(tp.partition, fresh)
        started = time.perf_counter()
        result = await self.redis_call(
            lambda: self.writer.apply(batch, expected, self.clock.now_ms())
        )
        if result is None:
            return
        APPLY_SECONDS.observe(time.perf_counter() - started)
        if result.applied:
            if tp in self.consumer.assignment():  # else revoked while Redis applied it
                self.applied[tp] = batch.last_offset
            self.stats["events"] += batch.events
            self.stats["batches"] += 1
            self.stats["duplicates"] += result.duplicates
            self.stats["undecodable"] += batch.undecodable
            EVENTS_APPLIED.inc(batch.events - result.duplicates)
            BATCHES.inc()
            RECORDS_APPLIED.inc(len(fresh))
            BATCH_SIZE.observe(len(fresh))
            DUPLICATES.inc(result.duplicates)
            return
        # Another consumer moved this partition on (we were a zombie), Redis went back in
        # time (restarted from its AOF), or a retried write had in fact landed: resume from
        # what Redis holds.
        self.stats["fenced"] += 1
        FENCED.inc()
        log.warning(
            "partition %d: Redis holds offset %d, expected %d; resuming from there",
            tp.partition, result.stored_offset, expected,
        )  # fmt: skip
        if tp in self.consumer.assignment():
            self.applied[tp] = result.stored_offset
            self.consumer.seek(tp, result.stored_offset + 1)

    async def register_partitions(self) -> None:
        """Re-announce the owned partitions now and then, in case Redis lost the set."""
        if time.monotonic() - self.registered_at < REGISTER_EVERY_S or not self.applied:
            return
        self.registered_at = time.monotonic()
        # Every partition of the topic, owned or not: one nobody consumes must hold days back.
        topic = next(iter(self.applied)).topic
        partitions = self.consumer.partitions_for_topic(topic) or set()
        partitions |= {tp.partition for tp in self.applied}
        await self.redis_call(lambda: self.redis.sadd(self.keys.partitions(), *partitions))

    async def mark_caught_up(self) -> None:
        """Record the partitions whose end we have applied, as of their last fetch.

        This is the watermark the flusher waits for: a partition caught up at time T has
        applied everything appended before T, so also every event received before T minus
        the produce timeout.
        """
        caught_up: dict[int, tuple[int, int]] = {}
        assigned = self.consumer.assignment()
        for tp, offset in self.applied.items():
            if tp not in assigned:
                continue  # being revoked
            highwater = self.consumer.highwater(tp)
            fetched_at = self.consumer.last_poll_timestamp(tp)
            if highwater is None or fetched_at is None or offset + 1 < highwater:
                continue
            at_ms = self.clock.shifted(fetched_at)
            if at_ms - self.caught_up_marked.get(tp, 0) >= CAUGHT_UP_EVERY_MS:
                caught_up[tp.partition] = (offset, at_ms)
                self.caught_up_marked[tp] = at_ms
        if not caught_up:
            return
        moved = await self.redis_call(lambda: self.writer.mark_caught_up(caught_up)) or {}
        for tp in [tp for tp in self.applied if tp.partition in moved]:
            # An idle partition writes no batch that could be fenced; this is where it
            # learns that Redis lost writes, and re-reads them.
            self.stats["fenced"] += 1
            FENCED.inc()
            log.warning(
                "partition %d: Redis holds offset %d, expected %d; resuming from there",
                tp.partition, moved[tp.partition], self.applied[tp],
            )  # fmt: skip
            self.applied[tp] = moved[tp.partition]
            self.consumer.seek(tp, moved[tp.partition] + 1)
            self.caught_up_marked.pop(tp, None)

    async def commit_advisory(self) -> None:
        """Tell Kafka how far we are, for standard lag tools; Redis stays the source of truth."""
        offsets = {tp: offset + 1 for tp, offset in self.applied.items() if offset >= 0}
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as error:
            log.debug("advisory commit failed: %r", error)

    async def consume(self) -> None:
        """Poll and apply until stop is set; a batch in progress is always finished."""
        while not self.stop.is_set():
            fetched = await self.consumer.getmany(
                timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_RECORDS_PER_POLL
            )
            # Partitions apply side by side: one decodes while Redis runs another's step.
            # Each is fenced by its own offset, and a partition has one batch at a time.
            async with asyncio.TaskGroup() as group:
                for tp, messages in fetched.items():
                    group.create_task(self.apply(tp, messages))
            if fetched:
                await self.commit_advisory()
            await self.register_partitions()
            await self.mark_caught_up()
            await self.redis_call(
                lambda: self.heartbeat.beat(partitions=sorted(tp.partition for tp in self.applied))
            )


async def run(settings: Settings) -> None:
    """Consume in group settings.consumer_group until SIGTERM, then drain and leave the group."""
    await ensure_topic(settings.kafka_bootstrap, settings.usage_topic, settings.topic_partitions)
    serve_metrics(settings.metrics_port)
    keys = KeyLayout(settings.redis_key_prefix, settings.usage_topic)
    redis = connect(settings.redis_url)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    stop = asyncio.Event()
    aggregator = Aggregator(
        consumer,
        BucketWriter(redis, keys, settings.dedup_window_s * 1000),
        redis,
        keys,
        stop,
        settings.clock(),
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await consumer.start()
        consumer.subscribe([settings.usage_topic], listener=aggregator)
        log.info(
            "aggregator consuming %s in group %s", settings.usage_topic, settings.consumer_group
        )
        await aggregator.consume()
    finally:
        # Bounded: with Kafka gone, leaving the group could otherwise wait for ever. Nothing
        # is lost by cutting it short; Redis holds the offsets.
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
                await aggregator.commit_advisory()
                await consumer.stop()
        except TimeoutError:
            log.warning(
                "Kafka did not answer within %.0f s while leaving the group", SHUTDOWN_TIMEOUT_S
            )
        with contextlib.suppress(RedisError):
            await aggregator.heartbeat.stop()
        await redis.aclose()
        log.info("aggregator stopped: %s", dict(aggregator.stats))
