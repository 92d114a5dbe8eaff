"""What the event types cannot say, checked after decoding: small pure functions.

Each returns None (or False) rather than a message: a decoded event that breaks one of them is
read again by common.events.validate_event, which says which field is wrong and why.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from common.contract import MAX_ATTRIBUTES, AttributeValue, Event
from common.days import local_day
from common.events import MAX_FUTURE_MS, MAX_PAST_MS, UsageEvent, storable_number
from common.services import Service

# A control character in a JSON string is escaped (\n, \u0085: an odd run of backslashes)
# or is raw U+007F-U+009F; raw U+0000-U+001F is not JSON at all.
CONTROL_IN_JSON = re.compile(
    rb"(?<!\\)(?:\\\\)*\\(?:[bfnrt]|u00[0189][0-9a-fA-F]|u007[fF])|\x7f|\xc2[\x80-\x9f]"
)
UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
NO_FIELDS: dict[str, str] = {}  # shared by every event without account fields: never mutated


def usage_event(
    event: Event,
    services: Mapping[str, Service],
    received_ms: int,
    default_service_id: str | None = None,
) -> UsageEvent | None:
    """The UsageEvent a decoded event stands for, or None if a rule beyond its types fails."""
    service_id = event.service_id or default_service_id or ""
    service = services.get(service_id)
    module, activity = event.module or "", event.activity or ""
    if service is None or bool(module) != bool(activity):
        return None
    account_attributes = event.account_attributes or {}
    user_attributes = event.user_attributes or {}
    if (account_attributes or user_attributes) and not attributes_fit(
        account_attributes, user_attributes
    ):
        return None
    event_ms = received_ms if event.timestamp is None else event_time(event.timestamp, received_ms)
    if event_ms is None:
        return None
    return UsageEvent(  # by position: this runs once per event
        service_id, event.account_id, event.user_id or "", module, activity, event.count,
        event_ms, received_ms, day_text(event_ms // 60_000, service.timezone),
        event.event_id or "", account_fields(event), account_attributes, user_attributes,
    )  # fmt: skip


@functools.lru_cache(maxsize=4096)
def day_text(epoch_minute: int, zone: ZoneInfo) -> str:
    """The service-local day of a minute, as text (nearly every event is of this minute)."""
    return local_day(epoch_minute * 60_000, zone).isoformat()


def account_fields(event: Event) -> dict[str, str]:
    """The account's own fields the event sets (most events set none)."""
    if not (event.account_name or event.parent_id or event.account_type or event.product_id):
        return NO_FIELDS
    fields = {
        "account_name": event.account_name,
        "parent_id": event.parent_id,
        "account_type": event.account_type,
        "product_id": event.product_id,
    }
    return {name: value for name, value in fields.items() if value}


def event_time(timestamp: str, received_ms: int) -> int | None:
    """The event's time in ms if it has a UTC offset and lies in the accepted window."""
    try:
        parsed = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    event_ms = int(parsed.timestamp() * 1000)
    if not received_ms - MAX_PAST_MS <= event_ms <= received_ms + MAX_FUTURE_MS:
        return None
    return event_ms


def attributes_fit(*groups: Mapping[str, AttributeValue]) -> bool:
    """At most MAX_ATTRIBUTES in all, and numbers Kafka's form (orjson) can hold."""
    if sum(len(group) for group in groups) > MAX_ATTRIBUTES:
        return False
    return all(
        storable_number(value)
        for group in groups
        for value in group.values()
        if isinstance(value, int | float)
    )


def json_texts_clean(body: bytes) -> bool:
    """No string of a JSON body holds a control character."""
    if b"\\" not in body and b"\x7f" not in body and b"\xc2" not in body:
        return True  # the common case, a thousand times cheaper than the search
    return CONTROL_IN_JSON.search(body) is None


def texts_clean(texts: Iterable[str]) -> bool:
    """No control character and no lone surrogate in any of texts."""
    return UNSAFE_TEXT.search("".join(texts)) is None
