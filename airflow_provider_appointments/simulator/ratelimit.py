"""HubSpot's rate limits: a rolling 10-second budget per token, a daily counter, and the search budget."""

from __future__ import annotations

import threading
import time
from collections import deque

from airflow_provider_appointments.simulator.errors import HubSpotHTTPError

WINDOW_S = 10.0


class RateLimiter:
    """Counts requests per token; `check` raises HubSpot's 429 or returns the headers to send."""

    def __init__(self, requests_per_10s: int | None, search_per_second: int | None, daily_limit: int | None,
                 retry_after: bool = False) -> None:
        self._lock = threading.Lock()
        self.requests_per_10s = requests_per_10s
        self.search_per_second = search_per_second
        self.daily_limit = daily_limit
        self.retry_after = retry_after
        self._window: dict[str, deque[float]] = {}
        self._search: dict[str, deque[float]] = {}
        self._daily: dict[str, int] = {}

    def check(self, token: str, search: bool, oauth: bool) -> dict[str, str]:
        now = time.monotonic()
        with self._lock:
            used_today = self._daily.get(token, 0)
            if self.daily_limit and not oauth and used_today >= self.daily_limit:
                raise self._too_many("You have reached your daily limit.", "DAILY", retry_after=None)
            if search:
                limit = self.search_per_second
                if limit:
                    stamps = self._search.setdefault(token, deque())
                    while stamps and now - stamps[0] >= 1.0:
                        stamps.popleft()
                    if len(stamps) >= limit:
                        raise self._too_many("You have reached your secondly limit.", "SECONDLY",
                                             retry_after=1 if self.retry_after else None)
                    stamps.append(now)
                self._daily[token] = used_today + 1
                return {}
            headers: dict[str, str] = {}
            limit = self.requests_per_10s
            if limit:
                stamps = self._window.setdefault(token, deque())
                while stamps and now - stamps[0] >= WINDOW_S:
                    stamps.popleft()
                if len(stamps) >= limit:
                    wait = max(1, int(WINDOW_S - (now - stamps[0])) + 1)
                    raise self._too_many("You have reached your ten_secondly_rolling limit.",
                                         "TEN_SECONDLY_ROLLING", retry_after=wait if self.retry_after else None,
                                         limit=limit)
                stamps.append(now)
                headers = {
                    "X-HubSpot-RateLimit-Max": str(limit),
                    "X-HubSpot-RateLimit-Remaining": str(limit - len(stamps)),
                    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                }
            self._daily[token] = used_today + 1
            if self.daily_limit and not oauth:
                headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
                headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(self.daily_limit - used_today - 1)
            return headers

    def _too_many(self, message: str, policy: str, retry_after: int | None, limit: int | None = None) -> HubSpotHTTPError:
        headers = {"Retry-After": str(retry_after)} if retry_after else {}
        if limit:
            headers.update({"X-HubSpot-RateLimit-Max": str(limit), "X-HubSpot-RateLimit-Remaining": "0",
                            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
        body = {"status": "error", "message": message, "errorType": "RATE_LIMIT", "policyName": policy,
                "groupName": f"publicapi:simulator-{policy.lower()}"}
        return HubSpotHTTPError(429, "RATE_LIMITS", message, headers=headers, body=body)
