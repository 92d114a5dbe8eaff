"""usage-aggregator (or python -m aggregator): Kafka's usage events into live buckets in Redis.

One consumer in the group CONSUMER_GROUP; run several to share the partitions.
"""

from __future__ import annotations

from aggregator.consumer import run
from common.cli import command_parser, settings_or_exit
from common.runtime import configure_logging, run_main


def main() -> None:
    """Consume until SIGTERM or SIGINT, then finish the batch in hand and leave the group."""
    command_parser("usage-aggregator", __doc__ or "").parse_args()
    settings = settings_or_exit("aggregator")
    configure_logging("aggregator", settings.log_level)
    run_main(run(settings))


if __name__ == "__main__":
    main()
