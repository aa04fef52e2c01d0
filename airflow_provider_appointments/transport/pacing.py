"""Client-side pacing: stay under the account's budget instead of living on 429s.

HubSpot counts an account's requests in a rolling window (10 s for most endpoints, 1 s for search)
and tells every answer's sender ``X-HubSpot-RateLimit-Max`` and ``-Remaining``. Several processes
(the mapped shards of a backfill) may share the account; each learns about the others only from
those headers. `Pacer` paces one process:

- **Even sends.** Requests leave one by one at the process's *rate*, spaced ``1 / rate`` apart with
  ±20 % jitter, never as bursts; in-flight requests are capped at what that rate needs over two round
  trips, so a slow answer cannot make every worker thread send at once.
- **Share.** The process's share of the account is its own sends that an answer counted over the
  count HubSpot reported (each less half a request: an answer always comes right after its own send
  was counted), as a ratio of decayed sums. These shares sum to one over the processes, so each
  settling on ``share × target`` fills the account to the target (``utilization`` of the limit) for
  any number of processes. A count under or over the target adds or takes ``ROOM`` of the difference
  per window.
- **Present rate.** The window's count tells what was sent over the last 10 s; to hand over at once
  when a peer stops (or to hold back when one starts) the process also estimates the account's rate
  *now*: its own rate, plus how fast the others' count grows, plus what of it leaves the window (what
  they sent a window earlier, as estimated then). It closes its part of the gap between that rate
  and the target (its part of the present rate, or its share of the window if larger) within about
  half a second, and settles on its share of the target over a few seconds. Those that remain after a
  peer stops thus take over its part at once, not only as its requests leave the window.
- **Start.** Processes started together probe once each after a random delay (at most 0.25 s), so
  their first sends are spread; then every one of them ramps on the same clock (doubling every 0.3 s
  from the least share), and how far the count has grown beyond what one of them sent tells how many
  are on the ramp: each stops at the even split. A process that finds the account already busy skips
  the ramp and starts from a bootstrap share, so it gets going within a window.
- **Edges.** Remaining near zero cuts the rate once per round trip; a 429 pauses the process
  (``penalize``) and cuts it too. A process never sends more than the lone fill of the limit in a
  window (over the window and the transit, and never past the limit less the reserve), whatever it
  has learned; a lone process (share one) aims a little higher than one sharing.

Search has its own per-second budget and answers without these headers: `Pacer.for_search` paces it
evenly at the budget, no probe, no ramp. Everything is arithmetic on an injectable clock, so it is
tested without a server (tests/transport/test_pacing.py simulates processes sharing an account).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

# Target fill of the account's window while sharing it: headroom for arrival jitter and the others'
# requests in flight, which no answer has counted yet.
UTILIZATION = 0.97
# A lone process knows every request in the window (they are its own), so it may aim higher.
LONE_UTILIZATION = 0.98
# Never drive the account's Remaining below this: other clients may need a request or two.
RESERVE = 2
# How much later than its send a request reaches HubSpot's counter.
TRANSIT_S = 0.2
# Search's own budget is per second and answers carry no headers to learn from: pace it exactly.
SEARCH_WINDOW_S, SEARCH_TRANSIT_S = 1.0, 0.05
# The first probe waits a random delay up to this: processes started together do not all send at once.
PROBE_DELAY_S = 0.25
# The least share a process claims (and where the ramp starts): a newcomer must be able to get going.
LEAST_SHARE = 1 / 32
# A process that finds the account busy claims this share for its first window (there is no ramp to
# tell it how many others there are); the others make room as their shares of the count shrink.
BOOTSTRAP_SHARE = 1 / 8
# "Busy": the first answer's count is above this fraction of the limit (a common start has sent little).
BUSY = 0.5
# Spacing between sends varies by this fraction either way: processes must not fall into lockstep.
JITTER = 0.2
# In-flight cap: what the rate needs over this many round trips (plus one).
FLIGHT_RTTS = 2.0
# Decay time of the share's sums: long enough to smooth single answers, short against the window.
SHARE_HORIZON_S = 1.0
# The ramp doubles every this many seconds: slow enough that the counts tell the crowd before overshoot.
DOUBLING_S = 0.3
# Half a request: an answer's own send was counted just before it (see the module docstring).
HALF = 0.5
# The gap to the target rate is closed within this time (a few answers even at 24 processes).
TRACK_S = 0.5
# Fraction of the rate gap closed per TRACK_S: less than all of it, as the estimate is noisy.
DERIV = 0.7
# The rate settles on share × target within this time.
ANCHOR_S = 2.0
# Fraction of the count's distance from the target added to (or taken from) the rate per window.
ROOM = 0.5
# The others' count's growth is measured over this span of answers.
SLOPE_S = 2.0
# What leaves the window is the estimate of a window ago blended with the uniform one by this
# much: an error in an estimate must not come back every window for ever.
LEAK = 0.2
# Remaining at or below this fraction of the limit (at least reserve + 1) counts as "near zero".
LOW_WATER = 0.01
# Multiplicative cut when Remaining nears zero or after a 429.
CUT = 0.8


class Pacer:
    """Blocks `acquire()` until this process may send its next request (the simulator limits; this paces).

    :param limit: requests allowed per window; None learns it from ``X-HubSpot-RateLimit-Max``.
    :param window_s: the rolling window (10 s, or 1 s for search).
    :param utilization: target fill of the account's window while sharing it.
    :param reserve: never drive the server's remaining count below this many requests.
    :param transit_s: a send counts this much longer than the window (the server stamps arrivals).
    :param adaptive: learn from the rate-limit headers (probe, ramp, share); False paces at the limit.
    :param clock: monotonic clock (injectable for tests).
    :param sleep: sleep function (injectable for tests).
    :param rng: randomness of the probe delay and the spacing jitter (seeded in tests).
    """

    def __init__(
        self,
        limit: int | None = None,
        window_s: float = 10.0,
        *,
        utilization: float = UTILIZATION,
        reserve: int = RESERVE,
        transit_s: float = TRANSIT_S,
        adaptive: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.utilization = utilization
        self.lone_utilization = min(1.0, utilization + LONE_UTILIZATION - UTILIZATION) if adaptive else utilization
        self.reserve = reserve
        self.transit_s = transit_s
        self.adaptive = adaptive
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()  # own send times within the window (and transit)
        self._flight: list[float] = []  # send times of requests not answered yet
        self._rate: float | None = None  # requests per second; None until known
        self._last_at: float | None = None
        self._due: float | None = None  # when the request about to be sent was due
        self._spacing = 1.0  # the next gap, in units of 1 / rate
        self._first_call: float | None = None
        self._probe_at = 0.0
        self._answered = False
        self._rtt = 0.1
        self._mine_sum = self._used_sum = 0.0
        self._share_at = 0.0
        self._updated_at = 0.0
        self._slow_start = True
        self._busy = False
        self._cap = math.inf  # the ramp's ceiling: the even split of the processes on it
        self._ramped, self._ramped_at = 0.0, math.nan  # integral of the ramp's rate: one process's sends
        self._counts: deque[tuple[float, int]] = deque()  # (sent at, the others' count) of recent answers
        self._history: deque[tuple[float, float]] = deque()  # (sent at, the others' estimated rate)
        self._cut_at = -math.inf
        self._blocked_until = 0.0

    @classmethod
    def for_search(cls, per_second: int) -> Pacer:
        """The pacer of the search endpoints' per-second budget."""
        return cls(per_second, window_s=SEARCH_WINDOW_S, utilization=1.0, reserve=0, transit_s=SEARCH_TRANSIT_S,
                   adaptive=False)

    @property
    def share(self) -> float:
        """This process's estimated share of the account's window (1 before any answer)."""
        return self._mine_sum / self._used_sum if self._used_sum > 0 else 1.0

    @property
    def rate(self) -> float | None:
        """The present rate allowance (requests per second), None while it is not known."""
        with self._lock:
            return self._rate_at(self._clock())

    def _target(self, share: float = 0.0) -> float:
        """The account's target rate (requests per second) as seen by a process with this share."""
        assert self.limit
        fill = self.utilization + (self.lone_utilization - self.utilization) * share ** 2
        return fill * self.limit / self.window_s

    # -- sending (call with the lock held) -----------------------------------------------------
    def _expire(self, now: float) -> None:
        horizon = self.window_s + self.transit_s
        while self._sent and now - self._sent[0] >= horizon:
            self._sent.popleft()
        while self._flight and now - self._flight[0] >= horizon:
            self._flight.pop(0)  # no answer within a window and nobody said so: lost

    def _rate_at(self, now: float) -> float | None:
        """The rate in force: fixed without headers; while ramping, the ramp's, on the shared clock."""
        if not self.adaptive:
            return self.limit * self.utilization / self.window_s if self.limit else None
        if not self._slow_start or self._rate is None or self._first_call is None or not self.limit:
            return self._rate
        return min(self._cap, self._ramp_rate(now))

    def _ramp_rate(self, now: float) -> float:
        began = (now if self._first_call is None else self._first_call) + PROBE_DELAY_S + 2 * self._rtt
        return self._target() * LEAST_SHARE * 2 ** (max(0.0, now - began) / DOUBLING_S)

    def _delay(self, now: float) -> float:
        """0 when a request may go now, else how long to wait before asking again."""
        if now < self._blocked_until:
            return self._blocked_until - now
        self._expire(now)
        if self.adaptive and not self._answered:  # one probe, after a random delay, until an answer
            if self._first_call is None:
                self._first_call = now
                self._probe_at = now + self._rng.uniform(0.0, PROBE_DELAY_S)
            if self._flight:
                return max(0.001, self._flight[0] + self.window_s + self.transit_s - now)
            return max(0.0, self._probe_at - now)
        if self.limit and len(self._sent) >= self._most_in_horizon():
            return max(0.001, self._sent[0] + self.window_s + self.transit_s - now)
        rate = self._rate_at(now)
        self._due = None
        if not rate or self._last_at is None:
            return 0.0
        if self.adaptive and len(self._flight) >= 1 + math.ceil(rate * FLIGHT_RTTS * self._rtt):
            return max(0.001, self._rtt / 4)
        gap = self._spacing / rate
        self._due = self._last_at + gap
        if now - self._due > gap:  # idle for a while: the next gap counts from this send
            self._due = None
        return max(0.0, (self._due or now) - now)

    def _most_in_horizon(self) -> float:
        """Own sends allowed within the window and transit: the lone fill's rate over that span, and never
        more than the limit less the reserve (the span holds every send the server's window may count)."""
        assert self.limit
        span = self.window_s + self.transit_s
        return min(self.lone_utilization * self.limit * span / self.window_s, self.limit - self.reserve)

    def _sent_now(self, now: float) -> None:
        self._sent.append(now)
        self._flight.append(now)
        # The next gap is drawn now and applied at the rate in force when it is due.
        self._spacing = self._rng.uniform(1 - JITTER, 1 + JITTER) if self.adaptive else 1.0
        # A send a little late (a sleep overshoots by a millisecond or two) counts from when it was due:
        # at 30 requests/s, lateness added up send after send costs a few percent of the budget.
        self._last_at = now if self._due is None else min(now, self._due)

    def _land(self, sent_at: float, now: float) -> None:
        """A request ended: no longer in flight; its round trip updates the estimate."""
        try:
            self._flight.remove(sent_at)
        except ValueError:
            return
        sample = max(0.001, now - sent_at)
        self._rtt = 0.8 * self._rtt + 0.2 * sample if self._answered else sample

    # -- learning (call with the lock held) ----------------------------------------------------
    def _learn(self, sent_at: float, now: float, used: int, remaining: int) -> None:
        """One answer's count: update the share and the rate."""
        mine = sum(1 for sent in self._sent if sent_at - self.window_s < sent <= sent_at)
        decay = math.exp(-(now - self._share_at) / SHARE_HORIZON_S)
        self._mine_sum = self._mine_sum * decay + max(0.0, mine - HALF)
        self._used_sum = self._used_sum * decay + max(used, mine, 1) - HALF
        self._share_at = now
        if self._rate is None:
            self._rate, self._updated_at = self._target() * LEAST_SHARE, now
            self._busy = used > BUSY * (self.limit or 0)  # others were sending before this process began
            self._ramped_at = now
        young = self._first_call is not None and now - self._first_call < self.window_s
        share = max(self.share, LEAST_SHARE, BOOTSTRAP_SHARE if self._busy and young else 0.0)
        target = self._target(share)
        dt, self._updated_at = min(1.0, now - self._updated_at), now
        present = self._present_rate(sent_at, used - mine)
        gap = target - present
        if self._slow_start:
            rate = self._ramp(sent_at, now, used, mine)
        else:
            span = self.window_s if self._busy or not young else max(self._rtt, now - (self._first_call or 0.0))
            room = target * span - used  # the fill this process aims at (a lone one aims higher)
            goal = share * max(0.0, target + ROOM * room / self.window_s)
            # This process's part of the gap to the target rate, soon; its share of the target, later.
            part = max(share, self._rate / present) if present > 0 else share  # of the account's rate now
            rate = self._rate + part * DERIV * gap * min(1.0, dt / TRACK_S) \
                + (goal - self._rate) * min(1.0, dt / ANCHOR_S)
        if remaining <= max(self.reserve + 1, LOW_WATER * (self.limit or 0)) and sent_at > self._cut_at:
            rate *= CUT  # once per round trip: older answers still show the load from before the cut
            self._cut_at, self._slow_start = now, False
        self._rate = min(target, max(self._target() * LEAST_SHARE, rate))

    def _present_rate(self, sent_at: float, foreign: int) -> float:
        """The account's sending rate now: this process's, and the growth of the others' count plus what
        of it is leaving the window (what they sent a window earlier, as estimated then)."""
        counts, history = self._counts, self._history
        counts.append((sent_at, foreign))
        while len(counts) > 2 and sent_at - counts[1][0] >= SLOPE_S:
            counts.popleft()
        then, before = counts[0]
        if sent_at - then < SLOPE_S / 2:
            return self._target(self.share)  # too soon to tell: no correction
        while len(history) > 1 and history[1][0] <= sent_at - self.window_s:
            history.popleft()
        if history and history[0][0] <= sent_at - self.window_s:
            leaving = history[0][1]
        else:  # before this process's first answers: as busy as now, or idle (a common start)
            leaving = foreign / self.window_s if self._busy else 0.0
        leaving = (1 - LEAK) * leaving + LEAK * foreign / self.window_s
        others = max(0.0, (foreign - before) / (sent_at - then) + leaving)
        history.append((sent_at, others))
        return (self._rate or 0.0) + others

    def _ramp(self, sent_at: float, now: float, used: int, mine: int) -> float:
        """Slow start on one clock for every process started together; their counts tell how many they are."""
        assert self._rate is not None
        if self._busy:  # no common ramp to read: start from the bootstrap share
            self._slow_start = False
            self._mine_sum = self._used_sum * BOOTSTRAP_SHARE
            return self._target() * BOOTSTRAP_SHARE
        ramp = self._ramp_rate(now)
        in_force = min(self._cap, ramp)
        self._ramped += in_force * (now - self._ramped_at)
        self._ramped_at = now
        expected = 1 + max(0.0, self._ramped - in_force * (now - sent_at))  # the probe, then the ramp
        # The others' part of the count over what one of them has sent by now (a count trails the
        # ramp's integral by half a send; this process's own has just grown by one).
        crowd = 1 + max(0, used - mine) / max(HALF, expected - HALF)
        self._cap = self._target() / crowd
        began = (self._first_call or 0.0) + PROBE_DELAY_S + 2 * self._rtt  # every probe counted by then
        if ramp < self._cap or sent_at < began:
            return min(ramp, self._cap)
        self._slow_start = False
        self._mine_sum = self._used_sum / crowd  # start the share from the even split
        return self._cap

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
                    self._sent_now(now)
                    return now
            self._sleep(min(delay, 0.5))

    def abandon(self, sent_at: float) -> None:
        """The request sent at `sent_at` ended without an answer (connection error, timeout)."""
        with self._lock:
            self._land(sent_at, self._clock())

    def observe(self, headers: Mapping[str, str], sent_at: float) -> None:
        """Learn from an answer: its round trip, and its rate-limit headers (absent on search answers)."""
        with self._lock:
            now = self._clock()
            self._land(sent_at, now)
            self._answered = True
            if not self.adaptive:
                return
            maximum, remaining = headers.get("X-HubSpot-RateLimit-Max"), headers.get("X-HubSpot-RateLimit-Remaining")
            try:
                maximum_i, remaining_i = int(maximum or ""), int(remaining or "")
            except ValueError:
                return
            if self.limit is None or self.limit > maximum_i:
                self.limit = maximum_i
            interval = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
            if interval and interval.isdigit():
                self.window_s = int(interval) / 1000
            self._learn(sent_at, now, maximum_i - remaining_i, remaining_i)

    def penalize(self, seconds: float) -> None:
        """After a 429 nobody in this process sends for `seconds` (the server said the window is full)."""
        with self._lock:
            now = self._clock()
            self._blocked_until = max(self._blocked_until, now + seconds)
            if self._rate is not None and now - self._cut_at > self.transit_s:  # observe() may have cut already
                self._rate = max(self._rate * CUT, self._target() * LEAST_SHARE) if self.limit else self._rate
                self._cut_at = now
