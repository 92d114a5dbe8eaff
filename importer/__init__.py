"""File imports: Totango usage files sent through Kafka like any event, safe to re-run."""
