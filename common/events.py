"""The usage event: validation of what clients send (its form on Kafka is common.wire)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import orjson

from common.contract import (
    MAX_ATTRIBUTE_NAME_CHARS,
    MAX_ATTRIBUTE_VALUE_CHARS,
    MAX_ATTRIBUTES,
    MAX_COUNT,
    MAX_EVENT_ID_CHARS,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
)
from common.days import local_day
from common.services import Service

MAX_PAST_MS = 7 * 24 * 3600 * 1000
MAX_FUTURE_MS = 10 * 60 * 1000

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Lone UTF-16 halves: no UTF-8 form, so no Kafka record or Redis key could hold them.
SURROGATES = re.compile(r"[\ud800-\udfff]")

AttributeValue = str | int | float | bool
ACCOUNT_FIELDS = ("account_name", "parent_id", "account_type", "product_id")
KNOWN_FIELDS = frozenset(
    {
        "service_id", "account_id", "user_id", "module", "activity", "count", "timestamp",
        "event_id", "account_name", "parent_id", "account_type", "product_id",
        "account_attributes", "user_attributes",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class UsageEvent(NamedTuple):
    """One accepted event, as the collector puts it on Kafka.

    A named tuple rather than a frozen dataclass: just as immutable, and built several
    times faster, which counts at one construction per event in the collector and the
    aggregator. The mapping defaults are shared and must never be mutated.
    """

    service_id: str
    account_id: str
    user_id: str
    module: str
    activity: str
    count: int  # type: ignore[assignment]  # shadows tuple.count, which nothing calls
    event_ms: int
    received_ms: int
    day: str
    event_id: str = ""
    account: Mapping[str, str] = {}
    account_attributes: Mapping[str, AttributeValue] = {}
    user_attributes: Mapping[str, AttributeValue] = {}

    @property
    def counts_usage(self) -> bool:
        """False for an attribute/hierarchy update that carries no activity."""
        return bool(self.activity)

    @property
    def kafka_key(self) -> bytes:
        """Partition by account so one account's events stay in order on one partition."""
        return orjson.dumps([self.service_id, self.account_id])


