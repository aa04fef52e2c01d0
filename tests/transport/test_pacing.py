"""The adaptive pacer against a model of HubSpot's rolling window, on a fake clock (no server, no threads).

`Account` counts arrivals in a rolling 10-second window and answers ``Remaining`` or a 429, as the
simulator does; `simulate` runs N processes, each with `concurrency` workers sending `requests`
requests through its own `Pacer`, as events on one fake clock. A worker asks its pacer with
``acquire()``; the pacer's ``sleep`` raises `WouldWait` instead of blocking, so the worker tries
again when the pacer said (acquire changes nothing before it sleeps). Latencies and the pacers'
jitter are seeded: every run is deterministic, and the figures are checked over several seeds.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field

import pytest

from airflow_provider_appointments.transport.pacing import LEAST_SHARE, UTILIZATION, Pacer

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
             account: Account | None = None, until: float = float("inf")) -> tuple[Account, list[Process], Clock]:
    """Run processes given as (start second, requests) against one account; returns it, them and the clock.

    A request reaches the counter `latency_s` (plus up to `jitter_s`) after its send and is answered
    `answer_s` later; a 429 makes the process pause as the transport does (``penalize``) and send again.
    The run stops when every request is answered, or at `until`.
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
    while events and events[0][0] <= until:
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


def rate(proc: Process, start: float, end: float) -> float:
    """The process's sends per second over [start, end)."""
    return sum(1 for moment in proc.sends if start <= moment < end) / (end - start)


SEEDS = (1, 2, 3)
TARGET = UTILIZATION * LIMIT / WINDOW_S  # the account's target rate while shared (requests per second)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_lone_process_uses_at_least_95_percent_of_the_budget(seed):
    account, procs, _ = simulate([(0.0, 1000)], seed=seed)
    assert account.over_limit == 0
    assert window_use(account, procs) >= 0.95
    lone_target = procs[0].pacer.lone_utilization * LIMIT / WINDOW_S
    assert procs[0].pacer.rate == pytest.approx(lone_target, rel=0.02)  # alone, Remaining never nears zero: no cut


