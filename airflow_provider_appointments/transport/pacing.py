"""Client-side pacing: stay under the account's budget instead of living on 429s.

HubSpot counts requests per account in a rolling window (10 s for most endpoints, 1 s for search).
`Pacer` keeps the send times of this process in the same window and also listens to HubSpot's
``X-HubSpot-RateLimit-Max`` / ``-Remaining`` headers. The server's count includes every other
process using the same account, so:

1. ``foreign`` = what the server counted beyond this process's own sends (smoothed); this process
   lets itself use ``target - foreign`` of the window, so N processes converge on sharing the budget;
2. ``estimated remaining`` = the last ``Remaining`` seen, plus what has aged out of the window
   since, minus ``reserve``; this process may spend only its share of it (its sends over all sends
   in the window) before the next answer tells it more.

Everything is pure arithmetic on an injectable clock, so it is tested without a server.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

# Aim a little under the budget: HubSpot stamps requests on arrival, clocks differ, and a 429 costs
# a whole window of waiting.
UTILIZATION = 0.96
# Never drive the account's Remaining below this: other clients may need a request or two.
RESERVE = 2
# How much later than its send a request reaches HubSpot's counter.
TRANSIT_S = 0.2
# Budget fraction left unused while other clients share the account.
SHARED_HEADROOM = 0.2
# Search's own budget is per second and answers carry no headers to learn from: pace it exactly.
SEARCH_WINDOW_S, SEARCH_TRANSIT_S = 1.0, 0.05
# Weight of the newest reading of other clients' usage (answers arrive out of order; bursts come and go).
FOREIGN_SMOOTHING = 0.4


class Pacer:
    """Blocks `acquire()` until one more request fits the budget (the simulator limits; this paces).

    :param limit: requests allowed per window; None learns it from ``X-HubSpot-RateLimit-Max``
        (and does not pace until then).
    :param window_s: the rolling window (10 s, or 1 s for search).
    :param utilization: fraction of the budget to aim for (headroom for clock skew and other clients).
    :param reserve: never drive the server's remaining count below this many requests.
    :param shared_headroom: budget fraction left unused while other clients share the account.
    :param transit_s: a send counts this much longer than the window: the server stamps a request
        when it arrives, later than this process sent it.
    :param clock: monotonic clock (injectable for tests).
    :param sleep: sleep function (injectable for tests).
    """

    def __init__(
        self,
        limit: int | None = None,
        window_s: float = 10.0,
        *,
        utilization: float = UTILIZATION,
        reserve: int = RESERVE,
        transit_s: float = TRANSIT_S,
        shared_headroom: float = SHARED_HEADROOM,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.utilization = utilization
        self.reserve = reserve
        self.transit_s = transit_s
        self.shared_headroom = shared_headroom
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._foreign = 0.0
        self._observed: tuple[float, int, int] | None = None  # (sent at, remaining, used) of the latest answer
        self._blocked_until = 0.0

    @classmethod
    def for_search(cls, per_second: int) -> Pacer:
        """The pacer of the search endpoints' per-second budget."""
        return cls(per_second, window_s=SEARCH_WINDOW_S, utilization=1.0, reserve=0, transit_s=SEARCH_TRANSIT_S)

    # -- arithmetic (call with the lock held) --------------------------------------------------
    def _expire(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= self.window_s + self.transit_s:
            self._sent.popleft()

    def _own_since(self, moment: float) -> int:
        """Requests this process sent after the one sent at `moment` (which the server already counted)."""
        return max(0, sum(1 for sent in self._sent if sent >= moment) - 1)

    def _delay(self, now: float) -> float:
        """0 when a request may go now, else how long to wait before checking again."""
        if now < self._blocked_until:
            return self._blocked_until - now
        if not self.limit:
            return 0.0
        self._expire(now)
        age = now - self._observed[0] if self._observed is not None else 0.0
        # Other clients' share is kept until an answer says otherwise: letting it fade while this
        # process waits would make every waiting process burst at once when it expires.
        # Sharing the account, also leave room for the other clients' requests still in flight
        # (HubSpot's count cannot include them yet).
        target = self.limit * (self.utilization - (self.shared_headroom if self._foreign >= 1 else 0.0))
        allowed = max(1.0, target - self._foreign)
        if len(self._sent) >= allowed:
            return max(0.001, self._sent[0] + self.window_s + self.transit_s - now)
        if self._observed is not None and age < self.window_s:
            sent_at, remaining, used = self._observed
            aged_out = 0.5 * used * age / self.window_s  # half the linear estimate: others send in bursts too
            # Every client sharing the account sees the same Remaining: take only this process's
            # share of it, or N processes would each spend all of it at once.
            mine = max(1, len(self._sent))
            share = mine / (mine + self._foreign)
            if self._own_since(sent_at) >= (remaining + aged_out - self.reserve) * share:
                return max(0.001, self.window_s / self.limit)
        return 0.0

    # -- the API -------------------------------------------------------------------------------
    def acquire(self) -> float:
        """Wait until a request may be sent, count it as sent, and return the send time."""
        while True:
            with self._lock:
                now = self._clock()
                delay = self._delay(now)
                if delay <= 0:
                    self._sent.append(now)
                    return now
            self._sleep(min(delay, 0.5))

    def observe(self, headers: Mapping[str, str], sent_at: float) -> None:
        """Learn from an answer's rate-limit headers (absent on search answers: then nothing to learn)."""
        maximum = headers.get("X-HubSpot-RateLimit-Max")
        remaining = headers.get("X-HubSpot-RateLimit-Remaining")
        if maximum is None or remaining is None:
            return
        try:
            maximum_i, remaining_i = int(maximum), int(remaining)
        except ValueError:
            return
        interval = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        with self._lock:
            if self.limit is None or self.limit > maximum_i:
                self.limit = maximum_i
            if interval and interval.isdigit():
                self.window_s = int(interval) / 1000
            used = maximum_i - remaining_i
            mine = sum(1 for sent in self._sent if sent <= sent_at)
            foreign = max(0.0, used - mine)
            # Smooth: answers arrive out of order and other processes' bursts come and go.
            self._foreign = foreign if self._observed is None else \
                (1 - FOREIGN_SMOOTHING) * self._foreign + FOREIGN_SMOOTHING * foreign
            if self._observed is None or sent_at >= self._observed[0]:
                self._observed = (sent_at, remaining_i, used)

    def penalize(self, seconds: float) -> None:
        """After a 429 nobody in this process sends for `seconds` (the server said the window is full)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)
            self._foreign = max(self._foreign, (self.limit or 0) * 0.25)
