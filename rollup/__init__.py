"""Rollup: flushes live buckets into durable per-day counts in SQL, and serves queries."""
