"""Prometheus metrics of the flusher and of the lag monitor (served by the query API)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FLUSHES = Counter("usage_flusher_flushes_total", "Day flushes completed", ["service"])
FLUSHED_ROWS = Counter("usage_flusher_rows_total", "Count rows written to SQL", ["service"])
FLUSH_SECONDS = Histogram(
    "usage_flusher_flush_seconds", "Duration of one day flush",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)  # fmt: skip
DAYS_WAITING = Gauge("usage_flusher_days_waiting", "Days over but not yet flushed", ["service"])

LAG_MESSAGES = Gauge(
    "kafka_consumergroup_group_lag", "Records not yet applied", ["group", "topic", "partition"]
)
LAG_EVENTS = Gauge(
    "usage_consumergroup_lag_events", "Events in the records not yet applied",
    ["group", "topic", "partition"],
)  # fmt: skip
LAG_SECONDS = Gauge(
    "kafka_consumergroup_group_lag_seconds", "Age of the oldest record not yet applied",
    ["group", "topic", "partition"],
)  # fmt: skip
MAX_LAG_SECONDS = Gauge(
    "kafka_consumergroup_group_max_lag_seconds", "Largest lag in seconds of the group",
    ["group", "topic"],
)  # fmt: skip
STATUS = Gauge(
    "usage_partition_status", "1 for the partition's current status",
    ["group", "topic", "partition", "status"],
)  # fmt: skip
