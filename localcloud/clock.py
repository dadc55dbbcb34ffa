"""The emulator's virtual clock: ENS's asynchronous life cycle is measured on it.

Real ENS lists a new device only a while after RescaleDeviceService answers and
runs it later still. A test that had to sleep through that would be slow and
flaky, so the emulator's time stands still until a test moves it on
(``LocalCloud.advance`` or ``POST /_localcloud/clock``). It starts at the wall
time the emulator was built, so CreateTime values look like today's.
"""

from __future__ import annotations

import math
import threading
import time


class VirtualClock:
    """Epoch seconds that only move forward, and only when told to."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move time on by ``seconds`` (never back: ENS time does not run backwards); the new now."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
                or not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"advance needs a finite, non-negative number of seconds, got {seconds!r}")
        with self._lock:
            self._now += float(seconds)
            return self._now
