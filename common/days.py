"""Service-local calendar days: the day an event counts for."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_day(epoch_ms: int, zone: ZoneInfo) -> date:
    """Return the service-local calendar date of an instant."""
    return _local_day_of_minute(epoch_ms // 60_000, zone)


@functools.lru_cache(maxsize=4096)
def _local_day_of_minute(epoch_minute: int, zone: ZoneInfo) -> date:
    # Remembered per minute because the collector asks once per event, nearly always for
    # the current minute. Exact: every UTC offset in use since 1972 is a whole number of
    # minutes, so no local midnight falls inside a minute.
    return datetime.fromtimestamp(epoch_minute * 60, tz=UTC).astimezone(zone).date()


def day_end_ms(day: date, zone: ZoneInfo) -> int:
    """Return the instant (epoch ms) of the local midnight that ends day."""
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return int(midnight.timestamp() * 1000)


def parse_day(text: str) -> date:
    """Parse YYYY-MM-DD strictly."""
    if len(text) != 10:
        raise ValueError(f"{text!r} is not a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date in the form YYYY-MM-DD") from None
