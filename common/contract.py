"""The event contract, and the answers both apps share, as types checked in one decoding pass.

msgspec Structs with Meta constraints: its C decoder builds and checks a whole batch from the
request bytes in one pass, several times faster than dict checks in Python, and the same
types give the OpenAPI schemas (msgspec.json.schema_components), so the contract is written
once. What types cannot say (a known service, the time window, module with activity, 64-bit
numbers, control characters, lone surrogates) is checked in common.event_rules.
A body that fails here is read again by common.events.validate_event, which names every
invalid field with the messages clients know; the two agree (tests/unit/test_contract.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

MAX_ID_CHARS = 256
MAX_NAME_CHARS = 128
MAX_EVENT_ID_CHARS = 100
MAX_COUNT = 1_000_000
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_NAME_CHARS = 128
MAX_ATTRIBUTE_VALUE_CHARS = 1024
MAX_BATCH_EVENTS = 1000
MAX_TIMESTAMP_CHARS = 64

# The characters common.events.CONTROL_CHARACTERS refuses; a pattern both Python's re and
# ECMA-262 (JSON Schema) read alike.
NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"


def _text(max_chars: int, min_chars: int | None = None) -> Meta:
    # The pattern is for the document only: one regex per field was eight times the cost of
    # decoding, so common.event_rules scans a whole body (or a hit's parameters) once instead.
    return Meta(
        min_length=min_chars,
        max_length=max_chars,
        extra_json_schema={"pattern": NO_CONTROL_CHARACTERS},
    )


# Empty and null mean "not given", as they always have, so optional strings may be empty.
Id = Annotated[str, _text(MAX_ID_CHARS)]
Name = Annotated[str, _text(MAX_NAME_CHARS)]
RequiredId = Annotated[str, _text(MAX_ID_CHARS, min_chars=1)]
RequiredName = Annotated[str, _text(MAX_NAME_CHARS, min_chars=1)]
EventId = Annotated[str, _text(MAX_EVENT_ID_CHARS)]
AttributeName = Annotated[str, _text(MAX_ATTRIBUTE_NAME_CHARS, min_chars=1)]
AttributeValue = Annotated[str, _text(MAX_ATTRIBUTE_VALUE_CHARS)] | int | float | bool
Attributes = Annotated[dict[AttributeName, AttributeValue], Meta(max_length=MAX_ATTRIBUTES)]
Timestamp = Annotated[
    str,
    Meta(
        max_length=MAX_TIMESTAMP_CHARS,
        extra_json_schema={"format": "date-time"},
        description="ISO 8601 with a UTC offset, at most 7 days old or 10 minutes ahead; "
        "defaults to the time the collector received the event.",
    ),
]


def described(description: str) -> Meta:
    return Meta(description=description)


class Event(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One usage event. A new module or activity beyond the service's limit is refused
    (400); names the service already has still pass."""

    account_id: RequiredId
    service_id: (
        Annotated[Id, described("The service; with a server key, defaults to its own.")] | None
    ) = None
    user_id: Annotated[Id, described("Absent for account-level usage.")] | None = None
    module: Annotated[Name, described("Given together with activity.")] | None = None
    activity: (
        Annotated[Name, described("Without activity the event only updates the account.")] | None
    ) = None
    count: Annotated[int, Meta(ge=1, le=MAX_COUNT)] = 1
    timestamp: Timestamp | None = None
    event_id: (
        Annotated[EventId, described("Events of a service with the same id count once.")] | None
    ) = None
    account_name: Id | None = None
    parent_id: Id | None = None
    account_type: Id | None = None
    product_id: Id | None = None
    account_attributes: (
        Annotated[Attributes, described(f"At most {MAX_ATTRIBUTES} with user_attributes together.")]
        | None
    ) = None
    user_attributes: Annotated[Attributes, described("Attributes of user_id.")] | None = None


class Batch(msgspec.Struct, forbid_unknown_fields=True):
    """Several events, accepted or refused together."""

    batch: Annotated[list[Event], Meta(min_length=1, max_length=MAX_BATCH_EVENTS)]


class FieldProblem(msgspec.Struct, forbid_unknown_fields=True):
    index: Annotated[int, Meta(ge=0)]
    field: str
    message: str


class FieldErrors(msgspec.Struct, forbid_unknown_fields=True):
    """Every invalid field of a refused request: index in the batch, field and why."""

    errors: Annotated[list[FieldProblem], Meta(min_length=1)]


class Error(msgspec.Struct, forbid_unknown_fields=True):
    """Why a request was refused."""

    error: str


class Health(msgspec.Struct, forbid_unknown_fields=True):
    status: Literal["ok"] = "ok"
