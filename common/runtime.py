"""What every process does at start: set up logging, run its coroutine on the best loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any


def configure_logging(process_name: str, level: str) -> None:
    """Log one line per event worth knowing at level or above, tagged with the process name."""
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s {process_name}[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def run_main(main: Coroutine[Any, Any, None]) -> None:
    """Run main on uvloop when it is installed, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
