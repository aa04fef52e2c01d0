"""The adaptive pacer against a model of HubSpot's rolling window, on a fake clock (no server, no threads).

`Account` counts arrivals in a rolling 10-second window and answers ``Remaining`` or a 429, as the
simulator does; `simulate` runs N processes, each with `concurrency` workers sending `requests`
requests through its own `Pacer`, as events on one fake clock. A worker asks its pacer with
``acquire()``; the pacer's ``sleep`` raises `WouldWait` instead of blocking, so the worker tries
again when the pacer said (acquire changes nothing before it sleeps).
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field

from airflow_provider_appointments.transport.pacing import Pacer

LIMIT, WINDOW_S = 300, 10.0


class WouldWait(Exception):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def would_wait(seconds: float) -> None:
    raise WouldWait(seconds)


class Account:
    """HubSpot's rolling-window counter of one account: arrivals in the last 10 s, at most `limit`."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self.arrivals: deque[float] = deque()
        self.admitted: list[float] = []
        self.over_limit = 0

    def admit(self, now: float) -> tuple[int, dict[str, str]]:
        while self.arrivals and now - self.arrivals[0] >= WINDOW_S:
            self.arrivals.popleft()
        headers = {"X-HubSpot-RateLimit-Max": str(self.limit), "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}
        if len(self.arrivals) >= self.limit:
            self.over_limit += 1
            return 429, {**headers, "X-HubSpot-RateLimit-Remaining": "0"}
        self.arrivals.append(now)
        self.admitted.append(now)
        return 200, {**headers, "X-HubSpot-RateLimit-Remaining": str(self.limit - len(self.arrivals))}

    def window_use(self, start: float, end: float, step: float = 0.05) -> float:
        """Mean fill of the rolling window (admitted in the trailing 10 s over the limit) over [start, end]."""
        total, samples, low, high = 0, 0, 0, 0
        for moment in _frange(start, end, step):  # admitted times are sorted: two pointers
            while high < len(self.admitted) and self.admitted[high] <= moment:
                high += 1
            while low < high and self.admitted[low] <= moment - WINDOW_S:
                low += 1
            total, samples = total + high - low, samples + 1
        return total / samples / self.limit


def _frange(start: float, end: float, step: float) -> list[float]:
    return [start + i * step for i in range(int((end - start) / step) + 1)]


@dataclass
class Process:
    """One task: a pacer and the requests it still has to send."""

    pacer: Pacer
    todo: int
    start_s: float = 0.0
    done_at: float | None = None
    in_flight: int = 0
    sends: list[float] = field(default_factory=list)


def simulate(processes: list[tuple[float, int]], *, concurrency: int = 8, latency_s: float = 0.08,
             jitter_s: float = 0.03, answer_s: float = 0.01, seed: int = 7,
             account: Account | None = None) -> tuple[Account, list[Process], Clock]:
    """Run processes given as (start second, requests) against one account; returns it, them and the clock.

    A request reaches the counter `latency_s` (plus up to `jitter_s`) after its send and is answered
    `answer_s` later; a 429 makes the process pause as the transport does (``penalize``) and send again.
    """
    rng = random.Random(seed)
    clock = Clock()
    account = account or Account()
    procs = [Process(Pacer(None, clock=clock, sleep=would_wait, rng=random.Random(seed * 1000 + index)), todo, start)
             for index, (start, todo) in enumerate(processes)]
    events: list[tuple[float, int, str, int, float, dict]] = []  # (when, order, what, process, sent at, headers)
    order = 0

    def at(when: float, what: str, index: int, sent_at: float = 0.0, headers: dict | None = None) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (when, order, what, index, sent_at, headers or {}))

    for index, proc in enumerate(procs):
        for _ in range(concurrency):
            at(proc.start_s, "try", index)
    while events:
        clock.now, _, what, index, sent_at, headers = heapq.heappop(events)
        proc = procs[index]
        if what == "try":
            if proc.todo - proc.in_flight <= 0:
                continue  # this worker has nothing left to send
            try:
                moment = proc.pacer.acquire()
            except WouldWait as wait:
                at(clock.now + wait.seconds, "try", index)
                continue
            proc.in_flight += 1
            proc.sends.append(moment)
            at(clock.now + latency_s + rng.random() * jitter_s, "arrive", index, moment)
        elif what == "arrive":
            status, headers = account.admit(clock.now)
            at(clock.now + answer_s, "answer" if status == 200 else "429", index, sent_at, headers)
        else:
            proc.in_flight -= 1
            proc.pacer.observe(headers, sent_at)
            if what == "429":
                pause = rng.uniform(1.0, WINDOW_S)  # the retry policy's wait without Retry-After
                proc.pacer.penalize(pause)
                at(clock.now + pause, "try", index)
                continue
            proc.todo -= 1
            if proc.todo == 0:
                proc.done_at = clock.now
            at(clock.now, "try", index)
    return account, procs, clock


