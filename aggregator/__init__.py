"""The aggregator: counts Kafka's usage events into live per-user daily buckets in Redis."""
