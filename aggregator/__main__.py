"""python -m aggregator: one consumer in group usage-aggregator; run several to scale out."""

from __future__ import annotations

import sys

from aggregator.consumer import run
from common.runtime import configure_logging, run_main
from common.settings import Settings, SettingsError


def main() -> None:
    configure_logging("aggregator")
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        sys.exit(f"aggregator: {error}")
    run_main(run(settings))


if __name__ == "__main__":
    main()
