"""Sum one partition's batch of Kafka records in memory before it touches Redis."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from common.keys import bucket_field
from common.wire import WIRE_ERRORS, WireEvent, decode_records, registry_part

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
    events: int = 0  # counted: with an activity
    carried: int = 0  # every event in the records, attribute updates too (lag in events)
    undecodable: int = 0
    account_updates: list[bytes] = field(default_factory=list)

    @property
    def buckets(self) -> set[BucketId]:
        return set(self.increments) | {item.bucket for item in self.deduplicated}


Sums = dict[tuple[str, str, str, str, str, str], int]  # (bucket..., user, module, activity)


def summarize(partition: int, records: Sequence[Record]) -> PartitionBatch:
    """Pre-aggregate records: one increment per distinct (bucket, user, module, activity).

    The records are decoded together into slotted structs and summed by plain tuples; a
    field name is encoded once per distinct key, not per event.
    """
    batch = PartitionBatch(partition, records[0].offset, records[-1].offset)
    sums: Sums = {}
    latest = counted = 0
    for events in decoded(partition, records, batch):
        batch.carried += len(events)
        for event in events:
            if event.r > latest:
                latest = event.r
            if event.e or event.ac or event.aa or event.ua:
                add_with_extras(batch, event, sums)
            elif event.v:  # else an attribute/hierarchy update, no activity to count
                counted += 1
                key = (event.s, event.d, event.a, event.u, event.m, event.v)
                sums[key] = sums.get(key, 0) + event.c
    batch.max_received_ms = latest
    batch.events += counted
    increments: defaultdict[BucketId, dict[str, int]] = defaultdict(dict)
    for (service_id, day, account_id, user_id, module, activity), count in sums.items():
        increments[(service_id, day, account_id)][bucket_field(user_id, module, activity)] = count
    batch.increments = dict(increments)
    return batch


def decoded(
    partition: int, records: Sequence[Record], batch: PartitionBatch
) -> list[list[WireEvent]]:
    """All records decoded at once; if one is not ours, one by one, skipping it."""
    try:
        return decode_records([record.value for record in records])
    except WIRE_ERRORS:
        pass  # find which
    readable = []
    for record in records:
        try:
            readable.extend(decode_records([record.value]))
        except WIRE_ERRORS as error:
            # The collector validated every event; a record that cannot be read was not
            # written by it. Skip it rather than block the partition forever.
            log.error("partition %d offset %d is not an event: %r", partition, record.offset, error)
            batch.undecodable += 1
    return readable


def add_with_extras(batch: PartitionBatch, event: WireEvent, sums: Sums) -> None:
    """Queue an event's attributes for the registry, and its event_id for dedup, in order."""
    registry = registry_part(event)
    if registry is not None:  # queued in Redis for the flusher to write to SQL
        batch.account_updates.append(orjson.dumps(registry))
    if not event.v:
        return
    batch.events += 1
    if event.e:
        name = bucket_field(event.u, event.m, event.v)
        batch.deduplicated.append(
            DedupIncrement(event.e, (event.s, event.d, event.a), name, event.c)
        )
    else:
        key = (event.s, event.d, event.a, event.u, event.m, event.v)
        sums[key] = sums.get(key, 0) + event.c
