"""Crash points for fault tests: with FLUSH_CRASH_AT=<step> the flusher dies at that step.

The steps are where a real crash leaves a flush half done; fault tests kill the process at
each of them and check that running the flush again yields exactly the same counts.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

CRASH_EXIT_CODE = 137
STEPS = ("staged", "committed", "dropped-buckets")
CRASH_AT = os.environ.get("FLUSH_CRASH_AT", "")  # read once at start, like every setting


def crash_point(step: str) -> None:
    """Exit at once, without cleanup, if this is the step the fault test asked for."""
    if step == CRASH_AT:
        log.warning("crashing at flush step %r (FLUSH_CRASH_AT)", step)
        logging.shutdown()
        os._exit(CRASH_EXIT_CODE)
