"""Clocks for the rollout engine: the real one and a fake that tests and benchmarks advance by hand.

The engine, the lock and the analysis read time only through ``Clock`` so a whole rollout can run
in microseconds under ``FakeClock``.
"""

from __future__ import annotations

import time


class SystemClock:
    """Wall-clock time (epoch seconds, so lease expiries mean the same in every process)."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """Time that moves only when someone sleeps or calls ``advance``; sleeping never blocks."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self.slept: float = 0.0
        """Total seconds slept, so tests can check how long a rollout would have taken."""

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._now += seconds
            self.slept += seconds

    def advance(self, seconds: float) -> None:
        self._now += seconds
