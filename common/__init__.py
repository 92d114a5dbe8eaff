"""What every stage shares: settings, command lines, services, events, days and Redis keys."""
