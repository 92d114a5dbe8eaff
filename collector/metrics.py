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

from common.keys import KeyLayout
from common.redis_client import RedisClient
from publishing.metrics import report_produced

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
IN_FLIGHT = Gauge("usage_collector_requests_in_flight", "Requests being answered now")

ENDPOINTS = {"/pixel.gif": "pixel", "/v1/events": "events", "/v1/collect": "collect"}
OUTCOMES = {2: "accepted", 4: "rejected", 5: "unavailable"}

# Rejects by reason since the last report to Redis (for the dashboard's rejects chart).
pending_rejects: Tally[str] = Tally()


@functools.cache
def child(metric: M, *labels: str) -> M:
    """The metric's child for labels, looked up once: labels() takes a lock on every call."""
    return metric.labels(*labels)


def count_reject(reason: str) -> None:
    pending_rejects[reason] += 1


async def report_tallies(redis: RedisClient, keys: KeyLayout) -> None:
    """Add rejects by reason and events produced per partition to the totals in Redis."""
    await report_produced(redis, keys, pending_rejects)


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
