"""Sum one partition's batch of Kafka records in memory before it touches Redis."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from common.events import UsageEvent, from_wire
from common.keys import bucket_field

log = logging.getLogger(__name__)

BucketId = tuple[str, str, str]  # (service_id, day, account_id)


@dataclass(frozen=True, slots=True)
class Record:
    """The parts of a Kafka record the aggregator uses."""

    offset: int
    value: bytes


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
    """Pre-aggregate records: one increment per distinct (bucket, user, module, activity)."""
    batch = PartitionBatch(partition, records[0].offset, records[-1].offset)
    increments: defaultdict[BucketId, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in records:
        try:
            events = from_wire(record.value)
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            # The collector validated every event; a record that cannot be read was not
            # written by it. Skip it rather than block the partition forever.
            log.error("partition %d offset %d is not an event: %r", partition, record.offset, error)
            batch.undecodable += 1
            continue
        for event in events:
            batch.max_received_ms = max(batch.max_received_ms, event.received_ms)
            if event.account or event.account_attributes or event.user_attributes:
                batch.account_updates.append(account_update(event))
            if event.counts_usage:
                batch.events += 1
                _add(batch, increments, event)
    batch.increments = {bucket: dict(fields) for bucket, fields in increments.items()}
    return batch


def account_update(event: UsageEvent) -> bytes:
    """The registry part of an event, queued in Redis for the flusher to write to SQL."""
    return orjson.dumps(
        {
            "s": event.service_id,
            "a": event.account_id,
            "d": event.day,
            "f": event.account,
            "aa": event.account_attributes,
            "u": event.user_id,
            "ua": event.user_attributes,
        }
    )


def _add(
    batch: PartitionBatch,
    increments: defaultdict[BucketId, defaultdict[str, int]],
    event: UsageEvent,
) -> None:
    bucket = (event.service_id, event.day, event.account_id)
    name = bucket_field(event.user_id, event.module, event.activity)
    if event.event_id:
        batch.deduplicated.append(DedupIncrement(event.event_id, bucket, name, event.count))
    else:
        increments[bucket][name] += event.count
