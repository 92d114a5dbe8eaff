"""The usage event's form on Kafka: compact JSON objects, packed into one array per record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import msgspec
import orjson

from common.events import AttributeValue, UsageEvent


def to_wire(event: UsageEvent) -> bytes:
    """Encode an event for Kafka: compact JSON, optional parts left out."""
    wire: dict[str, Any] = {
        "s": event.service_id,
        "a": event.account_id,
        "u": event.user_id,
        "m": event.module,
        "v": event.activity,
        "c": event.count,
        "t": event.event_ms,
        "r": event.received_ms,
        "d": event.day,
    }
    if event.event_id:
        wire["e"] = event.event_id
    if event.account:
        wire["ac"] = event.account
    if event.account_attributes:
        wire["aa"] = event.account_attributes
    if event.user_attributes:
        wire["ua"] = event.user_attributes
    return orjson.dumps(wire)


def pack_wire(encoded: Sequence[bytes]) -> bytes:
    """Join events encoded by to_wire into the value of one Kafka record: a JSON array."""
    return b"[" + b",".join(encoded) + b"]"


def from_wire(payload: bytes | None) -> list[UsageEvent]:
    """Decode a record written by pack_wire, or a single event written by to_wire."""
    return [_from_wire_object(item) for item in _wire_objects(payload)]


class WireEvent(msgspec.Struct, gc=False):
    """An event as to_wire put it on Kafka, decoded straight into slots (no dict per event)."""

    s: str  # service_id
    a: str  # account_id
    u: str  # user_id
    m: str  # module
    v: str  # activity; "" for an attribute/hierarchy update, which counts nothing
    c: int  # count
    t: int  # event_ms
    r: int  # received_ms
    d: str  # day
    e: str = ""  # event_id
    ac: dict[str, str] | None = None
    aa: dict[str, AttributeValue] | None = None
    ua: dict[str, AttributeValue] | None = None


# A record is a JSON array of wire events (pack_wire), or one event (to_wire).
_ONE_RECORD = msgspec.json.Decoder(list[WireEvent] | WireEvent)
_RECORDS = msgspec.json.Decoder(list[list[WireEvent]])

# What decoding a record that the collector did not write raises.
WIRE_ERRORS = (msgspec.MsgspecError, TypeError, ValueError)


def decode_records(payloads: Sequence[bytes | None]) -> list[list[WireEvent]]:
    """Decode records written by pack_wire (or to_wire, alone): each one's events, in order.

    Several records are joined into one JSON array of arrays and decoded in one compiled
    pass: the cost per record is a few bytes copied, not a call. Raises one of WIRE_ERRORS
    if any record is not an array of wire events; the caller can then decode them one by
    one to find it. Everything is decoded before any of it is returned.
    """
    if len(payloads) == 1:
        if payloads[0] is None:
            raise TypeError("a record without a value")
        events = _ONE_RECORD.decode(payloads[0])
        return [[events] if isinstance(events, WireEvent) else events]
    joined = b"[" + b",".join(cast(Sequence[bytes], payloads)) + b"]"  # TypeError on None
    records = _RECORDS.decode(joined)
    if len(records) != len(payloads):  # records that are not arrays on their own
        raise ValueError("records do not split into one array each")
    return records


def registry_part(event: WireEvent) -> dict[str, Any] | None:
    """The account and user attributes an event carries, for the registry; None if none."""
    if not event.ac and not event.aa and not event.ua:
        return None
    return {"s": event.s, "a": event.a, "d": event.d, "f": event.ac or {}, "aa": event.aa or {},
            "u": event.u, "ua": event.ua or {}}  # fmt: skip


def _wire_objects(payload: bytes | None) -> list[dict[str, Any]]:
    if payload is None:
        raise TypeError("a record without a value")
    wire = orjson.loads(payload)
    return wire if isinstance(wire, list) else [wire]


def _from_wire_object(wire: dict[str, Any]) -> UsageEvent:
    return UsageEvent(
        wire["s"], wire["a"], wire["u"], wire["m"], wire["v"], wire["c"], wire["t"], wire["r"],
        wire["d"], wire.get("e", ""), wire.get("ac", {}), wire.get("aa", {}), wire.get("ua", {}),
    )  # fmt: skip
