"""Traffic for load tests, benchmarks and fault tests: realistic events and a ledger of acks."""
