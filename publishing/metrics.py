"""The publishing path's Prometheus metrics, and the events produced per partition that
whoever publishes (collector, importer) reports for the ops view's lag in events."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import Counter, Gauge

from common.keys import KeyLayout
from common.redis_client import RedisClient

KAFKA_SEND_ERRORS = Counter(
    "usage_collector_kafka_send_errors_total", "Publishes Kafka did not acknowledge"
)
PRODUCER_REPLACEMENTS = Counter(
    "usage_collector_producer_replacements_total",
    "Kafka producers replaced because they could not recover by themselves",
)
OVERLOAD_REFUSALS = Counter(
    "usage_collector_overload_refusals_total",
    "Publishes refused at once because too many events awaited Kafka's acknowledgement",
)
EVENTS_AWAITING_ACK = Gauge(
    "usage_collector_events_awaiting_ack", "Events in Kafka records not yet acknowledged"
)

# Events Kafka acknowledged, by partition, since the last report to Redis (for lag in events).
pending_produced: Tally[int] = Tally()


def count_produced(partition: int, events: int) -> None:
    """Note events that Kafka acknowledged on partition (a record's worth, or a batch's)."""
    pending_produced[partition] += events


async def report_produced(
    redis: RedisClient, keys: KeyLayout, rejects: Tally[str] | None = None
) -> None:
    """Add the events produced per partition (and rejects by reason, if given) to the totals
    in Redis.

    A tally leaves memory only once Redis took it, so a Redis outage delays the figures
    without losing them.
    """
    reasons = +rejects if rejects is not None else Tally[str]()  # without the zeros
    produced = +pending_produced
    if not reasons and not produced:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for reason, count in reasons.items():
            pipe.hincrby(keys.rejects(), reason, count)
        for partition, count in produced.items():
            pipe.hincrby(keys.produced(), str(partition), count)
        await pipe.execute()
    if rejects is not None:
        rejects.subtract(reasons)
    pending_produced.subtract(produced)
