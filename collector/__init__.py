"""The HTTP collector: pixel hits, server posts and browser beacons onto Kafka."""
