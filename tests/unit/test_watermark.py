"""Day completeness from each partition's progress."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from rollup.watermark import PartitionProgress, holding_back, is_complete, progress_from_hash

SLACK_MS = 11_000
UTC_END = int(datetime(2026, 11, 23, tzinfo=UTC).timestamp() * 1000)  # end of 2026-11-22 UTC


def progress(partition: int, received_ms: int = 0, caught_up_ms: int = 0) -> PartitionProgress:
    return PartitionProgress(partition, 10, received_ms, caught_up_ms, 0)


@pytest.mark.parametrize(
    ("partitions", "complete", "behind"),
    [
        ([], False, []),
        ([progress(0, caught_up_ms=UTC_END + SLACK_MS)], True, []),
        ([progress(0, caught_up_ms=UTC_END + SLACK_MS - 1)], False, [0]),
        ([progress(0, received_ms=UTC_END + SLACK_MS)], True, []),
        # An idle partition that keeps reaching its end does not hold the day back.
        ([progress(0, received_ms=UTC_END - 3_600_000, caught_up_ms=UTC_END + 20_000),
          progress(1, received_ms=UTC_END + 12_000)], True, []),
        # One partition never reported: nothing can be complete.
        ([progress(0, caught_up_ms=UTC_END + 60_000), progress(1)], False, [1]),
    ],
)  # fmt: skip
def test_day_is_complete_when_every_partition_passed_its_end(
    partitions: list[PartitionProgress], complete: bool, behind: list[int]
) -> None:
    day = date(2026, 11, 22)
    assert is_complete(day, ZoneInfo("UTC"), partitions, SLACK_MS) is complete
    assert holding_back(day, ZoneInfo("UTC"), partitions, SLACK_MS) == behind


def test_the_service_zone_decides_where_the_day_ends() -> None:
    kolkata_end = UTC_END - 5.5 * 3600 * 1000
    partitions = [progress(0, caught_up_ms=int(kolkata_end) + SLACK_MS)]
    assert is_complete(date(2026, 11, 22), ZoneInfo("Asia/Kolkata"), partitions, SLACK_MS)
    assert not is_complete(date(2026, 11, 22), ZoneInfo("UTC"), partitions, SLACK_MS)


def test_progress_reads_the_applied_hash() -> None:
    fields = {b"offset": b"41", b"received_ms": b"5", b"caught_up_ms": b"7", b"applied_at_ms": b"9"}
    assert progress_from_hash(3, fields) == PartitionProgress(3, 41, 5, 7, 9)
    assert progress_from_hash(3, {}) == PartitionProgress(3, -1, 0, 0, 0)
