"""The aggregator's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_APPLIED = Counter("usage_aggregator_events_applied_total", "Events counted into Redis")
RECORDS_APPLIED = Counter(
    "usage_aggregator_records_applied_total", "Kafka records applied (each holds events)"
)
BATCHES = Counter("usage_aggregator_batches_total", "Partition batches applied")
BATCH_SIZE = Histogram(
    "usage_aggregator_batch_size", "Records per applied partition batch",
    buckets=(1, 10, 100, 500, 1000, 5000, 10000, 20000),
)  # fmt: skip
APPLY_SECONDS = Histogram(
    "usage_aggregator_apply_seconds", "Time of one atomic apply step in Redis",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)  # fmt: skip
DUPLICATES = Counter(
    "usage_aggregator_duplicates_skipped_total", "Retried event_ids not counted again"
)
FENCED = Counter(
    "usage_aggregator_fenced_writes_total", "Batches refused: Redis held another offset"
)
REDIS_RETRIES = Counter(
    "usage_aggregator_redis_retries_total", "Redis calls retried while it was down"
)
