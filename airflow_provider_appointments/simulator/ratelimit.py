"""HubSpot's rate limits: a rolling 10-second budget, a daily budget and the search budget.

- Each private app (token) has its own rolling 10-second window; OAuth access tokens of the
  account share one window (an installed app's budget is per account).
- The daily budget is per account and counts private-app requests only (OAuth calls have no daily
  limit and get no daily headers); it resets at midnight UTC (HubSpot: the account's time zone).
- Search requests have their own rolling one-second budget per account, outside the 10-second
  window, and never get the 10-second headers (they do get the daily pair, as real recordings show).
- A refused request consumes no budget. 0 or None switches a budget off.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from airflow_provider_appointments.simulator.auth import Caller
from airflow_provider_appointments.simulator.errors import HubSpotHTTPError
from airflow_provider_appointments.simulator.properties import DAY_MS

WINDOW_S = 10.0
SEARCH_WINDOW_S = 1.0
TEN_SECONDLY_MESSAGE = "You have reached your ten_secondly_rolling limit."
SECONDLY_MESSAGE = "You have reached your secondly limit."
DAILY_MESSAGE = "You have reached your daily limit."


def rate_limit_error(policy: str, hub_id: int, *, retry_after_s: int | None = None,
                     limit: int | None = None) -> HubSpotHTTPError:
    """HubSpot's 429 for a policy (``TEN_SECONDLY_ROLLING``, ``SECONDLY`` or ``DAILY``)."""
    messages = {"TEN_SECONDLY_ROLLING": TEN_SECONDLY_MESSAGE, "SECONDLY": SECONDLY_MESSAGE, "DAILY": DAILY_MESSAGE}
    message = messages[policy]
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else {}
    if limit:
        headers.update({"X-HubSpot-RateLimit-Max": str(limit), "X-HubSpot-RateLimit-Remaining": "0",
                        "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(WINDOW_S * 1000))})
    body = {"status": "error", "message": message, "errorType": "RATE_LIMIT", "policyName": policy,
            "groupName": f"publicapi:api-calls-{policy.lower().replace('_', '-')}:{hub_id}"}
    return HubSpotHTTPError(429, "RATE_LIMITS", message, headers=headers, body=body)


class RateLimiter:
    """Counts requests; `admit` raises HubSpot's 429 or returns the rate-limit headers to send.

    :param requests_per_10s: rolling 10-second budget per private app / per OAuth installation.
    :param search_per_second: search budget per account.
    :param daily_limit: daily budget of private-app requests per account.
    :param retry_after: whether 429s carry ``Retry-After`` (seconds).
    :param hub_id: the account id (in 429 bodies).
    """

    def __init__(self, requests_per_10s: int | None, search_per_second: int | None, daily_limit: int | None,
                 retry_after: bool, hub_id: int) -> None:
        self._lock = threading.Lock()
        self.configure(requests_per_10s, search_per_second, daily_limit, retry_after, hub_id)
        self.clear()

    def configure(self, requests_per_10s: int | None, search_per_second: int | None, daily_limit: int | None,
                  retry_after: bool, hub_id: int) -> None:
        """Apply new limits (None or 0: no limit); requests already counted stay counted."""
        with self._lock:
            self.requests_per_10s = requests_per_10s or None
            self.search_per_second = search_per_second or None
            self.daily_limit = daily_limit or None
            self.retry_after = retry_after
            self.hub_id = hub_id

    def clear(self) -> None:
        """Forget every counted request."""
        with self._lock:
            self._windows: dict[str, deque[float]] = {}
            self._search: deque[float] = deque()
            self._day = -1
            self.daily_used = 0

    def admit(self, caller: Caller, search: bool) -> dict[str, str]:
        """Count a request, or raise HubSpot's 429; returns the rate-limit headers to send."""
        now = time.monotonic()
        with self._lock:
            day = int(time.time() * 1000) // DAY_MS
            if day != self._day:
                self._day, self.daily_used = day, 0
            daily = self.daily_limit if not caller.oauth else None
            if daily and self.daily_used >= daily:
                seconds = math.ceil(((day + 1) * DAY_MS - time.time() * 1000) / 1000)
                raise rate_limit_error("DAILY", self.hub_id, retry_after_s=seconds if self.retry_after else None)
            headers: dict[str, str] = {}
            if search:
                if self.search_per_second:
                    _slide(self._search, now, SEARCH_WINDOW_S)
                    if len(self._search) >= self.search_per_second:
                        raise rate_limit_error("SECONDLY", self.hub_id, retry_after_s=1 if self.retry_after else None)
                    self._search.append(now)
            elif self.requests_per_10s:
                limit = self.requests_per_10s
                window = self._windows.setdefault(caller.principal, deque())
                _slide(window, now, WINDOW_S)
                if len(window) >= limit:
                    wait = max(1, math.ceil(WINDOW_S - (now - window[0])))
                    raise rate_limit_error("TEN_SECONDLY_ROLLING", self.hub_id, limit=limit,
                                           retry_after_s=wait if self.retry_after else None)
                window.append(now)
                headers = {"X-HubSpot-RateLimit-Max": str(limit),
                           "X-HubSpot-RateLimit-Remaining": str(limit - len(window)),
                           "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(WINDOW_S * 1000))}
            if not caller.oauth:
                self.daily_used += 1
                if daily:
                    headers["X-HubSpot-RateLimit-Daily"] = str(daily)
                    headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(daily - self.daily_used)
            return headers


def _slide(window: deque[float], now: float, length: float) -> None:
    while window and now - window[0] >= length:
        window.popleft()
