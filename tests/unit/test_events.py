"""Event validation: every rule of §4, each with its message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from common.events import (
    FieldError,
    InvalidEvent,
    UsageEvent,
    validate_event,
)
from common.services import Service
from common.wire import from_wire, pack_wire, to_wire

SERVICES = {
    "SP-A": Service("SP-A", ZoneInfo("UTC"), ("k" * 16,), ("r" * 16,)),
    "SP-K": Service("SP-K", ZoneInfo("Asia/Kolkata"), ("j" * 16,), ("q" * 16,)),
}
NOW_MS = int(datetime(2026, 11, 22, 20, 0, tzinfo=UTC).timestamp() * 1000)
BASE = {"service_id": "SP-A", "account_id": "XYZ", "module": "Reports", "activity": "Export"}


def errors_of(raw: Any, default_service: str | None = None) -> list[FieldError]:
    with pytest.raises(InvalidEvent) as caught:
        validate_event(raw, SERVICES, NOW_MS, default_service)
    return caught.value.errors


def test_minimal_event_gets_defaults() -> None:
    event = validate_event(BASE, SERVICES, NOW_MS)
    assert event == UsageEvent(
        service_id="SP-A", account_id="XYZ", user_id="", module="Reports", activity="Export",
        count=1, event_ms=NOW_MS, received_ms=NOW_MS, day="2026-11-22",
    )  # fmt: skip


def test_service_comes_from_the_key_when_the_event_omits_it() -> None:
    raw = {k: v for k, v in BASE.items() if k != "service_id"}
    assert validate_event(raw, SERVICES, NOW_MS, "SP-K").day == "2026-11-23"  # 01:30 in Kolkata


def test_every_optional_field_round_trips_through_kafka_form() -> None:
    raw = {
        **BASE, "user_id": "joe@acme.com", "count": 1_000_000,
        "timestamp": "2026-11-22T23:30:00+05:30", "event_id": "e" * 100,
        "account_name": "Acme", "parent_id": "ACME-INC", "account_type": "subsidiary",
        "product_id": "widgets", "account_attributes": {"Licenses": 25, "Tier": "gold"},
        "user_attributes": {"Admin": True, "Score": 0.5},
    }  # fmt: skip
    event = validate_event(raw, SERVICES, NOW_MS)
    assert event.day == "2026-11-22"
    assert event.event_ms == int(datetime(2026, 11, 22, 18, 0, tzinfo=UTC).timestamp() * 1000)
    assert event.account == {
        "account_name": "Acme", "parent_id": "ACME-INC", "account_type": "subsidiary",
        "product_id": "widgets",
    }  # fmt: skip
    assert from_wire(to_wire(event)) == [event]
    assert from_wire(pack_wire([to_wire(event), to_wire(event)])) == [event, event]


def test_attribute_update_without_activity_counts_nothing() -> None:
    event = validate_event(
        {"service_id": "SP-A", "account_id": "X", "parent_id": "P"}, SERVICES, NOW_MS
    )
    assert not event.counts_usage


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"account_id": None}, [FieldError("account_id", "is required")]),
        ({"account_id": ""}, [FieldError("account_id", "is required")]),
        ({"account_id": 7}, [FieldError("account_id", "must be a string")]),
        ({"account_id": "x" * 257}, [FieldError("account_id", "must be 1 to 256 characters")]),
        ({"user_id": "a\nb"}, [FieldError("user_id", "must not contain control characters")]),
        ({"user_id": "a\x85b"}, [FieldError("user_id", "must not contain control characters")]),
        ({"activity": "a\ud800"}, [FieldError("activity", "must be valid Unicode text")]),
        ({"user_attributes": {"Seats": 2**64}},
         [FieldError("user_attributes", "attribute numbers must be finite and fit in 64 bits")]),
        ({"account_attributes": {"Plan": "\udfff"}},
         [FieldError("account_attributes", "attribute values must be valid Unicode text")]),
        ({"service_id": "SP-NONE"}, [FieldError("service_id", "is not a known service")]),
        ({"service_id": None}, [FieldError("service_id", "is required")]),
        ({"module": None}, [FieldError("module", "is required when activity is given")]),
        ({"activity": None}, [FieldError("activity", "is required when module is given")]),
        ({"module": "m" * 129}, [FieldError("module", "must be 1 to 128 characters")]),
        ({"count": 0}, [FieldError("count", "must be a whole number from 1 to 1000000")]),
        ({"count": 1_000_001}, [FieldError("count", "must be a whole number from 1 to 1000000")]),
        ({"count": True}, [FieldError("count", "must be a whole number from 1 to 1000000")]),
        ({"count": 2.5}, [FieldError("count", "must be a whole number from 1 to 1000000")]),
        ({"event_id": "e" * 101}, [FieldError("event_id", "must be 1 to 100 characters")]),
        ({"timestamp": "2026-11-22T10:00:00"},
         [FieldError("timestamp", "must be an ISO 8601 time with a UTC offset")]),
        ({"timestamp": 1763800000},
         [FieldError("timestamp", "must be an ISO 8601 time with a UTC offset")]),
        ({"timestamp": "2026-11-15T19:59:59Z"},
         [FieldError("timestamp", "is more than 7 days in the past")]),
        ({"timestamp": "2026-11-22T20:10:01+00:00"},
         [FieldError("timestamp", "is more than 10 minutes in the future")]),
        ({"account_attributes": []}, [FieldError("account_attributes", "must be an object")]),
        ({"account_attributes": {"": "x"}},
         [FieldError("account_attributes",
                     "attribute names must be 1 to 128 characters without control characters")]),
        ({"user_attributes": {"a": {"nested": 1}}},
         [FieldError("user_attributes", "attribute values must be strings, numbers or booleans")]),
        ({"user_attributes": {"a": "v" * 1025}},
         [FieldError("user_attributes", "attribute values must be at most 1024 characters")]),
        ({"account_attributes": {f"a{i}": i for i in range(30)},
          "user_attributes": {f"u{i}": i for i in range(21)}},
         [FieldError("account_attributes", "at most 50 attributes per event")]),
        ({"acount_id": "typo"}, [FieldError("acount_id", "is not a known field")]),
    ],
)  # fmt: skip
def test_invalid_field_is_named_with_its_rule(
    change: dict[str, Any], expected: list[FieldError]
) -> None:
    raw = {**BASE, **change}
    raw = {k: v for k, v in raw.items() if v is not None}
    assert errors_of(raw) == expected


def test_edges_of_the_ranges_are_accepted() -> None:
    raw = {
        **BASE, "account_id": "x" * 256, "module": "m" * 128, "count": 1,
        "timestamp": "2026-11-15T20:00:00Z", "account_attributes": {f"a{i}": "v" * 1024 for i in range(50)},
    }  # fmt: skip
    assert validate_event(raw, SERVICES, NOW_MS).day == "2026-11-15"
    ahead = {**BASE, "timestamp": "2026-11-22T20:10:00+00:00"}
    assert validate_event(ahead, SERVICES, NOW_MS).event_ms == NOW_MS + 600_000


def test_non_object_is_refused() -> None:
    assert errors_of(["not", "an", "object"]) == [FieldError("", "must be a JSON object")]