def window_use(account: Account, procs: list[Process]) -> float:
    """How full the account's window was, on average, from the first 10 s to the last answer."""
    return account.window_use(min(p.start_s for p in procs) + WINDOW_S, max(p.done_at or 0.0 for p in procs))


def test_four_processes_sharing_an_account_use_most_of_it_without_429s():
    # The bulk backfill's shape: 4 shards × 250 batch requests at once, 300 / 10 s, 80 ms latency.
    account, procs, _ = simulate([(0.0, 250)] * 4)
    assert account.over_limit == 0
    assert window_use(account, procs) >= 0.90  # a fixed 20 % headroom left this near 0.78
    assert all(p.todo == 0 for p in procs)


def test_a_lone_process_uses_at_least_95_percent_of_the_budget():
    account, procs, _ = simulate([(0.0, 1000)])
    assert account.over_limit == 0
    assert window_use(account, procs) >= 0.95
    assert procs[0].pacer.ceiling == UTILIZATION  # alone, Remaining never nears zero: no cut


def test_the_ceiling_is_cut_when_remaining_nears_zero_and_not_again_for_older_answers():
    clock = Clock()
    pacer = Pacer(300, clock=clock, sleep=would_wait)
    first = pacer.acquire()
    clock.now = 0.1
    pacer.observe({"X-HubSpot-RateLimit-Max": "300", "X-HubSpot-RateLimit-Remaining": "2"}, first)
    assert pacer.ceiling == UTILIZATION * 0.9
    # An answer to a request sent before the cut shows the load from before it: no second cut.
    pacer.observe({"X-HubSpot-RateLimit-Max": "300", "X-HubSpot-RateLimit-Remaining": "1"}, first)
    assert pacer.ceiling == UTILIZATION * 0.9
    clock.now = 10.5  # that answer's window has passed: sending again is allowed
    later = pacer.acquire()
    clock.now = 10.6
    pacer.observe({"X-HubSpot-RateLimit-Max": "300", "X-HubSpot-RateLimit-Remaining": "1"}, later)
    assert pacer.ceiling == UTILIZATION * 0.9 * 0.9
    # Room again: additive increase, answer by answer, up to utilization and no further.
    for step in range(200):
        clock.now = 11.0 + step * 0.01
        pacer.observe({"X-HubSpot-RateLimit-Max": "300", "X-HubSpot-RateLimit-Remaining": "200"}, clock.now)
    assert pacer.ceiling == UTILIZATION


def test_a_429_cuts_the_ceiling_once():
    clock = Clock()
    pacer = Pacer(300, clock=clock, sleep=would_wait)
    sent = pacer.acquire()
    clock.now = 0.1
    # The 429 carries Remaining 0 (observe cuts), then the transport penalizes (no second cut).
    pacer.observe({"X-HubSpot-RateLimit-Max": "300", "X-HubSpot-RateLimit-Remaining": "0"}, sent)
    pacer.penalize(2.0)
    assert pacer.ceiling == UTILIZATION * 0.9
    # A 429 without headers cuts through penalize alone.
    clock.now = 5.0
    pacer.penalize(2.0)
    assert pacer.ceiling == UTILIZATION * 0.9 * 0.9


def test_it_backs_off_while_others_use_the_account_and_recovers_after_they_leave():
    # One long task and three short ones start together; the short ones finish early.
    account, procs, _ = simulate([(0.0, 1500), (0.0, 150), (0.0, 150), (0.0, 150)])
    assert account.over_limit == 0
    long_task, others = procs[0], procs[1:]
    crowded_until = max(p.done_at or 0.0 for p in others)
    assert crowded_until < long_task.done_at - 3 * WINDOW_S  # the long task ran alone for a while
    crowded = [t for t in long_task.sends if 10.0 <= t < crowded_until]
    alone = [t for t in long_task.sends if crowded_until + 2 * WINDOW_S <= t < long_task.done_at - 1.0]
    crowded_rate = len(crowded) / (crowded_until - 10.0)
    alone_rate = len(alone) / (long_task.done_at - 1.0 - crowded_until - 2 * WINDOW_S)
    assert crowded_rate < 0.5 * LIMIT / WINDOW_S  # it left most of the budget to the others
    assert alone_rate >= 0.9 * LIMIT / WINDOW_S  # and took it back once they were gone
    assert long_task.pacer.ceiling == UTILIZATION


def test_the_simulated_account_counts_like_the_simulator():
    account = Account(limit=2)
    assert account.admit(0.0)[1]["X-HubSpot-RateLimit-Remaining"] == "1"
    assert account.admit(1.0)[1]["X-HubSpot-RateLimit-Remaining"] == "0"
    assert account.admit(2.0)[0] == 429 and account.over_limit == 1
    assert account.admit(10.0)[0] == 200  # the first one left the window
