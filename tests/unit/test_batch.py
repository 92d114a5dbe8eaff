"""In-batch pre-aggregation before Redis."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from aggregator.batch import DedupIncrement, RawRecord, summarize
from common.events import UsageEvent
from common.keys import bucket_field
from common.wire import pack_wire, to_wire


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
    assert batch.carried == 6  # every event of the readable records, the attribute update too


def packed(offset: int, *events: UsageEvent) -> RawRecord:
    return RawRecord(offset, pack_wire([to_wire(event) for event in events]))


def usage(account_id: str = "A", **fields: Any) -> UsageEvent:
    base: dict[str, Any] = {
        "service_id": "S", "account_id": account_id, "user_id": "u", "module": "M",
        "activity": "a", "count": 1, "event_ms": 1, "received_ms": 10, "day": "2026-11-22",
    }  # fmt: skip
    return UsageEvent(**{**base, **fields})


PACKED = [
    packed(3, usage(count=2), usage(received_ms=30), usage("B")),
    packed(4, usage(event_id="e1"), usage(account={"account_name": "Acme"}, count=5)),
    packed(5, usage(activity="", module="", user_attributes={"plan": "pro"}), usage("B")),
]


@pytest.mark.parametrize("garbage", [False, True])
def test_packed_records_decode_together_or_one_by_one(garbage: bool) -> None:
    records = [*PACKED, RawRecord(6, b"[1]")] if garbage else PACKED  # [1]: JSON, not events
    batch = summarize(0, records)
    assert batch.increments == {
        ("S", "2026-11-22", "A"): {bucket_field("u", "M", "a"): 8},
        ("S", "2026-11-22", "B"): {bucket_field("u", "M", "a"): 2},
    }
    assert batch.deduplicated == [
        DedupIncrement("e1", ("S", "2026-11-22", "A"), bucket_field("u", "M", "a"), 1)
    ]
    assert [orjson.loads(update) for update in batch.account_updates] == [
        {"s": "S", "a": "A", "d": "2026-11-22", "f": {"account_name": "Acme"}, "aa": {},
         "u": "u", "ua": {}},
        {"s": "S", "a": "A", "d": "2026-11-22", "f": {}, "aa": {}, "u": "u",
         "ua": {"plan": "pro"}},
    ]  # fmt: skip
    assert (batch.events, batch.carried, batch.max_received_ms) == (6, 7, 30)
    assert (batch.undecodable, batch.last_offset) == (int(garbage), 6 if garbage else 5)
