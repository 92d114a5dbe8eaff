"""Prometheus metrics of the lag monitor (served by the query API process)."""

from __future__ import annotations

from prometheus_client import Gauge

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
