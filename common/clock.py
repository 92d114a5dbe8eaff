"""The time every process reads: the system clock, shifted in tests to cross midnight.

CLOCK_SHIFT_FILE names a file holding a shift in milliseconds; a test writes it to move
the collector's, the aggregators' and the flusher's idea of now together, without sleeping.
"""

from __future__ import annotations

import time
from pathlib import Path

REREAD_S = 0.2


class Clock:
    def __init__(self, shift_file: Path | None = None) -> None:
        self._shift_file = shift_file
        self._shift_ms = 0
        self._read_at = float("-inf")

    def shift_ms(self) -> int:
        """Return the current shift (0 without a shift file); re-read at most every 0.2 s."""
        if self._shift_file is None:
            return 0
        if time.monotonic() - self._read_at > REREAD_S:
            self._read_at = time.monotonic()
            try:
                self._shift_ms = int(self._shift_file.read_text().strip() or 0)
            except FileNotFoundError:
                self._shift_ms = 0
        return self._shift_ms

    def now_ms(self) -> int:
        """Milliseconds since the epoch, shifted."""
        return int(time.time() * 1000) + self.shift_ms()

    def shifted(self, system_ms: int) -> int:
        """Shift a system-clock time stamp (from a library) onto this clock."""
        return system_ms + self.shift_ms()
