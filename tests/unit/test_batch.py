"""In-batch pre-aggregation before Redis."""

from __future__ import annotations

from aggregator.batch import DedupIncrement, RawRecord, summarize
from common.events import UsageEvent, to_wire
from common.keys import bucket_field


def record(offset: int, **fields: object) -> RawRecord:
    base: dict[str, object] = {
        "service_id": "S", "account_id": "A", "user_id": "u", "module": "M", "activity": "a",
        "count": 1, "event_ms": 1, "received_ms": 10 + offset, "day": "2026-11-22",
    }  # fmt: skip
    base.update(fields)
    return RawRecord(offset, to_wire(UsageEvent(**base)))  # type: ignore[arg-type]


def test_same_bucket_and_field_are_summed_once() -> None:
    batch = summarize(
        2,
        [
            record(5, count=3),
            record(6),
            record(7, user_id="v"),
            record(8, account_id="B", day="2026-11-21"),
            record(9, activity="", module=""),  # attribute update: not counted
            record(10, event_id="e1", count=4),
            RawRecord(11, b"not json"),
        ],
    )
    assert (batch.partition, batch.first_offset, batch.last_offset) == (2, 5, 11)
    assert batch.increments == {
        ("S", "2026-11-22", "A"): {bucket_field("u", "M", "a"): 4, bucket_field("v", "M", "a"): 1},
        ("S", "2026-11-21", "B"): {bucket_field("u", "M", "a"): 1},
    }
    assert batch.deduplicated == [
        DedupIncrement("e1", ("S", "2026-11-22", "A"), bucket_field("u", "M", "a"), 4)
    ]
    assert (batch.events, batch.undecodable, batch.max_received_ms) == (5, 1, 20)
