"""The retry policy: one piece of data that decides whether, and after how long, a request is sent again."""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any


class Outcome(enum.Enum):
    """How a failed attempt ended; this alone decides whether sending it again could apply a write twice."""

    NEVER_SENT = "never sent"  # refused, unresolvable host, connect timeout: nothing reached the server
    MAYBE_APPLIED = "maybe applied"  # dropped or timed out after sending, a 5xx, an unreadable 2xx
    REJECTED = "rejected"  # an error answer (4xx): the server refused the request, nothing was applied
    EXPIRED_TOKEN = "expired token"  # 401 EXPIRED_AUTHENTICATION: refresh the token, then send again
    MISCONFIGURED = "misconfigured"  # TLS/plain-HTTP mismatch, bad certificate: sending again cannot help


class RateLimit(enum.Enum):
    """Which of HubSpot's limits a 429 answer reports (classified once, from ``policyName`` and whether
    the request was a search)."""

    TEN_SECONDLY = "TEN_SECONDLY_ROLLING"  # the account's rolling 10-second budget
    SEARCH = "SEARCH"  # search's own per-second budget ("secondly"; older answers say policyName SECONDLY)
    DAILY = "DAILY"  # the daily budget: nothing to retry until it resets


def rate_limit_of(body: Any, search: bool) -> RateLimit:
    """The limit a 429 answer reports: ``policyName`` when HubSpot names it, else the endpoint's budget."""
    policy = body.get("policyName") if isinstance(body, Mapping) else None
    if policy == "DAILY":
        return RateLimit.DAILY
    if search or policy == "SECONDLY":
        return RateLimit.SEARCH
    return RateLimit.TEN_SECONDLY


@dataclass(frozen=True)
class Failure:
    """One failed attempt, classified once by the transport.

    :param outcome: what the failure means for a replay.
    :param reason: short and credential-free, for the retry log line and the final error
        (``HTTP 503``, ``connection refused by http://127.0.0.1:1 ...``).
    :param status: the HTTP status when the server answered with an error, else None.
    :param headers: the answer's headers (for ``Retry-After`` and the rate-limit interval).
    :param body: the answer's parsed JSON body, None when there was none or it did not parse.
    :param error: what to raise when the attempt is not retried: an exception (an error answer's), or the
        class to raise with ``reason`` (None: `HubSpotTransportError`).
    :param rate_limit: for a 429, which limit it reports.
    """

    outcome: Outcome
    reason: str
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    error: Exception | type[Exception] | None = None
    rate_limit: RateLimit | None = None


class Action(enum.Enum):
    """What to do after a failure."""
    RETRY = "retry"
    REFRESH = "refresh"
    RAISE = "raise"


@dataclass(frozen=True)
class Decision:
    """What to do after a failure: retry after ``wait_s`` seconds, refresh the token and resend, or raise.

    :param attempt: attempts so far that count against ``budget``.
    :param budget: the attempts allowed for this kind of failure (logged as ``attempt n/budget``).
    :param ambiguous: when raising, the request (a non-idempotent write) may have been applied.
    :param pause_s: how long every thread sharing the budget should hold back (a 429: HubSpot counts
        the whole account, so one thread's refusal is every thread's).
    """

    action: Action
    wait_s: float = 0.0
    attempt: int = 0
    budget: int = 0
    ambiguous: bool = False
    pause_s: float = 0.0


