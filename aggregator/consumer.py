"""The consumer loop: getmany batches, one atomic Redis step per partition batch."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import Counter

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from redis.asyncio import Redis

from aggregator.batch import Record, summarize
from aggregator.buckets import BucketWriter
from common.keys import KeyLayout
from common.settings import Settings
from common.topics import ensure_topic

log = logging.getLogger(__name__)

MAX_RECORDS_PER_POLL = 20_000
POLL_TIMEOUT_MS = 500


class Aggregator(ConsumerRebalanceListener):  # type: ignore[misc]
    """Counts a consumer's partitions into Redis; the offsets stored there are the truth."""

    def __init__(self, consumer: AIOKafkaConsumer, writer: BucketWriter, redis: Redis,
                 keys: KeyLayout) -> None:  # fmt: skip
        self.consumer = consumer
        self.writer = writer
        self.redis = redis
        self.keys = keys
        self.applied: dict[TopicPartition, int] = {}
        self.stats: Counter[str] = Counter()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Resume each new partition right after the offset stored with its counts."""
        if assigned:
            await self.redis.sadd(self.keys.partitions(), *(tp.partition for tp in assigned))
        for tp in assigned:
            stored = await self.writer.stored_offset(tp.partition)
            self.applied[tp] = stored
            self.consumer.seek(tp, stored + 1)
        log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self.applied.pop(tp, None)
        if revoked:
            log.info("revoked partitions %s", sorted(tp.partition for tp in revoked))

    async def apply(self, tp: TopicPartition, messages: list[Record]) -> None:
        """Apply one partition's fetched records exactly once."""
        expected = self.applied.get(tp)
        if expected is None:
            return  # revoked while the batch was in flight
        fresh = [m for m in messages if m.offset > expected]
        if not fresh:
            return
        batch = summarize(tp.partition, fresh)
        result = await self.writer.apply(batch, expected, int(time.time() * 1000))
        if result.applied:
            self.applied[tp] = batch.last_offset
            self.stats["events"] += batch.events
            self.stats["batches"] += 1
            self.stats["duplicates"] += result.duplicates
            self.stats["undecodable"] += batch.undecodable
            return
        # Another consumer moved this partition on (we were a zombie) or Redis went back
        # in time (restored from its AOF): resume from what Redis holds.
        self.stats["fenced"] += 1
        log.warning(
            "partition %d: Redis holds offset %d, expected %d; resuming from there",
            tp.partition, result.stored_offset, expected,
        )  # fmt: skip
        if tp in self.consumer.assignment():
            self.applied[tp] = result.stored_offset
            self.consumer.seek(tp, result.stored_offset + 1)

    async def commit_advisory(self) -> None:
        """Tell Kafka how far we are, for standard lag tools; Redis stays the source of truth."""
        offsets = {tp: offset + 1 for tp, offset in self.applied.items() if offset >= 0}
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as error:
            log.debug("advisory commit failed: %r", error)

    async def consume(self, stop: asyncio.Event) -> None:
        """Poll and apply until stop is set; a batch in progress is always finished."""
        while not stop.is_set():
            fetched = await self.consumer.getmany(
                timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_RECORDS_PER_POLL
            )
            for tp, messages in fetched.items():
                await self.apply(tp, [Record(m.offset, m.value) for m in messages])
            if fetched:
                await self.commit_advisory()


async def run(settings: Settings) -> None:
    """Consume in group settings.consumer_group until SIGTERM, then drain and leave the group."""
    await ensure_topic(settings.kafka_bootstrap, settings.usage_topic, settings.topic_partitions)
    keys = KeyLayout(settings.redis_key_prefix, settings.usage_topic)
    redis = Redis.from_url(settings.redis_url)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    aggregator = Aggregator(
        consumer, BucketWriter(redis, keys, settings.dedup_window_s * 1000), redis, keys
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await consumer.start()
        consumer.subscribe([settings.usage_topic], listener=aggregator)
        log.info(
            "aggregator consuming %s in group %s", settings.usage_topic, settings.consumer_group
        )
        await aggregator.consume(stop)
        await aggregator.commit_advisory()
    finally:
        await consumer.stop()
        await redis.aclose()
        log.info("aggregator stopped: %s", dict(aggregator.stats))
