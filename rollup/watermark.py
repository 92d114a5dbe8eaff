"""How far every partition has aggregated, and which days that makes complete."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from common.days import day_end_ms


@dataclass(frozen=True)
class PartitionProgress:
    """What Redis holds for one partition, next to its counts."""

    partition: int
    offset: int
    received_ms: int
    caught_up_ms: int
    applied_at_ms: int
    events: int = 0  # carried by the records applied, since the counter began

    def watermark_ms(self, slack_ms: int) -> int:
        """Every event received before this instant has been applied in this partition."""
        return max(self.received_ms, self.caught_up_ms) - slack_ms


def progress_from_hash(partition: int, fields: Mapping[bytes, bytes]) -> PartitionProgress:
    def number(name: bytes, default: int = 0) -> int:
        return int(fields.get(name, default))

    return PartitionProgress(
        partition,
        offset=number(b"offset", -1),
        received_ms=number(b"received_ms"),
        caught_up_ms=number(b"caught_up_ms"),
        applied_at_ms=number(b"applied_at_ms"),
        events=number(b"events"),
    )


def is_complete(
    day: date, zone: ZoneInfo, progress: list[PartitionProgress], slack_ms: int
) -> bool:
    """A day is complete once every partition's watermark has passed its local end."""
    end_ms = day_end_ms(day, zone)
    return bool(progress) and all(p.watermark_ms(slack_ms) >= end_ms for p in progress)


def holding_back(
    day: date, zone: ZoneInfo, progress: list[PartitionProgress], slack_ms: int
) -> list[int]:
    """Return the partitions whose watermark has not yet passed the day's end."""
    end_ms = day_end_ms(day, zone)
    return [p.partition for p in progress if p.watermark_ms(slack_ms) < end_ms]
