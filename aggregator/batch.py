"""Sum one partition's batch of Kafka records in memory before it touches Redis."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from common.events import counting_parts
from common.keys import bucket_field

log = logging.getLogger(__name__)

BucketId = tuple[str, str, str]  # (service_id, day, account_id)


class Record(Protocol):
    """The parts of a Kafka record the aggregator uses (aiokafka's ConsumerRecord has them)."""

    @property
    def offset(self) -> int: ...

    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record made by hand, for tests and tools."""

    offset: int
    value: bytes | None


@dataclass(frozen=True, slots=True)
class DedupIncrement:
    """An increment that counts only if its event_id has not been seen in the service."""

    event_id: str
    bucket: BucketId
    field: str
    count: int


@dataclass
class PartitionBatch:
    partition: int
    first_offset: int
    last_offset: int
    increments: dict[BucketId, dict[str, int]] = field(default_factory=dict)
    deduplicated: list[DedupIncrement] = field(default_factory=list)
    max_received_ms: int = 0
    events: int = 0
    undecodable: int = 0
    account_updates: list[bytes] = field(default_factory=list)

    @property
    def buckets(self) -> set[BucketId]:
        return set(self.increments) | {item.bucket for item in self.deduplicated}


def summarize(partition: int, records: Sequence[Record]) -> PartitionBatch:
    """Pre-aggregate records: one increment per distinct (bucket, user, module, activity).

    Reads the records' counting parts as plain tuples, without a UsageEvent per event.
    """
    batch = PartitionBatch(partition, records[0].offset, records[-1].offset)
    increments: defaultdict[BucketId, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    field_names: dict[tuple[str, str, str], str] = {}
    for record in records:
        try:
            events = counting_parts(record.value)
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            # The collector validated every event; a record that cannot be read was not
            # written by it. Skip it rather than block the partition forever.
            log.error("partition %d offset %d is not an event: %r", partition, record.offset, error)
            batch.undecodable += 1
            continue
        for received_ms, bucket, parts, count, event_id, registry in events:
            batch.max_received_ms = max(batch.max_received_ms, received_ms)
            if registry is not None:  # queued in Redis for the flusher to write to SQL
                batch.account_updates.append(orjson.dumps(registry))
            if not parts[2]:
                continue  # an attribute/hierarchy update, no activity to count
            batch.events += 1
            name = field_names.get(parts)
            if name is None:
                name = field_names[parts] = bucket_field(*parts)
            if event_id:
                batch.deduplicated.append(DedupIncrement(event_id, bucket, name, count))
            else:
                increments[bucket][name] += count
    batch.increments = {bucket: dict(fields) for bucket, fields in increments.items()}
    return batch
