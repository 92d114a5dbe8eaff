"""Local stack: Kafka (KRaft), Redis and the project's processes, started as local processes."""
