"""Any input, however hostile: a valid event or a clear refusal, never an exception; what is
accepted round-trips exactly through Kafka's form and the Redis key layout."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import MultiDict

from collector.pixel import PIXEL_PARAMETERS, pixel_error, pixel_event
from common.events import (
    CONTROL_CHARACTERS,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    InvalidEvent,
    UsageEvent,
    validate_event,
)
from common.keys import KeyLayout, bucket_field, decode_parts, encode_parts
from common.services import Service
from common.wire import from_wire, to_wire

SERVICES = {
    "SP-A": Service("SP-A", ZoneInfo("UTC"), ("k" * 16,), ("r" * 16,)),
    "SP-{B}": Service("SP-{B}", ZoneInfo("Pacific/Chatham"), ("j" * 16,), ("q" * 16,)),
}
NOW_MS = int(datetime(2026, 11, 22, 20, 0, tzinfo=UTC).timestamp() * 1000)
# Input values carry this marker, which no fixed message holds, to catch any echo.
MARKER = "QZX"
PIXEL_ERROR_FORM = re.compile(r"(sdr_[a-z_.<>]+ [a-z0-9 ,'()]+|invalid hit)")
KEYS = KeyLayout("usage", "usage-events")
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.too_slow])  # fmt: skip

# Separators, glob and hash-tag characters, quotes, Unicode (combining marks, astral
# planes, right-to-left), so that the crafted cases a naive encoding would confuse appear.
SEPARATORS = st.sampled_from(':/{}*?[]"\\,#.%| ')
tricky_text = st.text(alphabet=st.one_of(SEPARATORS, st.characters()), max_size=300)
keyable_text = st.text(
    alphabet=st.one_of(SEPARATORS, st.characters(blacklist_categories=("Cs",))), max_size=300
)
valid_id = st.text(
    alphabet=st.one_of(SEPARATORS, st.characters(blacklist_categories=("Cc", "Cs"))),
    min_size=1,
    max_size=MAX_ID_CHARS,
).filter(lambda text: not CONTROL_CHARACTERS.search(text))
valid_name = valid_id.filter(lambda text: len(text) <= MAX_NAME_CHARS)
parameter_names = st.one_of(
    st.sampled_from([*PIXEL_PARAMETERS, "sdr_o.Plan", "sdr_u.Role", "r", "sdrurl"]),
    st.text(max_size=20).map(lambda text: "sdr_o." + text),
    st.text(max_size=20).map(lambda text: "sdr_u." + text),
    st.text(max_size=20),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | tricky_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
event_fields = st.sampled_from(
    ["service_id", "account_id", "user_id", "module", "activity", "count", "timestamp",
     "event_id", "account_name", "parent_id", "account_attributes", "user_attributes", "x"]
)  # fmt: skip


@PROPERTY_SETTINGS
@given(
    params=st.lists(
        st.tuples(parameter_names, st.one_of(st.just(""), tricky_text.map(MARKER.__add__))),
        max_size=12,
    ),
    service_id=st.sampled_from(["SP-A", "SP-{B}", MARKER]),
)
def test_any_pixel_hit_is_an_event_or_a_fixed_reason(
    params: list[tuple[str, str]], service_id: str
) -> None:
    query = MultiDict([("sdr_s", service_id), *params])
    try:
        event = validate_event(pixel_event(query), SERVICES, NOW_MS)
    except InvalidEvent as invalid:
        reason = pixel_error(invalid.errors[0])
        assert PIXEL_ERROR_FORM.fullmatch(reason), reason
        assert MARKER not in reason
        return
    assert isinstance(event, UsageEvent)
    assert event.service_id in SERVICES


@PROPERTY_SETTINGS
@given(raw=st.one_of(json_values, st.dictionaries(event_fields, json_values, max_size=10)))
def test_any_json_is_an_event_or_field_errors(raw: Any) -> None:
    try:
        validate_event(raw, SERVICES, NOW_MS, default_service_id="SP-A")
    except InvalidEvent as invalid:
        assert invalid.errors
        assert all(error.message for error in invalid.errors)


@PROPERTY_SETTINGS
@given(
    service_id=st.sampled_from(sorted(SERVICES)),
    account_id=valid_id,
    user_id=st.one_of(st.just(""), valid_id),
    module=valid_name,
    activity=valid_name,
    event_id=st.one_of(st.just(""), valid_id.filter(lambda text: len(text) <= 100)),
    attributes=st.dictionaries(valid_name, st.one_of(valid_id, st.integers(-(2**63), 2**63), st.booleans()),
                               max_size=5),
)  # fmt: skip
def test_valid_events_round_trip_through_kafka_and_redis_keys(
    service_id: str, account_id: str, user_id: str, module: str, activity: str, event_id: str,
    attributes: dict[str, Any],
) -> None:  # fmt: skip
    raw = {
        "service_id": service_id, "account_id": account_id, "user_id": user_id,
        "module": module, "activity": activity, "event_id": event_id,
        "account_attributes": attributes,
    }  # fmt: skip
    event = validate_event(raw, SERVICES, NOW_MS)
    assert (event.account_id, event.user_id, event.module, event.activity) == (
        account_id, user_id, module, activity,
    )  # fmt: skip
    assert from_wire(to_wire(event)) == [event]
    assert decode_parts(bucket_field(user_id, module, activity)) == [user_id, module, activity]
    bucket = KEYS.bucket(3, service_id, event.day, account_id)
    assert bucket.startswith("usage:{usage-events:3}:bucket:")
    assert decode_parts(bucket.removeprefix("usage:{usage-events:3}:bucket:")) == [
        service_id, event.day, account_id,
    ]  # fmt: skip


@PROPERTY_SETTINGS
@given(first=st.lists(keyable_text, min_size=3, max_size=3),
       second=st.lists(keyable_text, min_size=3, max_size=3))  # fmt: skip
def test_distinct_ids_never_share_a_key_or_field(first: list[str], second: list[str]) -> None:
    if first == second:
        return
    assert bucket_field(*first) != bucket_field(*second)
    assert KEYS.bucket(0, *first) != KEYS.bucket(0, *second)
    assert KEYS.seen(0, first[0], first[1]) != KEYS.seen(0, second[0], second[1]) or (
        first[:2] == second[:2]
    )
    assert KEYS.names(first[0], "module") != KEYS.names(second[0], "module") or (
        first[0] == second[0]
    )


def test_crafted_pairs_that_naive_separators_would_merge_stay_apart() -> None:
    pairs = [
        (("a:b", "c", "x"), ("a", "b:c", "x")),
        (('x","y', "", "m"), ("x", "y", "m")),
        (("{t}", "u", "m"), ("t", "u", "m")),
        (("*", "u", "m"), ("acc*", "u", "m")),
        (("café", "u", "m"), ("cafe\u0301", "u", "m")),
        (("a\\", "b", "m"), ("a", "\\b", "m")),
    ]
    for first, second in pairs:
        assert bucket_field(*first) != bucket_field(*second)
        assert KEYS.bucket(1, *first) != KEYS.bucket(1, *second)
        assert decode_parts(encode_parts(*first)) == list(first)


def test_ids_cannot_move_a_key_out_of_its_partition_hash_tag() -> None:
    """Redis Cluster hashes the first {...}: ids come after the tag, so they never pick it."""
    key = KEYS.bucket(7, "SP-{B}", "2026-11-22", "}{evil}")
    assert key.index("{") == key.index("{usage-events:7}")
