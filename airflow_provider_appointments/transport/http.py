"""The HTTP transport: one pooled session; every request is paced, sent, parsed and (when safe) retried here."""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from airflow_provider_appointments.errors import (
    HubSpotAmbiguousWriteError,
    HubSpotAPIError,
    HubSpotTransportError,
    error_for_status,
)
from airflow_provider_appointments.transport.auth import OAuthRefreshAuth, PrivateAppAuth
from airflow_provider_appointments.transport.pacing import RateLimiter
from airflow_provider_appointments.transport.retry import RetryPolicy

log = logging.getLogger(__name__)
DEFAULT_HOST = "https://api.hubapi.com"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> str:
    """HTTPS everywhere; plain HTTP only to loopback (the simulator)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"HubSpot host must be an http(s) URL, got {base_url!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(f"refusing plain HTTP to {parts.hostname}: HubSpot must be reached over HTTPS "
                         "(plain HTTP is allowed only to loopback addresses such as the simulator)")
    return base_url.rstrip("/")


@dataclass(frozen=True)
class Answer:
    """A successful HubSpot answer: status, parsed JSON body (None for 204) and headers."""

    status: int
    body: Any
    headers: Mapping[str, str]


class HubSpotTransport:
    """Sends requests to HubSpot through one pooled `requests.Session`.

    :param base_url: ``https://api.hubapi.com`` or a loopback simulator URL.
    :param auth: `PrivateAppAuth` or `OAuthRefreshAuth`.
    :param limiter: pacing for the 10-second budget (shared by every thread of this transport).
    :param search_limiter: pacing for the search endpoints' own per-second budget.
    :param retry: the retry policy.
    :param concurrency: requests in flight at once; sizes the connection pool.
    :param timeout: (connect, read) timeouts in seconds.
    """

    def __init__(
        self,
        base_url: str,
        auth: PrivateAppAuth | OAuthRefreshAuth,
        *,
        limiter: RateLimiter | None = None,
        search_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = 8,
        timeout: tuple[float, float] = (10.0, 60.0),
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.auth = auth
        self.limiter = limiter or RateLimiter()
        self.search_limiter = search_limiter or RateLimiter(5, window_s=1.0, utilization=1.0, reserve=0, transit_s=0.05)
        self.retry = retry or RetryPolicy()
        self.concurrency = concurrency
        self.timeout = timeout
        self.session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(concurrency, 1) + 2, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.trust_env = False
        self._rng = random.Random()
        self._counter_lock = threading.Lock()
        self.requests_sent = 0
        self.retries = 0
        self.rate_limited = 0

    def __repr__(self) -> str:
        return f"HubSpotTransport(base_url={self.base_url!r}, auth={self.auth!r})"

    def _count(self, retried: bool = False, limited: bool = False) -> None:
        with self._counter_lock:
            self.requests_sent += 1
            self.retries += retried
            self.rate_limited += limited

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json_body: Any = None,
        idempotent: bool = True,
        search: bool = False,
    ) -> Answer:
        """Send one logical request; retried per the policy; raises a typed error when it fails.

        :param idempotent: False for creates: a lost answer then raises `HubSpotAmbiguousWriteError`
            instead of being replayed.
        :param search: paced by the search budget instead of the 10-second one.
        """
        limiter = self.search_limiter if search else self.limiter
        url = self.base_url + path
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            sent_at = limiter.acquire()
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    headers={"Authorization": self.auth.header(), "Accept": "application/json"},
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                self._count(retried=attempt > 1)
                never_sent = isinstance(exc, requests.ConnectTimeout) or _refused(exc)
                delay = self.retry.delay_after_failure(attempt, safe=idempotent or never_sent, rng=self._rng)
                if delay is None:
                    kind = HubSpotAmbiguousWriteError if not (idempotent or never_sent) else HubSpotTransportError
                    raise kind(f"{method} {path}: {_describe(exc)} after {attempt} attempt(s)") from None
                log.debug("HubSpot %s %s: %s; retrying in %.1fs", method, path, _describe(exc), delay)
                time.sleep(delay)
                continue
            self._count(retried=attempt > 1, limited=response.status_code == 429)
            limiter.observe(response.headers, sent_at)
            status = response.status_code
            if status == 204:
                return Answer(status, None, response.headers)
            body, readable = _parse(response)
            if 200 <= status < 300:
                if readable:
                    return Answer(status, body, response.headers)
                delay = self.retry.delay_after_failure(attempt, safe=idempotent, rng=self._rng)
                if delay is None:
                    kind = HubSpotTransportError if idempotent else HubSpotAmbiguousWriteError
                    raise kind(f"{method} {path}: HTTP {status} with an unreadable body "
                               f"({response.headers.get('Content-Type', 'no content type')}, {len(response.content)} bytes)")
                time.sleep(delay)
                continue
            if status == 401 and self.auth.refreshable and not refreshed and \
                    (body or {}).get("category") == "EXPIRED_AUTHENTICATION":
                # Rejected, so nothing was applied: refresh once and send again.
                refreshed = True
                self.auth.invalidate()
                continue
            error = _error(status, body, readable, response, method, path)
            delay = self.retry.delay_after_status(attempt, status, response.headers, body if readable else None,
                                                  idempotent=idempotent, rng=self._rng)
            if status == 429:
                limiter.penalize(delay if delay is not None else self.retry.rate_limit_window_s)
            if delay is None:
                if not idempotent and (status >= 500 or status in (408, 423)):
                    # A gateway error may come after the server applied the write.
                    raise HubSpotAmbiguousWriteError(f"{method} {path}: {error}") from None
                raise error
            log.debug("HubSpot %s %s: HTTP %s; retrying in %.1fs", method, path, status, delay)
            time.sleep(delay)

    def close(self) -> None:
        self.session.close()


def _parse(response: requests.Response) -> tuple[Any, bool]:
    """The JSON body and whether it parsed; proxies answer HTML pages and lost answers are truncated."""
    try:
        return json.loads(response.content), True
    except (ValueError, UnicodeDecodeError):
        return None, False


def _error(status: int, body: Any, readable: bool, response: requests.Response, method: str, path: str) -> HubSpotAPIError:
    cls = error_for_status(status)
    if not readable or not isinstance(body, dict):
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        return cls(status, None, f"HubSpot (or a proxy in front of it) answered {kind} instead of JSON",
                   method=method, path=path)
    category = body.get("category") or body.get("policyName") or body.get("errorType") or body.get("status")
    return cls(
        status,
        category,
        str(body.get("message") or "no message"),
        correlation_id=body.get("correlationId") or response.headers.get("X-HubSpot-Correlation-Id"),
        context=body.get("context") if isinstance(body.get("context"), dict) else None,
        errors=body.get("errors") if isinstance(body.get("errors"), list) else None,
        method=method,
        path=path,
    )


def _refused(exc: Exception) -> bool:
    """Connection refused / DNS failure: the request never left, so replaying it is always safe."""
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text or "NameResolutionError" in text


def _describe(exc: Exception) -> str:
    if isinstance(exc, requests.ReadTimeout):
        return "read timed out (the answer may have been lost)"
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timed out"
    if _refused(exc):
        return "connection refused or host unreachable"
    return "connection dropped before an answer arrived"