@dataclass
class Attempts:
    """What one logical request has been through so far: the transport updates it, the policy reads it."""

    total: int = 0
    unsent: int = 0
    refreshed: bool = False

    def record(self, failure: Failure) -> None:
        """Count a failed attempt."""
        self.unsent += failure.outcome is Outcome.NEVER_SENT


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry, and how long to wait.

    A request is retried only when that cannot write twice: 429 answers (the request was refused),
    and, for idempotent requests, 502/503/504, connection errors, timeouts and unreadable answers.
    A create whose answer was lost is not retried here; the client reconciles it first.

    :param max_attempts: attempts in all, the first included.
    :param backoff_base_s: first backoff; doubles each attempt, with full jitter.
    :param backoff_cap_s: the longest single backoff.
    :param retry_statuses: statuses that are retried.
    :param rate_limit_window_s: the longest wait for a ten-secondly 429 without ``Retry-After``.
    :param search_limit_wait_s: wait for the search per-second limit without ``Retry-After``.
    :param max_retry_after_s: a ``Retry-After`` longer than this is not waited for (the error is raised).
    :param connect_attempts: attempts in all when the connection cannot be opened (refused, unresolvable host,
        connect timeout); such failures rarely heal within seconds, so they are reported quickly.
    :param connect_backoff_s: first wait after such a failure; doubles each time (0.25 + 0.5 s by default).
    """

    max_attempts: int = 8
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    retry_statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 502, 503, 504}))
    rate_limit_window_s: float = 10.0
    search_limit_wait_s: float = 1.0
    max_retry_after_s: float = 300.0
    connect_attempts: int = 3
    connect_backoff_s: float = 0.25

    def decide(
        self,
        failure: Failure,
        attempts: Attempts,
        *,
        idempotent: bool,
        can_refresh: bool = False,
        rng: random.Random | None = None,
    ) -> Decision:
        """Retry (after how long), refresh the token, or raise, after a failed attempt.

        :param attempts: the request's attempts so far, this failure recorded.
        :param idempotent: False for creates, which are never replayed when they may have been applied.
        :param can_refresh: the credentials can be refreshed (OAuth).
        """
        outcome = failure.outcome
        if outcome is Outcome.MISCONFIGURED:
            return Decision(Action.RAISE)
        if outcome is Outcome.EXPIRED_TOKEN and can_refresh and not attempts.refreshed:
            # Rejected, so nothing was applied: refresh once and send again.
            return Decision(Action.REFRESH)
        if outcome is Outcome.NEVER_SENT:
            # Always safe to replay, but a refused or unresolvable host is a setup problem: say so quickly.
            if attempts.unsent >= self.connect_attempts or attempts.total >= self.max_attempts:
                return Decision(Action.RAISE)
            wait = self.connect_backoff_s * 2 ** (attempts.unsent - 1)
            return Decision(Action.RETRY, wait, attempts.unsent, self.connect_attempts)
        ambiguous = outcome is Outcome.MAYBE_APPLIED and not idempotent
        if failure.status is not None:
            wait = self.delay_after_status(attempts.total, failure.status, failure.headers, failure.rate_limit,
                                           idempotent=idempotent, rng=rng)
        else:
            wait = self.delay_after_failure(attempts.total, safe=not ambiguous, rng=rng)
        pause = 0.0 if failure.status != 429 else wait if wait is not None else self.rate_limit_window_s
        if wait is None:
            return Decision(Action.RAISE, ambiguous=ambiguous, pause_s=pause)
        return Decision(Action.RETRY, wait, attempts.total, self.max_attempts, pause_s=pause)

    def may_resend(self, attempt: int) -> bool:
        """A create the client read back and found not created may be sent again (`attempt` so far)."""
        return attempt < self.max_attempts

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full-jitter exponential backoff for the given (1-based) attempt that just failed."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * (2 ** (attempt - 1)))
        return (rng or random).uniform(ceiling / 2, ceiling)

    def delay_after_status(
        self,
        attempt: int,
        status: int,
        headers: Mapping[str, str],
        rate_limit: RateLimit | None,
        *,
        idempotent: bool,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to wait before retrying an error answer, or None when it must not be retried."""
        if attempt >= self.max_attempts or status not in self.retry_statuses:
            return None
        if status == 429:
            if rate_limit is RateLimit.DAILY:
                return None
            retry_after = parse_retry_after(headers.get("Retry-After"))
            if retry_after is not None:
                return None if retry_after > self.max_retry_after_s else retry_after
            if rate_limit is RateLimit.SEARCH:
                return self.search_limit_wait_s * attempt
            window_ms = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", self.rate_limit_window_s * 1000)
            window = float(window_ms) / 1000
            return min(window, max(1.0, self.backoff(attempt, rng) * 2))
        if not idempotent:
            return None
        retry_after = parse_retry_after(headers.get("Retry-After"))
        if retry_after is not None and retry_after <= self.max_retry_after_s:
            return retry_after
        return self.backoff(attempt, rng)

    def delay_after_failure(self, attempt: int, *, safe: bool, rng: random.Random | None = None) -> float | None:
        """Seconds to wait after a connection error, timeout or unreadable answer; None when not retried.

        :param safe: the request cannot have been applied, or replaying it is harmless.
        """
        if attempt >= self.max_attempts or not safe:
            return None
        return self.backoff(attempt, rng)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (HubSpot sends seconds; HTTP also allows a date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())