@pytest.mark.parametrize("count", [4, 12, 24])
def test_processes_started_together_fill_the_account_without_429s(count):
    # The bulk backfill's shape: 1000 batch requests split over the shards, 300 / 10 s, 80-110 ms latency.
    for seed in SEEDS:
        account, procs, _ = simulate([(0.0, 1000 // count)] * count, seed=seed)
        assert all(p.todo == 0 for p in procs)
        assert account.over_limit <= 0.005 * sum(len(p.sends) for p in procs), seed
        assert window_use(account, procs) >= 0.90, seed


@pytest.mark.parametrize("count", [4, 12, 24])
def test_the_shares_sum_to_one_and_start_even(count):
    # Mid-run, every process still busy: the estimates of their parts of the account add up to all of it.
    for seed in SEEDS:
        _, procs, _ = simulate([(0.0, 10_000)] * count, seed=seed, until=20.0)
        shares = [p.pacer.share for p in procs]
        assert sum(shares) == pytest.approx(1.0, abs=0.03), seed
        assert max(shares) <= 2.0 * min(shares), seed  # the common slow start splits the account evenly


def test_processes_started_together_do_not_send_in_lockstep():
    _, procs, _ = simulate([(0.0, 10_000)] * 12, until=3.0)
    first = sorted(p.sends[0] for p in procs)
    assert first[-1] - first[0] > 0.1 and first[-1] <= 0.25  # the probes: a random delay each, at most 0.25 s
    assert all(p.sends[1] - p.sends[0] >= 0.08 for p in procs)  # nothing more before the probe's answer
    gaps = [b - a for a, b in zip(procs[0].sends[2:], procs[0].sends[3:])]
    assert max(gaps) > 1.1 * min(gaps)  # jittered spacing


def test_a_process_that_leaves_early_hands_its_share_over_within_a_window():
    # One long task and three short ones start together; the short ones finish early.
    account, procs, _ = simulate([(0.0, 1500), (0.0, 150), (0.0, 150), (0.0, 150)], seed=1)
    assert account.over_limit == 0
    long_task, others = procs[0], procs[1:]
    left = max(p.done_at or 0.0 for p in others)
    assert left < long_task.done_at - 2 * WINDOW_S  # the long task ran alone for a while
    assert rate(long_task, 10.0, left - 1.0) < 0.35 * TARGET  # while crowded it took about a quarter
    assert rate(long_task, left, left + WINDOW_S) >= 0.7 * TARGET  # most of the rest within a window
    assert rate(long_task, left + WINDOW_S, long_task.done_at - 1.0) >= 0.95 * TARGET  # then all of it


def test_a_late_joiner_gets_its_share_within_a_window():
    # Four tasks fill the account; a fifth joins 20 s later.
    account, procs, _ = simulate([(0.0, 1200)] * 4 + [(20.0, 600)], seed=1)
    assert account.over_limit == 0
    late, incumbent = procs[-1], procs[0]
    assert rate(late, 20.0, 20.0 + WINDOW_S) >= 0.5 * TARGET / 5  # it got going
    assert rate(late, 30.0, 40.0) >= 0.75 * rate(incumbent, 30.0, 40.0)  # and then close to an even part
    assert rate(incumbent, 30.0, 40.0) <= 1.1 * TARGET / 5  # the others made room


def test_the_first_answers_do_not_hand_a_process_the_whole_budget():
    # The answer to its probe shows one request used (its own) and nothing else: still, it ramps.
    clock = Clock()
    pacer = Pacer(None, clock=clock, sleep=would_wait, rng=random.Random(1))
    sent = _send(pacer, clock)
    clock.now = sent + 0.1
    pacer.observe({"X-HubSpot-RateLimit-Max": "300", "X-HubSpot-RateLimit-Remaining": "299"}, sent)
    assert pacer.rate == pytest.approx(LEAST_SHARE * TARGET)
    sends = [_send(pacer, clock) for _ in range(3)]
    assert sends[-1] - sends[0] > 1.0 / TARGET * 2 * 0.8  # spaced at the ramp's rate, not at once


def test_a_429_pauses_and_cuts_once():
    clock = Clock()
    pacer = Pacer(300, clock=clock, sleep=would_wait, rng=random.Random(1))
    count = 0
    while clock.now < 3.0:  # alone: the ramp ends at the whole target
        sent = _send(pacer, clock)
        count += 1
        pacer.observe({"X-HubSpot-RateLimit-Max": "300", "X-HubSpot-RateLimit-Remaining": str(300 - count)}, sent)
    before = pacer.rate
    assert before == pytest.approx(pacer.lone_utilization * LIMIT / WINDOW_S, rel=0.02)
    sent = _send(pacer, clock)
    pacer.observe({"X-HubSpot-RateLimit-Max": "300", "X-HubSpot-RateLimit-Remaining": "0"}, sent)  # a 429
    cut = pacer.rate
    assert cut is not None and cut <= 0.8 * before
    pacer.penalize(2.0)  # and the transport's pause: the same event, no second cut
    assert pacer.rate == cut
    with pytest.raises(WouldWait):
        pacer.acquire()
    clock.now += 2.0
    assert _send(pacer, clock) >= sent + 2.0


def test_abandoned_requests_are_no_longer_in_flight():
    clock = Clock()
    pacer = Pacer(300, clock=clock, sleep=would_wait, rng=random.Random(1))
    sent = _send(pacer, clock)
    clock.now = sent + 0.05
    with pytest.raises(WouldWait):  # only the probe until an answer
        pacer.acquire()
    pacer.abandon(sent)  # the connection dropped: no answer, but the slot is free
    pacer.observe({"X-HubSpot-RateLimit-Max": "300", "X-HubSpot-RateLimit-Remaining": "299"}, sent)
    assert pacer.idle() is False and _send(pacer, clock) > sent


def test_the_search_pacer_paces_its_per_second_budget_without_headers():
    clock = Clock()
    pacer = Pacer.for_search(5)
    pacer._clock, pacer._sleep = clock, would_wait
    sends = [_send(pacer, clock) for _ in range(20)]
    for moment in sends:
        pacer.observe({}, moment)  # search answers carry no 10-second headers
    gaps = [b - a for a, b in zip(sends, sends[1:])]
    # evenly, at the budget, never in bursts (a send late by a wait's rounding is counted from when it was due)
    assert min(gaps) == pytest.approx(1 / 5, abs=0.005)
    assert all(sum(1 for t in sends if moment - 1.04 < t <= moment) <= 5 for moment in sends)  # window + transit
    assert sends[-1] - sends[0] <= 19 / 5 * 1.05


def _send(pacer: Pacer, clock: Clock) -> float:
    """acquire(), moving the fake clock on as long as the pacer says to wait."""
    while True:
        try:
            return pacer.acquire()
        except WouldWait as wait:
            clock.now += wait.seconds


def test_the_simulated_account_counts_like_the_simulator():
    account = Account(limit=2)
    assert account.admit(0.0)[1]["X-HubSpot-RateLimit-Remaining"] == "1"
    assert account.admit(1.0)[1]["X-HubSpot-RateLimit-Remaining"] == "0"
    assert account.admit(2.0)[0] == 429 and account.over_limit == 1
    assert account.admit(10.0)[0] == 200  # the first one left the window


def test_a_late_send_does_not_push_every_later_send_back():
    """Sleeps overshoot: the next gap counts from when a send was due, so lateness does not add up."""
    clock = Clock()
    pacer = Pacer(100, window_s=10.0, adaptive=False)
    pacer._clock, pacer._sleep = clock, would_wait
    sends = []
    for _ in range(50):
        sends.append(_send_late(pacer, clock, 0.002))  # every wait ends 2 ms late
    rate = 100 * pacer.utilization / 10.0
    assert (sends[-1] - sends[0]) / 49 == pytest.approx(1 / rate, rel=0.01)  # not 1 / rate + 2 ms
    assert min(b - a for a, b in zip(sends, sends[1:])) >= 1 / rate - 0.0021


def test_a_send_after_an_idle_spell_starts_the_spacing_afresh():
    clock = Clock()
    pacer = Pacer(100, window_s=10.0, adaptive=False)
    pacer._clock, pacer._sleep = clock, would_wait
    _send(pacer, clock)
    clock.now += 5.0  # nothing to send for a while
    resumed = _send(pacer, clock)
    following = _send(pacer, clock)
    assert following - resumed == pytest.approx(10.0 / (100 * pacer.utilization))  # no catch-up burst


def _send_late(pacer: Pacer, clock: Clock, late: float) -> float:
    while True:
        try:
            return pacer.acquire()
        except WouldWait as wait:
            clock.now += wait.seconds + late
