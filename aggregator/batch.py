"""Sum one partition's batch of Kafka records in memory before it touches Redis."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from common.events import (
    WIRE_ERRORS,
    CountingKey,
    WireEvents,
    WireExtras,
    counting_parts,
    registry_part,
)
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
    events: int = 0  # counted: with an activity
    carried: int = 0  # every event in the records, attribute updates too (lag in events)
    undecodable: int = 0
    account_updates: list[bytes] = field(default_factory=list)

    @property
    def buckets(self) -> set[BucketId]:
        return set(self.increments) | {item.bucket for item in self.deduplicated}


def summarize(partition: int, records: Sequence[Record]) -> PartitionBatch:
    """Pre-aggregate records: one increment per distinct (bucket, user, module, activity).

    The records are decoded together, and equal counting keys tallied by a Counter (in C)
    before any Python work per key, so a batch costs a Python step per distinct key, not
    per record or event; only events with an event_id or attributes take a step of their
    own.
    """
    batch = PartitionBatch(partition, records[0].offset, records[-1].offset)
    plain: list[CountingKey] = []
    for events in decoded(partition, records, batch):
        batch.carried += len(events.keys)
        batch.max_received_ms = max(batch.max_received_ms, events.latest_received_ms)
        if events.extras is None:
            plain.extend(events.keys)
        else:
            add_with_extras(batch, events.keys, events.extras, plain)
    increments: defaultdict[BucketId, dict[str, int]] = defaultdict(dict)
    for key, times in Counter(plain).items():
        if not key.v:
            continue  # an attribute/hierarchy update, no activity to count
        batch.events += times
        fields = increments[(key.s, key.d, key.a)]
        name = bucket_field(key.u, key.m, key.v)
        fields[name] = fields.get(name, 0) + key.c * times
    batch.increments = dict(increments)
    return batch


def decoded(partition: int, records: Sequence[Record], batch: PartitionBatch) -> list[WireEvents]:
    """All records decoded at once; if one is not ours, one by one, skipping it."""
    try:
        return [counting_parts([record.value for record in records])]
    except WIRE_ERRORS:
        pass  # find which
    parts = []
    for record in records:
        try:
            parts.append(counting_parts([record.value]))
        except WIRE_ERRORS as error:
            # The collector validated every event; a record that cannot be read was not
            # written by it. Skip it rather than block the partition forever.
            log.error("partition %d offset %d is not an event: %r", partition, record.offset, error)
            batch.undecodable += 1
    return parts


def add_with_extras(
    batch: PartitionBatch, keys: list[CountingKey], extras: list[WireExtras],
    plain: list[CountingKey],
) -> None:  # fmt: skip
    """Queue a record's attributes for the registry and its event_ids for dedup, in order."""
    for key, extra in zip(keys, extras, strict=True):
        registry = registry_part(key, extra)
        if registry is not None:  # queued in Redis for the flusher to write to SQL
            batch.account_updates.append(orjson.dumps(registry))
        if not key.v:
            continue
        if extra.e:
            batch.events += 1
            name = bucket_field(key.u, key.m, key.v)
            batch.deduplicated.append(DedupIncrement(extra.e, (key.s, key.d, key.a), name, key.c))
        else:
            plain.append(key)
