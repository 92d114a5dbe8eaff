"""Prometheus metrics of the flusher."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FLUSHES = Counter("usage_flusher_flushes_total", "Day flushes completed", ["service"])
FLUSHED_ROWS = Counter("usage_flusher_rows_total", "Count rows written to SQL", ["service"])
FLUSH_SECONDS = Histogram(
    "usage_flusher_flush_seconds", "Duration of one day flush",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)  # fmt: skip
DAYS_WAITING = Gauge("usage_flusher_days_waiting", "Days over but not yet flushed", ["service"])
