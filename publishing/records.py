"""Events of concurrent requests packed into one Kafka record per partition."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

from aiokafka.partitioner import murmur2

from common.events import UsageEvent
from common.wire import pack_wire, to_wire

# A record stops taking events at this size: far below the producer's batch size and
# Kafka's 1 MB message limit, however large single events are.
MAX_RECORD_BYTES = 64 * 1024


@functools.lru_cache(maxsize=65_536)
def key_hash(key: bytes) -> int:
    """murmur2 of a record key, as Kafka's default partitioner takes it; remembered,
    because aiokafka computes it in pure Python (~5 µs) and accounts recur."""
    return int(murmur2(key)) & 0x7FFFFFFF


def partition_of(event: UsageEvent, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the event's (service, account) key."""
    return key_hash(event.kafka_key) % partitions


class PartitionRecord:
    """Events bound for one partition, sent as one record: a JSON array (see pack_wire).

    Every request with an event in it waits for `acknowledged`, set once Kafka has the
    record (acks=all) or with the reason it will not.
    """

    __slots__ = ("acknowledged", "encoded", "events", "partition", "size")

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.encoded: list[bytes] = []
        self.size = 1  # the brackets and the commas, with the events added
        self.events = 0
        self.acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def fits(self, encoded: bytes) -> bool:
        return not self.encoded or self.size + 1 + len(encoded) <= MAX_RECORD_BYTES

    def add(self, encoded: bytes) -> None:
        self.encoded.append(encoded)
        self.size += 1 + len(encoded)
        self.events += 1

    @property
    def value(self) -> bytes:
        return pack_wire(self.encoded)

    def settle(self, error: BaseException | None) -> None:
        """Tell the waiting requests how it went; an error nobody awaits is not logged."""
        if self.acknowledged.done():
            return
        if error is None:
            self.acknowledged.set_result(None)
        else:
            self.acknowledged.set_exception(error)
            self.acknowledged.exception()  # marks it retrieved: the waiters may have left


class RecordPacker:
    """Open records, one per partition, that concurrent requests fill until they are sent."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._open: dict[int, PartitionRecord] = {}
        self._full: list[PartitionRecord] = []

    def add(self, events: Sequence[UsageEvent]) -> list[PartitionRecord]:
        """Put events in their partitions' open records, in order; return the records used."""
        used: dict[int, PartitionRecord] = {}
        for event in events:
            partition = partition_of(event, self.partitions)
            encoded = to_wire(event)
            record = self._open.get(partition)
            if record is None or not record.fits(encoded):
                if record is not None:
                    self._full.append(record)
                record = self._open[partition] = PartitionRecord(partition)
            record.add(encoded)
            used[id(record)] = record
        return list(used.values())

    @property
    def has_full(self) -> bool:
        return bool(self._full)

    def take(self) -> list[PartitionRecord]:
        """Hand over every record to send, full ones first, and start afresh."""
        records = self._full + list(self._open.values())
        self._full, self._open = [], {}
        return records