class InvalidEvent(ValueError):
    """An event object broke the contract; errors says which fields and why."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field} {e.message}" for e in errors))
        self.errors = errors


def validate_event(
    raw: object,
    services: Mapping[str, Service],
    received_ms: int,
    default_service_id: str | None = None,
) -> UsageEvent:
    """Check one event object against §4 and return it as a UsageEvent, or raise InvalidEvent.

    The slow path beside common.contract's decoding: it names every invalid field.
    """
    if not isinstance(raw, dict):
        raise InvalidEvent([FieldError("", "must be a JSON object")])
    errors: list[FieldError] = []
    if not KNOWN_FIELDS.issuperset(raw):  # cheaper than the difference, in the common case
        for name in sorted(raw.keys() - KNOWN_FIELDS):
            errors.append(FieldError(str(name)[:MAX_NAME_CHARS], "is not a known field"))

    def text(name: str, max_chars: int, required: bool = False) -> str:
        value = raw.get(name)
        if value is None or value == "":
            if required:
                errors.append(FieldError(name, "is required"))
            return ""
        message = text_problem(value, max_chars)
        if message:
            errors.append(FieldError(name, message))
            return ""
        return str(value)

    service_id = text("service_id", MAX_ID_CHARS) or (default_service_id or "")
    service = services.get(service_id)
    if not service_id and not any(e.field == "service_id" for e in errors):
        errors.append(FieldError("service_id", "is required"))
    elif service_id and service is None:
        errors.append(FieldError("service_id", "is not a known service"))
    account_id = text("account_id", MAX_ID_CHARS, required=True)
    user_id = text("user_id", MAX_ID_CHARS)
    module = text("module", MAX_NAME_CHARS)
    activity = text("activity", MAX_NAME_CHARS)
    if activity and not module and not _has_error(errors, "module"):
        errors.append(FieldError("module", "is required when activity is given"))
    if module and not activity and not _has_error(errors, "activity"):
        errors.append(FieldError("activity", "is required when module is given"))
    count = _count(raw.get("count", 1), errors)
    event_id = text("event_id", MAX_EVENT_ID_CHARS)
    account = {
        name: value
        for name in ACCOUNT_FIELDS
        if name in raw and (value := text(name, MAX_ID_CHARS))  # most events carry none
    }
    account_attributes = parse_attributes(
        raw.get("account_attributes"), "account_attributes", errors
    )
    user_attributes = parse_attributes(raw.get("user_attributes"), "user_attributes", errors)
    if len(account_attributes) + len(user_attributes) > MAX_ATTRIBUTES:
        errors.append(
            FieldError("account_attributes", f"at most {MAX_ATTRIBUTES} attributes per event")
        )
    event_ms = _event_time(raw.get("timestamp"), received_ms, errors)
    if errors or service is None:
        raise InvalidEvent(errors)
    return UsageEvent(
        service_id=service_id,
        account_id=account_id,
        user_id=user_id,
        module=module,
        activity=activity,
        count=count,
        event_ms=event_ms,
        received_ms=received_ms,
        day=local_day(event_ms, service.timezone).isoformat(),
        event_id=event_id,
        account=account,
        account_attributes=account_attributes,
        user_attributes=user_attributes,
    )


def text_problem(value: object, max_chars: int) -> str:
    """Say what is wrong with an id or name, or return '' when it is fine."""
    if not isinstance(value, str):
        return "must be a string"
    if not 1 <= len(value) <= max_chars:
        return f"must be 1 to {max_chars} characters"
    if CONTROL_CHARACTERS.search(value):
        return "must not contain control characters"
    if SURROGATES.search(value):
        return "must be valid Unicode text"
    return ""


def _has_error(errors: list[FieldError], name: str) -> bool:
    return any(e.field == name for e in errors)


def _count(value: object, errors: list[FieldError]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        errors.append(FieldError("count", f"must be a whole number from 1 to {MAX_COUNT}"))
        return 0
    return value


def _event_time(value: object, received_ms: int, errors: list[FieldError]) -> int:
    if value is None:
        return received_ms
    parsed = None
    if isinstance(value, str) and len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None or parsed.tzinfo is None:
        errors.append(FieldError("timestamp", "must be an ISO 8601 time with a UTC offset"))
        return 0
    event_ms = int(parsed.timestamp() * 1000)
    if event_ms < received_ms - MAX_PAST_MS:
        errors.append(FieldError("timestamp", "is more than 7 days in the past"))
    elif event_ms > received_ms + MAX_FUTURE_MS:
        errors.append(FieldError("timestamp", "is more than 10 minutes in the future"))
    return event_ms


def parse_attributes(
    value: object, name: str, errors: list[FieldError]
) -> dict[str, AttributeValue]:
    """Check an attributes object (names to strings, numbers or booleans), noting errors."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(FieldError(name, "must be an object"))
        return {}
    attributes: dict[str, AttributeValue] = {}
    for key, item in value.items():
        if text_problem(key, MAX_ATTRIBUTE_NAME_CHARS):
            errors.append(
                FieldError(name, f"attribute names must be 1 to {MAX_ATTRIBUTE_NAME_CHARS} "
                                 "characters without control characters")
            )  # fmt: skip
        elif not isinstance(item, str | int | float | bool):
            errors.append(FieldError(name, "attribute values must be strings, numbers or booleans"))
        elif isinstance(item, str) and len(item) > MAX_ATTRIBUTE_VALUE_CHARS:
            errors.append(
                FieldError(name, f"attribute values must be at most "
                                 f"{MAX_ATTRIBUTE_VALUE_CHARS} characters")
            )  # fmt: skip
        elif isinstance(item, int | float) and not storable_number(item):
            errors.append(FieldError(name, "attribute numbers must be finite and fit in 64 bits"))
        elif isinstance(item, str) and SURROGATES.search(item):
            errors.append(FieldError(name, "attribute values must be valid Unicode text"))
        elif isinstance(item, str) and CONTROL_CHARACTERS.search(item):
            errors.append(FieldError(name, "attribute values must not contain control characters"))
        else:
            attributes[key] = item
            continue
        break
    return attributes


def storable_number(value: int | float) -> bool:
    """orjson (and so Kafka's form) holds 64-bit integers and finite floats only."""
    if isinstance(value, float):
        return math.isfinite(value)
    return -(2**63) <= value < 2**64
