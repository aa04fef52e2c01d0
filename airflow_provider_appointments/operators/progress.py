"""A progress line for long runs: records done (of how many, when known), rate, 429s and retries, time left."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# Often enough to show a long run is alive, rarely enough not to flood a task log.
EVERY_S = 30.0


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


class Progress:
    """Logs at most every `every_s` seconds; `report()` logs the last line.

    :param counters: returns (429 answers, retries) so far (a client's `stats()`).
    """

    def __init__(self, log: Any, what: str, total: int | None = None,
                 counters: Callable[[], tuple[int, int]] = lambda: (0, 0), every_s: float = EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.what, self.total = log, what, total
        self.counters, self.every_s, self.clock = counters, every_s, clock
        self.started = self.last = clock()
        self.count = 0

    def add(self, records: int) -> None:
        self.count += records
        if self.clock() - self.last >= self.every_s:
            self.report()

    def line(self) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = self.count / elapsed
        limited, retries = self.counters()
        done = f"{self.count:,}" + (f" / {self.total:,} ({self.count / self.total:.0%})" if self.total else "")
        left = ""
        if self.total and rate > 0 and self.count < self.total:
            left = f", about {_duration((self.total - self.count) / rate)} left"
        return f"{self.what}: {done} records, {rate:,.0f} records/s, {limited} × 429, {retries} retries{left}"

    def report(self) -> None:
        self.last = self.clock()
        self.log.info("%s", self.line())
