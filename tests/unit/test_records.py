"""Packing events into Kafka records: per account, in order, bounded in size."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from collector.producer import MAX_RECORD_BYTES, account_records, partition_of_key
from common.events import UsageEvent, from_wire


def event(account_id: str, user_id: str = "u") -> UsageEvent:
    return UsageEvent("S", account_id, user_id, "M", "a", 1, 1, 1, "2026-11-23")


def test_an_accounts_events_share_one_record_in_order() -> None:
    events = [event("A", "1"), event("B", "2"), event("A", "3")]
    records = account_records(events)
    assert [(key, count) for key, _, count in records] == [
        (events[0].kafka_key, 2),
        (events[1].kafka_key, 1),
    ]
    assert from_wire(records[0][1]) == [events[0], events[2]]
    assert from_wire(records[1][1]) == [events[1]]


def test_a_large_account_batch_is_split_below_the_record_limit() -> None:
    events = [event("A", f"user-{i}-" + "x" * 200) for i in range(1000)]
    records = account_records(events)
    assert len(records) > 1
    assert all(len(value) <= MAX_RECORD_BYTES for _, value, _ in records)
    assert [e for _, value, _ in records for e in from_wire(value)] == events
    assert all(len(from_wire(value)) == count for _, value, count in records)


def test_partitions_match_kafkas_default_partitioner() -> None:
    partitions = list(range(12))
    for account in ("acct-1", "acct-2", "a/b", "ünïcode"):
        key = event(account).kafka_key
        assert partition_of_key(key, partitions, partitions) == DefaultPartitioner()(
            key, partitions, partitions
        )
