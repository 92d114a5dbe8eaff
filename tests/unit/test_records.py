"""Packing events into Kafka records (per partition, in order, bounded in size), and
which failures call for a new producer."""

from __future__ import annotations

import pytest
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaConnectionError,
    KafkaError,
    LeaderNotAvailableError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from aiokafka.partitioner import DefaultPartitioner

from common.events import UsageEvent
from common.wire import from_wire
from publishing.kafka_producer import ProducerDiscarded, needs_replacing
from publishing.records import MAX_RECORD_BYTES, PartitionRecord, RecordPacker, partition_of

PARTITIONS = 12


def event(account_id: str, user_id: str = "u") -> UsageEvent:
    return UsageEvent("S", account_id, user_id, "M", "a", 1, 1, 1, "2026-11-23")


def accounts_on_one_partition(count: int) -> list[str]:
    wanted = partition_of(event("seed"), PARTITIONS)
    candidates = (f"acct-{i}" for i in range(10_000))
    same = [a for a in candidates if partition_of(event(a), PARTITIONS) == wanted]
    return same[:count]


async def test_concurrent_requests_share_a_partitions_record_in_order() -> None:
    a, b = accounts_on_one_partition(2)
    packer = RecordPacker(PARTITIONS)
    first = [event(a, "1"), event(b, "2")]
    second = [event(a, "3")]
    used_first, used_second = packer.add(first), packer.add(second)
    assert used_first == used_second  # one record, awaited by both requests
    [record] = packer.take()
    assert (record.partition, record.events) == (partition_of(first[0], PARTITIONS), 3)
    assert from_wire(record.value) == first + second
    assert packer.take() == []


async def test_events_of_other_partitions_go_to_other_records() -> None:
    events = [event(f"acct-{i}") for i in range(50)]
    packer = RecordPacker(PARTITIONS)
    used = packer.add(events)
    records = packer.take()
    assert used == records
    assert len(records) == len({partition_of(e, PARTITIONS) for e in events})
    for record in records:
        assert {partition_of(e, PARTITIONS) for e in from_wire(record.value)} == {record.partition}
    assert sorted(e.account_id for r in records for e in from_wire(r.value)) == sorted(
        e.account_id for e in events
    )


async def test_a_full_record_is_closed_below_the_size_limit_and_sent_first() -> None:
    events = [event("A", f"user-{i}-" + "x" * 200) for i in range(1000)]
    packer = RecordPacker(PARTITIONS)
    packer.add(events)
    assert packer.has_full
    records = packer.take()
    assert len(records) > 1
    assert all(len(record.value) <= MAX_RECORD_BYTES for record in records)
    assert [e for record in records for e in from_wire(record.value)] == events


def test_partitions_match_kafkas_default_partitioner_of_the_account_key() -> None:
    partitions = list(range(PARTITIONS))
    for account in ("acct-1", "acct-2", "a/b", "ünïcode"):
        key = event(account).kafka_key
        assert partition_of(event(account), PARTITIONS) == DefaultPartitioner()(
            key, partitions, partitions
        )


@pytest.mark.parametrize(
    ("error", "replace"),
    [
        (OutOfOrderSequenceNumber(), True),
        (UnknownProducerId(), True),
        (InvalidProducerEpoch(), True),
        (ProducerFenced(), True),
        (LeaderNotAvailableError(), True),  # a numbered batch expired: its sequence has a gap
        (NotLeaderForPartitionError(), True),
        (KafkaError("Unexpected error during batch delivery"), True),  # the sender died
        (ProducerDiscarded(), False),  # failed on purpose, by the replacement itself
    ],
)
def test_every_failed_delivery_but_a_discard_calls_for_a_new_producer(
    error: BaseException, replace: bool
) -> None:
    assert needs_replacing(error) is replace


async def test_a_failed_record_tells_its_waiters_and_nobody_else_need_listen() -> None:
    record = PartitionRecord(0)
    record.settle(KafkaConnectionError())
    record.settle(None)  # a late acknowledgement changes nothing
    with pytest.raises(KafkaConnectionError):
        await record.acknowledged
