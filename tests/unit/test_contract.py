"""The typed contract and the field-by-field checks agree: same events accepted, same errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from multidict import MultiDict

from collector.bodies import decode_events, service_ids_in, validate_batch
from collector.pixel import hit_event, pixel_event
from common.contract import Event
from common.events import FieldError, InvalidEvent, UsageEvent, validate_event
from tests.unit.test_hostile_input import (
    MARKER,
    NOW_MS,
    PROPERTY_SETTINGS,
    SERVICES,
    event_fields,
    json_values,
    parameter_names,
    tricky_text,
)

VALID = {"service_id": "SP-A", "account_id": "XYZ", "module": "Reports", "activity": "Export"}
field_values = st.one_of(
    st.sampled_from(["SP-A", "SP-{B}", "XYZ", "", "2026-11-22T19:00:00Z", "a\x85", "\udfff"]),
    st.integers(-(2**65), 2**65),
    st.dictionaries(tricky_text, st.one_of(tricky_text, st.integers(), st.floats()), max_size=3),
    json_values,
)
events = st.one_of(
    st.dictionaries(event_fields, field_values, max_size=8).map(lambda fields: {**VALID, **fields}),
    json_values,
)


def checked_one_by_one(
    items: list[Any],
) -> tuple[list[UsageEvent], list[tuple[int, FieldError]]]:
    """What the collector answered before the typed contract: each event checked as a dict."""
    accepted, errors = [], []
    for index, item in enumerate(items):
        try:
            accepted.append(validate_event(item, SERVICES, NOW_MS, "SP-A"))
        except InvalidEvent as invalid:
            errors.extend((index, error) for error in invalid.errors)
    return accepted, errors


@PROPERTY_SETTINGS
@given(batch=st.lists(events, min_size=1, max_size=4), as_batch=st.booleans())
def test_typed_decoding_accepts_and_refuses_as_the_field_checks_do(
    batch: list[Any], as_batch: bool
) -> None:
    document = {"batch": batch} if as_batch else batch[0]
    try:
        body = orjson.dumps(document)
    except TypeError:  # an integer JSON cannot carry through orjson
        return
    decoded = decode_events(body)
    assert not isinstance(decoded, web.Response)
    items = orjson.loads(body)
    expected = checked_one_by_one(items["batch"] if as_batch else [items])
    assert validate_batch(decoded, SERVICES, "SP-A", NOW_MS) == expected


def test_a_valid_batch_takes_the_typed_path() -> None:
    batch = [{**VALID, "user_id": f"u{i}", "count": i + 1} for i in range(100)]
    decoded = decode_events(orjson.dumps({"batch": batch}))
    assert isinstance(decoded, list)
    assert all(isinstance(item, Event) for item in decoded)
    events, errors = validate_batch(decoded, SERVICES, None, NOW_MS)
    assert (len(events), errors) == (100, [])
    assert events == checked_one_by_one(batch)[0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1", "body is not valid JSON"),
        (b'{"batch": {}}', "batch must be a list of event objects"),
        (b'{"batch": [], "x": 1}', "a batch body has only the field batch"),
        (b'{"batch": []}', "batch must hold at least one event"),
    ],
)
def test_unusable_bodies_are_refused_as_a_whole(body: bytes, message: str) -> None:
    refused = decode_events(body)
    assert isinstance(refused, web.Response)
    assert (refused.status, orjson.loads(refused.body)) == (400, {"error": message})


@PROPERTY_SETTINGS
@given(
    params=st.lists(
        st.tuples(parameter_names, st.one_of(st.just(""), tricky_text.map(MARKER.__add__))),
        max_size=12,
    ),
    service_id=st.sampled_from(["SP-A", "SP-{B}", MARKER]),
)
def test_a_pixel_hit_gives_the_event_or_first_error_the_field_checks_give(
    params: list[tuple[str, str]], service_id: str
) -> None:
    query = MultiDict([("sdr_s", service_id), *params])
    try:
        expected: UsageEvent | FieldError = validate_event(pixel_event(query), SERVICES, NOW_MS)
    except InvalidEvent as invalid:
        expected = invalid.errors[0]
    try:
        got: UsageEvent | FieldError = hit_event(query, SERVICES, NOW_MS)
    except InvalidEvent as invalid:
        got = invalid.errors[0]
    assert got == expected


def test_services_named_in_a_batch_ignore_what_is_not_an_id() -> None:
    batch = [{"service_id": []}, {"service_id": {}}, {"service_id": "SP-A"}, 3, Event("X")]
    assert service_ids_in(batch, SERVICES) == {"SP-A"}
