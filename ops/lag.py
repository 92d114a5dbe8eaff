"""Consumer lag per partition over a sliding window, and Burrow-like status rules (pure).

Status rules, evaluated over the samples of the last WINDOW_S seconds:

- OK: no lag now, or lag was zero somewhere in the window and the consumer moves. An idle
  partition with zero lag is always OK: nothing to do is not a problem.
- STOP: lag > 0 and no live consumer owns the partition (its heartbeat expired or it never
  had one). Lag builds up and nobody will take it down.
- STALL: lag > 0 in every sample, a live owner, and the applied offset did not move in the
  window. The consumer is there but stuck.
- ERR: lag > 0 and the oldest unapplied event is older than ERR_LAG_S, though moving.
- WARN: lag > 0 in every sample and growing across the window while moving (falling
  behind), or the applied offset went backwards (a rewind: Redis restored from its AOF,
  the consumer re-reads).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

WINDOW_S = 30.0
ERR_LAG_S = 120.0
STATUSES = ("OK", "WARN", "ERR", "STALL", "STOP")


@dataclass(frozen=True, slots=True)
class Sample:
    at_ms: int
    end_offset: int  # next offset Kafka will write (log end)
    applied: int  # last offset applied to Redis, -1 for none
    produced_events: int = 0  # events Kafka acknowledged to the collectors, since counting began
    applied_events: int = 0  # events in the records applied, since counting began

    @property
    def lag(self) -> int:
        """Records not yet applied (exact)."""
        return max(self.end_offset - (self.applied + 1), 0)


def lag_events(sample: Sample, drift: int) -> int:
    """Events in the records not yet applied: produced minus applied, less the known drift.

    Exact while every acknowledged event was reported (collectors report every half
    second); a collector that died before reporting makes it low, but never below one
    event per unapplied record, and no lag in records is no lag in events.
    """
    if sample.lag == 0:
        return 0
    return max(sample.produced_events - sample.applied_events - drift, sample.lag)


def settled_drift(previous: Sample, latest: Sample, drift: int) -> int:
    """produced - applied when nothing is in flight: what the counters disagree by for good.

    Nothing is in flight when no record was appended between two samples, both had no lag
    and no report came in between (the counters started at different times, or a collector
    died before it reported). Otherwise the drift known so far.
    """
    quiet = (
        previous.lag == 0 and latest.lag == 0 and previous.end_offset == latest.end_offset
        and previous.produced_events == latest.produced_events
    )  # fmt: skip
    return latest.produced_events - latest.applied_events if quiet else drift


def per_second(before: Sample, after: Sample) -> tuple[float, float, float, float]:
    """Events in, events out, records in, records out per second between two samples."""
    seconds = max((after.at_ms - before.at_ms) / 1000, 0.001)
    events_in, events_out, records_in, records_out = (
        round(max(delta, 0) / seconds, 1)
        for delta in (
            after.produced_events - before.produced_events,
            after.applied_events - before.applied_events,
            after.end_offset - before.end_offset,
            after.applied - before.applied,
        )
    )
    return events_in, events_out, records_in, records_out


def in_window(samples: Sequence[Sample], now_ms: int, window_s: float = WINDOW_S) -> list[Sample]:
    return [s for s in samples if s.at_ms >= now_ms - window_s * 1000]


def lag_seconds(history: Sequence[Sample], now_ms: int) -> float:
    """Time since the oldest unapplied event was produced, interpolated from log-end history.

    The first unapplied offset is applied + 1; it was produced between the last sample whose
    log end was at or below it and the next one. With no such sample in the history, the
    oldest sample's time is a lower bound.
    """
    if not history:
        return 0.0
    latest = history[-1]
    if latest.lag == 0:
        return 0.0
    first_unapplied = latest.applied + 1
    produced_ms = history[0].at_ms
    for earlier, later in itertools.pairwise(history):
        if earlier.end_offset <= first_unapplied < later.end_offset:
            span = later.end_offset - earlier.end_offset
            # Records arrived evenly between the samples; this one made the end pass it.
            fraction = (first_unapplied - earlier.end_offset + 1) / span
            produced_ms = int(earlier.at_ms + fraction * (later.at_ms - earlier.at_ms))
    return max((now_ms - produced_ms) / 1000, 0.0)


def status(window: Sequence[Sample], owner_alive: bool, lag_s: float) -> tuple[str, str]:
    """Apply the rules above to a partition's window; return (status, reason)."""
    if not window:
        return "OK", "no samples yet"
    latest = window[-1]
    if latest.lag == 0:
        return "OK", "no lag"
    if not owner_alive:
        return "STOP", "lag and no live consumer owns the partition"
    moved = latest.applied != window[0].applied
    if any(b.applied < a.applied for a, b in itertools.pairwise(window)):
        return "WARN", "applied offset went backwards (rewind); re-reading"
    if any(sample.lag == 0 for sample in window):
        return "OK", "lag was zero within the window"
    if not moved and len(window) > 1:
        return "STALL", "consumer alive but not moving while lag > 0"
    if lag_s >= ERR_LAG_S:
        return "ERR", f"oldest unapplied event is {lag_s:.0f} s old"
    lags = [sample.lag for sample in window]
    growing = (
        len(lags) > 1 and lags[-1] > lags[0] and all(b >= a for a, b in itertools.pairwise(lags))
    )
    if growing:
        return "WARN", "lag growing over the window"
    return "OK", "consuming"
