"""Code every stage shares: settings, services, the event schema, days and the Redis key layout."""
