"""Key building, day computation and usage grouping: the pure core."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from api.usage import group_rows, parse_by
from common.days import day_end_ms, local_day, parse_day
from common.keys import KeyLayout, bucket_field, decode_parts, encode_parts
from rollup.store import CountRow


def test_keys_carry_the_partition_hash_tag_first() -> None:
    keys = KeyLayout("usage", "usage-events")
    assert keys.applied(3) == "usage:{usage-events:3}:applied"
    assert keys.bucket(3, "SP-1", "2026-11-22", "ABC") == (
        'usage:{usage-events:3}:bucket:["SP-1","2026-11-22","ABC"]'
    )
    assert keys.seen(0, "SP-1", "e1") == 'usage:{usage-events:0}:seen:["SP-1","e1"]'
    assert keys.names("SP-1", "module") == 'usage:names:["SP-1","module"]'


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (("a:b", "c"), ("a", "b:c")),
        (('a","b', "c"), ("a", 'b","c')),
        (("{x}", ""), ("", "{x}")),
        (("a\\", "b"), ("a", "\\b")),
    ],
)
def test_ids_that_collide_under_naive_separators_stay_apart(
    left: tuple[str, str], right: tuple[str, str]
) -> None:
    assert encode_parts(*left) != encode_parts(*right)
    assert decode_parts(encode_parts(*left)) == list(left)
    assert bucket_field("u", *left) != bucket_field("u", *right)


@pytest.mark.parametrize(
    ("instant", "zone", "day"),
    [
        ("2026-11-22T23:59:59.999+00:00", "UTC", "2026-11-22"),
        ("2026-11-23T00:00:00+00:00", "UTC", "2026-11-23"),
        ("2026-11-22T18:29:59+00:00", "Asia/Kolkata", "2026-11-22"),
        ("2026-11-22T18:30:00+00:00", "Asia/Kolkata", "2026-11-23"),
        ("2026-11-22T09:59:59+00:00", "Pacific/Kiritimati", "2026-11-22"),
        ("2026-11-22T10:00:00+00:00", "Pacific/Kiritimati", "2026-11-23"),
        ("2026-11-23T10:59:59+00:00", "Pacific/Pago_Pago", "2026-11-22"),
        ("2026-11-23T11:00:00+00:00", "Pacific/Pago_Pago", "2026-11-23"),
        ("2026-03-09T03:59:59+00:00", "America/New_York", "2026-03-08"),
        ("2026-03-09T04:00:00+00:00", "America/New_York", "2026-03-09"),
        ("2026-11-02T04:59:59+00:00", "America/New_York", "2026-11-01"),
        ("2026-11-02T05:00:00+00:00", "America/New_York", "2026-11-02"),
    ],
)
def test_local_day_of_an_instant(instant: str, zone: str, day: str) -> None:
    epoch_ms = int(datetime.fromisoformat(instant).timestamp() * 1000)
    assert local_day(epoch_ms, ZoneInfo(zone)).isoformat() == day


@pytest.mark.parametrize(
    ("day", "zone", "hours"),
    [("2026-03-08", "America/New_York", 23), ("2026-11-01", "America/New_York", 25),
     ("2026-11-22", "Asia/Kolkata", 24)],
)  # fmt: skip
def test_dst_days_have_23_or_25_hours(day: str, zone: str, hours: int) -> None:
    the_day = date.fromisoformat(day)
    previous = date.fromordinal(the_day.toordinal() - 1)
    length_ms = day_end_ms(the_day, ZoneInfo(zone)) - day_end_ms(previous, ZoneInfo(zone))
    assert length_ms == hours * 3600 * 1000


def test_day_end_is_local_midnight() -> None:
    end = day_end_ms(date(2026, 11, 22), ZoneInfo("Asia/Kolkata"))
    assert datetime.fromtimestamp(end / 1000, UTC).isoformat() == "2026-11-22T18:30:00+00:00"


@pytest.mark.parametrize("text", ["2026-1-2", "22-11-2026", "2026-02-30", "", "2026-11-22T00"])
def test_parse_day_is_strict(text: str) -> None:
    with pytest.raises(ValueError, match="is not a date in the form YYYY-MM-DD"):
        parse_day(text)


ROWS = [
    CountRow("S", date(2026, 11, 21), "A", "u1", "M1", "a1", 2),
    CountRow("S", date(2026, 11, 22), "A", "u1", "M1", "a1", 3),
    CountRow("S", date(2026, 11, 22), "A", "u2", "M1", "a2", 4),
    CountRow("S", date(2026, 11, 22), "A", "", "M2", "a1", 5),
    CountRow("S", date(2026, 11, 22), "A", "u1", "M1", "a1", 1),
]


@pytest.mark.parametrize(
    ("by", "rows"),
    [
        ("", [{"count": 15}]),
        ("day", [{"day": "2026-11-21", "count": 2}, {"day": "2026-11-22", "count": 13}]),
        ("module", [{"module": "M1", "count": 10}, {"module": "M2", "count": 5}]),
        ("user", [{"user_id": "", "count": 5}, {"user_id": "u1", "count": 6},
                  {"user_id": "u2", "count": 4}]),
        ("activity,module", [{"activity": "a1", "module": "M1", "count": 6},
                             {"activity": "a1", "module": "M2", "count": 5},
                             {"activity": "a2", "module": "M1", "count": 4}]),
    ],
)  # fmt: skip
def test_group_rows_sums_by_the_asked_columns(by: str, rows: list[dict[str, object]]) -> None:
    assert group_rows(ROWS, parse_by(by)) == rows


@pytest.mark.parametrize("by", ["week", "day,day", "user_id"])
def test_unknown_or_repeated_by_is_refused(by: str) -> None:
    with pytest.raises(
        ValueError, match="by must list distinct names among day, module, activity, user"
    ):
        parse_by(by)
