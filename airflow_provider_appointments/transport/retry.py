"""The retry policy: one piece of data that decides whether, and after how long, a request is sent again."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Mapping


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
    """

    max_attempts: int = 8
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    retry_statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 502, 503, 504}))
    rate_limit_window_s: float = 10.0
    search_limit_wait_s: float = 1.0
    max_retry_after_s: float = 300.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full-jitter exponential backoff for the given (1-based) attempt that just failed."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * (2 ** (attempt - 1)))
        return (rng or random).uniform(ceiling / 2, ceiling)

    def delay_after_status(
        self,
        attempt: int,
        status: int,
        headers: Mapping[str, str],
        body: Mapping | None,
        *,
        idempotent: bool,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to wait before retrying an error answer, or None when it must not be retried."""
        if attempt >= self.max_attempts or status not in self.retry_statuses:
            return None
        if status == 429:
            policy = (body or {}).get("policyName")
            if policy == "DAILY":
                return None
            retry_after = parse_retry_after(headers.get("Retry-After"))
            if retry_after is not None:
                return None if retry_after > self.max_retry_after_s else retry_after
            if policy == "SECONDLY" or "secondly limit" in str((body or {}).get("message", "")):
                return self.search_limit_wait_s * attempt
            window = float(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", self.rate_limit_window_s * 1000)) / 1000
            return min(window, max(1.0, self.backoff(attempt, rng) * 2))
        if not idempotent:
            return None
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return retry_after if retry_after is not None and retry_after <= self.max_retry_after_s else self.backoff(attempt, rng)

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
