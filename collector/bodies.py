"""Event bodies (one event or {"batch": [...]}) decoded into the contract's types, and checked.

The fast path decodes the request bytes straight into typed Events (common.contract) in one
compiled pass. msgspec stops at the first error, so a body that fails it is read again as
plain JSON and every event is checked by common.events.validate_event, which lists every
invalid field with its message: the 400 names them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec
import orjson
from aiohttp import web

from common.contract import MAX_BATCH_EVENTS, Batch, Event
from common.event_rules import json_texts_clean, usage_event
from common.events import FieldError, InvalidEvent, UsageEvent, validate_event
from common.http import json_error
from common.services import Service

# A batch body has the one field batch, so it starts with it (an escaped name takes the
# slow path, which reads it all the same).
BATCH_BODY = re.compile(rb'\s*\{\s*"batch"\s*:')
BATCH_DECODER = msgspec.json.Decoder(Batch)
EVENT_DECODER = msgspec.json.Decoder(Event)


def decode_events(body: bytes) -> list[Any] | web.Response:
    """The body's events: typed Events if all fit the contract's types, else the JSON items.

    An error response when the body as a whole is unusable.
    """
    if json_texts_clean(body):
        try:
            if BATCH_BODY.match(body):
                return BATCH_DECODER.decode(body).batch
            return [EVENT_DECODER.decode(body)]
        except msgspec.DecodeError:  # also a ValidationError: the slow path says what is wrong
            pass
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return json_error(400, "body is not valid JSON")
    if isinstance(document, dict) and "batch" in document:
        batch = document["batch"]
        if not isinstance(batch, list):
            return json_error(400, "batch must be a list of event objects")
        if len(document) > 1:
            return json_error(400, "a batch body has only the field batch")
    else:
        batch = [document]
    if not batch:
        return json_error(400, "batch must hold at least one event")
    if len(batch) > MAX_BATCH_EVENTS:
        return json_error(413, f"a request holds at most {MAX_BATCH_EVENTS} events")
    return batch


def validate_batch(
    batch: list[Any], services: Mapping[str, Service], default_service_id: str | None,
    received_ms: int,
) -> tuple[list[UsageEvent], list[tuple[int, FieldError]]]:  # fmt: skip
    """Validate every event; the request is atomic, so any error refuses all of them."""
    events: list[UsageEvent] = []
    errors: list[tuple[int, FieldError]] = []
    for index, item in enumerate(batch):
        if isinstance(item, Event):
            event = usage_event(item, services, received_ms, default_service_id)
            if event is not None:
                events.append(event)
                continue
            item = msgspec.to_builtins(item)
        try:
            events.append(validate_event(item, services, received_ms, default_service_id))
        except InvalidEvent as invalid:
            errors.extend((index, error) for error in invalid.errors)
    return events, errors


def service_ids_in(batch: list[Any], services: Mapping[str, Service]) -> set[str]:
    """The known services a batch names (unknown ones are refused by validation)."""
    named = (
        item.service_id if isinstance(item, Event) else item.get("service_id")
        for item in batch
        if isinstance(item, Event | dict)
    )
    return {service_id for service_id in named if isinstance(service_id, str)} & services.keys()
