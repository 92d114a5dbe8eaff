"""Lag status rules as a table of offset histories, and lag in seconds by interpolation."""

from __future__ import annotations

import pytest

from ops.lag import (
    ERR_LAG_S,
    Sample,
    lag_events,
    lag_seconds,
    per_second,
    settled_drift,
    status,
)


def history(*points: tuple[int, int]) -> list[Sample]:
    """(log end, applied) every 3 s."""
    return [Sample(i * 3000, end, applied) for i, (end, applied) in enumerate(points)]


@pytest.mark.parametrize(
    ("samples", "owner_alive", "lag_s", "expected"),
    [
        (history(), True, 0, "OK"),
        (history((0, -1), (0, -1), (0, -1)), True, 0, "OK"),  # idle, never used: no alarm
        (history((10, 9), (10, 9), (10, 9)), False, 0, "OK"),  # idle with no consumer: no lag
        (history((10, 5), (20, 19), (30, 25)), True, 3, "OK"),  # lag was zero in the window
        (history((10, 5), (20, 12), (30, 25)), True, 3, "OK"),  # keeping up, lag steady
        (history((10, 5), (20, 8), (30, 10)), True, 6, "WARN"),  # lag growing while moving
        (history((10, 5), (20, 5), (30, 5)), True, 9, "STALL"),  # alive, not moving
        (history((10, 5), (20, 5), (30, 5)), False, 9, "STOP"),  # consumer gone
        (history((10, 2), (20, 4), (30, 7)), True, ERR_LAG_S + 1, "ERR"),  # far behind
        (history((30, 25), (30, 12), (30, 20)), True, 5, "WARN"),  # rewind (Redis rollback)
    ],
)
def test_status_rules(
    samples: list[Sample], owner_alive: bool, lag_s: float, expected: str
) -> None:
    assert status(samples, owner_alive, lag_s)[0] == expected


def test_lag_seconds_interpolates_when_the_first_unapplied_record_was_produced() -> None:
    samples = history((0, -1), (10, -1), (20, -1))  # 10 records every 3 s, none applied
    # Offset 0 is the first of ten records produced evenly between t=0 and t=3 s: t=0.3 s.
    assert lag_seconds(samples, 9000) == pytest.approx(8.7)
    samples = history((10, 9), (20, 9), (30, 9))  # offset 10: likewise at t=0.3 s
    assert lag_seconds(samples, 9000) == pytest.approx(8.7)
    samples = history((10, 9), (10, 9), (30, 9))  # offset 10: between t=3 and 6 s, at 3.15 s
    assert lag_seconds(samples, 9000) == pytest.approx(5.85)
    samples = history((15, 9), (20, 9), (30, 9))  # halfway between 10 and 20: t=1.8 s
    assert lag_seconds(samples, 9000) == pytest.approx(9.0)  # before the window: lower bound
    assert lag_seconds(history((10, 9)), 9000) == 0.0


@pytest.mark.parametrize(
    ("sample", "drift", "expected"),
    [
        (Sample(0, 10, 9, produced_events=40, applied_events=40), 0, 0),  # no lag
        (Sample(0, 10, 9, produced_events=45, applied_events=40), 0, 0),  # report ahead: none
        (Sample(0, 10, 5, produced_events=60, applied_events=40), 0, 20),  # 4 records, 20 events
        (Sample(0, 10, 5, produced_events=60, applied_events=40), 3, 17),  # counters' drift off
        (Sample(0, 10, 5, produced_events=41, applied_events=40), 0, 4),  # one event a record
        (Sample(0, 10, 5), 0, 4),  # no counters yet: at least one event a record
    ],
)
def test_lag_in_events(sample: Sample, drift: int, expected: int) -> None:
    assert lag_events(sample, drift) == expected


@pytest.mark.parametrize(
    ("previous", "latest", "expected"),
    [
        ((10, 9, 50, 40), (10, 9, 50, 40), 10),  # quiet: the counters differ by 10 for good
        ((10, 9, 50, 40), (12, 11, 55, 45), 7),  # records went in: keep what was known
        ((10, 9, 50, 40), (10, 9, 52, 40), 7),  # a report came in: not settled yet
        ((10, 5, 50, 40), (10, 5, 50, 40), 7),  # lag: not quiet
    ],
)
def test_drift_is_measured_only_when_the_partition_is_quiet(
    previous: tuple[int, int, int, int], latest: tuple[int, int, int, int], expected: int
) -> None:
    assert settled_drift(Sample(0, *previous), Sample(3000, *latest), 7) == expected


def test_rates_are_per_second_in_events_and_records() -> None:
    before = Sample(0, 10, 5, produced_events=100, applied_events=80)
    after = Sample(2000, 20, 15, produced_events=150, applied_events=110)
    assert per_second(before, after) == (25.0, 15.0, 5.0, 5.0)
    rewound = Sample(4000, 20, 10, produced_events=150, applied_events=100)
    assert per_second(after, rewound) == (0.0, 0.0, 0.0, 0.0)  # never negative
