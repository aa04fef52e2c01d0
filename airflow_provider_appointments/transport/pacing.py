"""Client-side pacing: stay under the account's budget instead of living on 429s.

HubSpot counts requests per account in a rolling window (10 s for most endpoints, 1 s for search).
`Pacer` keeps the send times of this process in the same window and also listens to HubSpot's
``X-HubSpot-RateLimit-Max`` / ``-Remaining`` headers. The server's count includes every other
process using the same account, so:

1. ``foreign`` = what the server counted beyond this process's own sends (smoothed); this process
   lets itself use ``ceiling - foreign`` of the window, so N processes converge on sharing it;
2. ``ceiling`` = how full this process lets the whole account's window get. It adapts to every
   answer's ``Remaining`` (AIMD, as TCP does with its window): it creeps up by a small step while
   Remaining shows room, and is cut by a factor when Remaining nears zero (or on a 429) -- at most
   once per round trip, as answers to requests sent before a cut cannot show its effect. Alone,
   Remaining never nears zero, so a lone process stays at ``utilization``; processes sharing an
   account find how much of the budget their in-flight requests let them use without 429s, instead of
   leaving a fixed fraction of it unused;
3. ``estimated remaining`` = the last ``Remaining`` seen, plus what has aged out of the window
   since, minus ``reserve``; this process may spend only its share of it (its sends over all sends
   that answer counted; while sharing, only half of that) before the next answer tells it more.

Everything is pure arithmetic on an injectable clock, so it is tested without a server.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

# Aim a little under the budget: HubSpot stamps requests on arrival, clocks differ, and a 429 costs
# a whole window of waiting. The upper bound of the adaptive ceiling, where a lone process runs (its
# own count is exact, so it needs little margin; sharing processes are held back by the cuts below).
UTILIZATION = 0.98
# Never drive the account's Remaining below this: other clients may need a request or two.
RESERVE = 2
# How much later than its send a request reaches HubSpot's counter.
TRANSIT_S = 0.2
# Search's own budget is per second and answers carry no headers to learn from: pace it exactly.
SEARCH_WINDOW_S, SEARCH_TRANSIT_S = 1.0, 0.05
# Weight of the newest reading of other clients' usage (answers arrive out of order; bursts come and go).
FOREIGN_SMOOTHING = 0.4
# While sharing, spend at most this fraction of this process's share of the last Remaining before the
# next answer: the others' requests in flight are not in that count yet, so approach the edge
# halfway per answer instead of all the way.
GUARD = 0.5
# -- the adaptive ceiling (fractions of the limit) --
# Additive increase per answer that shows room: small, so processes sharing an account approach the
# edge over a few seconds (a few dozen answers each) rather than all jumping at it together.
CEILING_STEP = 0.004
# Multiplicative decrease when Remaining nears zero: enough to absorb what the clients still have
# in flight, not so much that the budget sits idle while the ceiling climbs back (0.85 lost more to
# the climb than it saved in the simulations of tests/transport/test_pacing.py).
CEILING_CUT = 0.9
# Lowest ceiling: below half the budget, the cuts come from something other than sharing (a burst
# of injected 429s, another app's spike) and starving would not help.
CEILING_FLOOR = 0.5
# "Nears zero": Remaining at or below this fraction of the limit (at least reserve + 1), or at or
# below what is already on its way (see _adapt). Must stay under the room a lone process at
# ``utilization`` leaves, or a lone process would cut itself.
LOW_WATER = 0.01


class Pacer:
    """Blocks `acquire()` until one more request fits the budget (the simulator limits; this paces).

    :param limit: requests allowed per window; None learns it from ``X-HubSpot-RateLimit-Max``
        (and does not pace until then).
    :param window_s: the rolling window (10 s, or 1 s for search).
    :param utilization: fraction of the budget to aim for at most (headroom for clock skew); the
        adaptive ceiling starts here and never rises above it.
    :param reserve: never drive the server's remaining count below this many requests.
    :param transit_s: a send counts this much longer than the window: the server stamps a request
        when it arrives, later than this process sent it.
    :param ceiling_step: additive increase of the ceiling per answer with room (fraction of the limit).
    :param ceiling_cut: multiplicative decrease of the ceiling when Remaining nears zero or on a 429.
    :param ceiling_floor: the lowest ceiling (fraction of the limit).
    :param low_water: Remaining at or below this fraction of the limit counts as "near zero".
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
        ceiling_step: float = CEILING_STEP,
        ceiling_cut: float = CEILING_CUT,
        ceiling_floor: float = CEILING_FLOOR,
        low_water: float = LOW_WATER,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.utilization = utilization
        self.reserve = reserve
        self.transit_s = transit_s
        self.ceiling_step = ceiling_step
        self.ceiling_cut = ceiling_cut
        self.ceiling_floor = min(ceiling_floor, utilization)
        self.low_water = low_water
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._foreign = 0.0
        self._ceiling = utilization
        self._cut_at = float("-inf")  # when the ceiling was last cut
        self._observed: tuple[float, int, int] | None = None  # (sent at, remaining, used) of the latest answer
        self._share = 1.0  # this process's part of the latest answer's count
        self._blocked_until = 0.0

    @classmethod
    def for_search(cls, per_second: int) -> Pacer:
        """The pacer of the search endpoints' per-second budget."""
        return cls(per_second, window_s=SEARCH_WINDOW_S, utilization=1.0, reserve=0, transit_s=SEARCH_TRANSIT_S)

    @property
    def ceiling(self) -> float:
        """How full (fraction of the limit) this process currently lets the account's window get."""
        return self._ceiling

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
        allowed = max(1.0, self.limit * self._ceiling - self._foreign)
        if len(self._sent) >= allowed:
            return max(0.001, self._sent[0] + self.window_s + self.transit_s - now)
        if self._observed is not None and age < self.window_s:
            sent_at, remaining, used = self._observed
            aged_out = 0.5 * used * age / self.window_s  # half the linear estimate: others send in bursts too
            # Every client sharing the account sees the same Remaining: take only this process's
            # share of it (its part of that answer's count), or N processes would each spend all of it.
            spend = (remaining + aged_out - self.reserve) * self._share * (GUARD if self._foreign >= 1 else 1.0)
            if self._own_since(sent_at) >= spend:
                return max(0.001, self.window_s / self.limit)
        return 0.0

    def _cut(self, sent_at: float) -> None:
        """Multiplicative decrease, once per round trip: answers to requests sent before the last cut
        still show the load from before it, and cutting again for each of them would starve."""
        if sent_at > self._cut_at:
            self._ceiling = max(self.ceiling_floor, self._ceiling * self.ceiling_cut)
            self._cut_at = self._clock()

    def _adapt(self, remaining: int, maximum: int, sent_at: float, mine: int) -> None:
        """AIMD on the ceiling from one answer's Remaining."""
        # What is already on its way and not in this count yet: this process's later sends, and as
        # many again per own request for the other clients (their share of the window alike).
        in_flight = self._own_since(sent_at) * (mine + self._foreign) / max(1, mine)
        if remaining <= max(self.reserve + 1, self.low_water * maximum, self.reserve + in_flight):
            self._cut(sent_at)
        else:
            self._ceiling = min(self.utilization, self._ceiling + self.ceiling_step)

    # -- the API -------------------------------------------------------------------------------
    def idle(self) -> bool:
        """Nothing sent within the window and no 429 pause: what it learned may belong to another run."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            return not self._sent and now >= self._blocked_until

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
            # This process's sends the server counted with this one: sent before it, less than a window
            # earlier (as latencies are alike). Older ones left HubSpot's window already: counting them
            # as "mine" would hide other clients' requests right when bursts expire together.
            mine = sum(1 for sent in self._sent if sent_at - self.window_s < sent <= sent_at)
            foreign = max(0.0, used - mine)
            # Smooth: answers arrive out of order and other processes' bursts come and go.
            self._foreign = foreign if self._observed is None else \
                (1 - FOREIGN_SMOOTHING) * self._foreign + FOREIGN_SMOOTHING * foreign
            self._adapt(remaining_i, maximum_i, sent_at, mine)
            if self._observed is None or sent_at >= self._observed[0]:
                self._observed = (sent_at, remaining_i, used)
                self._share = max(1, mine) / max(1, mine, used)

    def penalize(self, seconds: float) -> None:
        """After a 429 nobody in this process sends for `seconds` (the server said the window is full)."""
        with self._lock:
            now = self._clock()
            self._blocked_until = max(self._blocked_until, now + seconds)
            self._foreign = max(self._foreign, (self.limit or 0) * 0.25)
            if now - self._cut_at > self.transit_s:  # observe() may have cut for this very 429 already
                self._cut(now)
