"""The collector's Prometheus metrics, and the tallies it reports for the ops dashboard."""

from __future__ import annotations

import functools
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase
from redis.asyncio import Redis

from common.keys import KeyLayout

M = TypeVar("M", bound=MetricWrapperBase)

REQUESTS = Counter(
    "usage_collector_requests_total",
    "HTTP requests by endpoint and outcome",
    ["endpoint", "outcome"],
)
EVENTS = Counter(
    "usage_collector_events_total", "Events by endpoint and outcome", ["endpoint", "outcome"]
)
LATENCY = Histogram(
    "usage_collector_request_seconds",
    "Time to answer, Kafka acknowledgement included",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
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
IN_FLIGHT = Gauge("usage_collector_requests_in_flight", "Requests being answered now")

ENDPOINTS = {"/pixel.gif": "pixel", "/v1/events": "events", "/v1/collect": "collect"}
OUTCOMES = {2: "accepted", 4: "rejected", 5: "unavailable"}

# Rejects by reason since the last report to Redis (for the dashboard's rejects chart).
pending_rejects: Tally[str] = Tally()
# Events Kafka acknowledged, by partition, since the last report to Redis (for lag in events).
pending_produced: Tally[int] = Tally()


@functools.cache
def child(metric: M, *labels: str) -> M:
    """The metric's child for labels, looked up once: labels() takes a lock on every call."""
    return metric.labels(*labels)


def count_reject(reason: str) -> None:
    pending_rejects[reason] += 1


def count_produced(partition: int, events: int) -> None:
    """Note events that Kafka acknowledged on partition (a record's worth, or a batch's)."""
    pending_produced[partition] += events


async def report_tallies(redis: Redis, keys: KeyLayout) -> None:
    """Add rejects by reason and events produced per partition to the totals in Redis.

    A tally leaves memory only once Redis took it, so a Redis outage delays the figures
    without losing them.
    """
    reasons, produced = +pending_rejects, +pending_produced  # without the zeros
    if not reasons and not produced:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for reason, count in reasons.items():
            pipe.hincrby(keys.rejects(), reason, count)
        for partition, count in produced.items():
            pipe.hincrby(keys.produced(), str(partition), count)
        await pipe.execute()
    pending_rejects.subtract(reasons)
    pending_produced.subtract(produced)


@web.middleware
async def measure(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Count requests and time them, for the ingest endpoints."""
    endpoint = ENDPOINTS.get(request.path)
    if endpoint is None or request.method == "OPTIONS":
        return await handler(request)
    started = time.perf_counter()
    IN_FLIGHT.inc()
    try:
        response = await handler(request)
    finally:
        IN_FLIGHT.dec()
    child(LATENCY, endpoint).observe(time.perf_counter() - started)
    outcome = OUTCOMES.get(response.status // 100, "other")
    child(REQUESTS, endpoint, outcome).inc()
    if outcome == "rejected":
        count_reject(f"{endpoint} {response.status}")
    return response
