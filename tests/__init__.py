"""Tests: unit tests of the pure core, and end-to-end tests against real Kafka, Redis and SQL."""
