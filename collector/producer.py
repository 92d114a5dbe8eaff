"""The Kafka producer the collector answers through: a 2xx only after acks=all."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from collector.metrics import KAFKA_SEND_ERRORS, count_produced
from common.events import UsageEvent, pack_wire, to_wire
from common.settings import Settings

log = logging.getLogger(__name__)

# An account's events of one request share a Kafka record up to this size: far below the
# producer's batch size and Kafka's 1 MB message limit, however large single events are.
MAX_RECORD_BYTES = 64 * 1024


@functools.lru_cache(maxsize=65_536)
def key_hash(key: bytes) -> int:
    """murmur2 of a record key, as Kafka's default partitioner takes it; remembered,
    because aiokafka computes it in pure Python (~5 µs) and accounts recur."""
    return int(murmur2(key)) & 0x7FFFFFFF


def partition_of_key(key: bytes, all_partitions: list[int], available: list[int]) -> int:
    """Kafka's default partitioning of keyed records, with the key's hash remembered."""
    return all_partitions[key_hash(key) % len(all_partitions)]


def account_records(events: Sequence[UsageEvent]) -> list[tuple[bytes, bytes, int]]:
    """Pack events into (key, value, events in it) Kafka records: one per account, in order.

    The key stays the account's, so an account's events keep their partition and order;
    sharing a record saves aiokafka's per-message work in the collector and the
    aggregator alike. An account's events past MAX_RECORD_BYTES start another record.
    """
    chunks: dict[bytes, list[list[bytes]]] = {}
    sizes: dict[bytes, int] = {}  # of each account's last chunk: brackets, events, commas
    for event in events:
        key, encoded = event.kafka_key, to_wire(event)
        account_chunks = chunks.setdefault(key, [[]])
        if account_chunks[-1] and sizes[key] + 1 + len(encoded) > MAX_RECORD_BYTES:
            account_chunks.append([])
        size = sizes[key] + 1 + len(encoded) if len(account_chunks[-1]) else 2 + len(encoded)
        account_chunks[-1].append(encoded)
        sizes[key] = size
    return [
        (key, pack_wire(chunk), len(chunk)) for key, account in chunks.items() for chunk in account
    ]


class Unavailable(RuntimeError):
    """Events cannot be made durable right now; the client should retry (503)."""


class KafkaUnavailable(Unavailable):
    """Kafka did not acknowledge the events in time, or is known to be unreachable."""


class EventProducer:
    def __init__(self, settings: Settings) -> None:
        self.topic = settings.usage_topic
        self.timeout_s = settings.produce_timeout_ms / 1000
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            max_batch_size=256 * 1024,
            request_timeout_ms=settings.produce_timeout_ms,
            partitioner=partition_of_key,
        )
        self.reachable = False
        self._watch: asyncio.Task[None] | None = None

    async def start(self, attempts: int = 60) -> None:
        """Connect to Kafka, retrying for a while when it is not up yet."""
        for attempt in range(1, attempts + 1):
            try:
                await self._producer.start()
                self.reachable = True
                self._watch = asyncio.create_task(self._watch_reachability())
                return
            except KafkaError as error:
                if attempt == attempts:
                    raise
                log.warning("Kafka not reachable yet (%s); retrying", error)
                await asyncio.sleep(1)

    async def stop(self) -> None:
        """Send what is buffered, then disconnect."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        try:
            async with asyncio.timeout(self.timeout_s + 5):
                await self._producer.stop()
        except TimeoutError:
            log.error("Kafka did not take the last buffered events before shutdown")

    async def _watch_reachability(self) -> None:
        """Probe the cluster every second, so that requests fail fast while it is down."""
        while True:
            reachable = await self.is_reachable()
            if reachable != self.reachable:
                log.warning("Kafka is %s", "reachable again" if reachable else "unreachable")
            self.reachable = reachable
            await asyncio.sleep(1)

    async def publish(self, events: Sequence[UsageEvent]) -> None:
        """Put events on Kafka and return once all are acknowledged (acks=all, idempotent).

        Raises KafkaUnavailable when any is not acknowledged within the produce timeout,
        or at once, sending nothing, while the cluster is known to be unreachable.
        """
        if not self.reachable:
            raise KafkaUnavailable("Kafka is unreachable")
        try:
            async with asyncio.timeout(self.timeout_s):
                records = account_records(events)
                acknowledgements = [
                    await self._producer.send(self.topic, value, key=key)
                    for key, value, _ in records
                ]
                delivered = await asyncio.gather(*acknowledgements)
        except (KafkaError, TimeoutError) as error:
            KAFKA_SEND_ERRORS.inc()
            log.warning("Kafka did not acknowledge %d events: %r", len(events), error)
            raise KafkaUnavailable(str(error)) from error
        for metadata, (_, _, count) in zip(delivered, records, strict=True):
            count_produced(metadata.partition, count)

    async def is_reachable(self) -> bool:
        """Ask the cluster for metadata; True when it answers within a second."""
        try:
            async with asyncio.timeout(1):
                await self._producer.client.fetch_all_metadata()
        except (KafkaError, TimeoutError):
            return False
        return True
