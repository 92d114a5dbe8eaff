"""Publishing: puts validated events on Kafka for every entry point (collector, importer):
name limits, records shared per partition, an idempotent producer that is replaced when it
cannot recover, and a bound on events awaiting acknowledgement."""
