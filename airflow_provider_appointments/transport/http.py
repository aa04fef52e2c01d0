"""The HTTP transport: one pooled session; every request is paced, sent, parsed and (when safe) retried here."""

from __future__ import annotations

import errno
import http.client
import ipaddress
import json
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from airflow_provider_appointments.errors import (
    HubSpotAmbiguousWriteError,
    HubSpotAPIError,
    HubSpotConnectionError,
    HubSpotTLSError,
    HubSpotTransportError,
    error_for_status,
)
from airflow_provider_appointments.transport.auth import OAuthRefreshAuth, PrivateAppAuth
from airflow_provider_appointments.transport.pacing import Pacer
from airflow_provider_appointments.transport.retry import (
    Action,
    Attempts,
    Decision,
    Failure,
    Outcome,
    RetryPolicy,
    rate_limit_of,
)

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether `host` is ``localhost`` or a loopback address (IPv6 in brackets too)."""
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
        limiter: Pacer | None = None,
        search_limiter: Pacer | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = 8,
        timeout: tuple[float, float] = (10.0, 60.0),
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.auth = auth
        self.limiter = limiter or Pacer()
        self.search_limiter = search_limiter or Pacer.for_search(5)
        self.retry = retry or RetryPolicy()
        self.concurrency = concurrency
        self.timeout = timeout
        self.session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(concurrency, 1) + 2, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        # Proxies and netrc from the environment would silently reroute or re-authenticate calls that
        # carry a bearer token: the connection alone decides where requests go.
        self.session.trust_env = False
        self._rng = random.Random()
        self._counter_lock = threading.Lock()
        self.requests_sent = 0
        self.retries = 0
        self.rate_limited = 0
        self._answered = False  # any answer yet? (a TLS server never answers plain HTTP)

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
        attempts = Attempts()
        while True:
            attempts.total += 1
            result = self._attempt(method, path, params, json_body, limiter, attempts.total, search)
            if isinstance(result, Answer):
                return result
            failure = result
            attempts.record(failure)
            decision = self.retry.decide(failure, attempts, idempotent=idempotent,
                                         can_refresh=self.auth.refreshable, rng=self._rng)
            if decision.pause_s:
                limiter.penalize(decision.pause_s)
            if decision.action is Action.RAISE:
                raise _final_error(method, path, failure, decision, attempts.total) from None
            if decision.action is Action.REFRESH:
                log.info("HubSpot %s %s: the access token expired; refreshing it and sending again", method, path)
                attempts.refreshed = True
                self.auth.invalidate()
                continue
            # 429s are expected pacing, not trouble: INFO; anything else is worth a WARNING.
            log.log(logging.INFO if failure.status == 429 else logging.WARNING,
                    "HubSpot %s %s: %s (attempt %d/%d); retrying in %.2fs",
                    method, path, failure.reason, decision.attempt, decision.budget, decision.wait_s)
            time.sleep(decision.wait_s)

    def _attempt(self, method: str, path: str, params: Any, json_body: Any, limiter: Pacer,
                 attempt: int, search: bool) -> Answer | Failure:
        """Send once: the answer, or the classified failure."""
        sent_at = limiter.acquire()
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                params=params,
                json=json_body,
                headers={"Authorization": self.auth.header(), "Accept": "application/json"},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            limiter.abandon(sent_at)  # no answer to learn from, but no longer in flight either
            self._count(retried=attempt > 1)
            probe = None if self._answered else self._expects_tls
            return classify_exception(exc, self.base_url, connect_timeout_s=self.timeout[0], probe_tls=probe)
        self._answered = True
        self._count(retried=attempt > 1, limited=response.status_code == 429)
        limiter.observe(response.headers, sent_at)
        return _judge(response, method, path, search)

    def _expects_tls(self) -> bool:
        """For an http:// URL that has never answered: does the server speak TLS instead?

        Asked only until the first answer arrives. Plain HTTP is only allowed to loopback, so the probe stays local.
        """
        parts = urlsplit(self.base_url)
        if parts.scheme != "http":
            return False
        return _speaks_tls(parts.hostname or "", parts.port or 80, timeout_s=min(self.timeout[0], 2.0))

    def close(self) -> None:
        self.session.close()


def _parse(response: requests.Response) -> tuple[Any, bool]:
    """The JSON body and whether it parsed; proxies answer HTML pages and lost answers are truncated."""
    try:
        return json.loads(response.content), True
    except (ValueError, UnicodeDecodeError):
        return None, False


def _error(status: int, body: Any, readable: bool, response: requests.Response, method: str,
           path: str) -> HubSpotAPIError:
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


def _judge(response: requests.Response, method: str, path: str, search: bool = False) -> Answer | Failure:
    """A successful answer, or the failure an answer represents."""
    status = response.status_code
    if status == 204:
        return Answer(status, None, response.headers)
    body, readable = _parse(response)
    if 200 <= status < 300:
        if readable:
            return Answer(status, body, response.headers)
        # A cut or garbled answer: the request may well have been applied.
        kind = response.headers.get("Content-Type", "no content type")
        return Failure(Outcome.MAYBE_APPLIED,
                       f"HTTP {status} with an unreadable body ({kind}, {len(response.content)} bytes)")
    error = _error(status, body, readable, response, method, path)
    if status == 401 and isinstance(body, dict) and body.get("category") == "EXPIRED_AUTHENTICATION":
        outcome = Outcome.EXPIRED_TOKEN
    elif status >= 500 or status in (408, 423):
        outcome = Outcome.MAYBE_APPLIED  # a gateway error may come after the server applied the write
    else:
        outcome = Outcome.REJECTED
    reason = f"HTTP {status} {error.category}" if error.category else f"HTTP {status}"
    return Failure(outcome, reason, status, response.headers, body if readable else None, error,
                   rate_limit_of(body, search) if status == 429 else None)


def _final_error(method: str, path: str, failure: Failure, decision: Decision, attempts: int) -> Exception:
    """The exception for a failure that is not retried."""
    if decision.ambiguous:
        detail = failure.error if isinstance(failure.error, HubSpotAPIError) else failure.reason
        return HubSpotAmbiguousWriteError(f"{method} {path}: {detail}; the write may or may not have been "
                                          "applied, so it is not replayed")
    if isinstance(failure.error, Exception):
        return failure.error
    kind = failure.error or HubSpotTransportError
    return kind(f"{method} {path}: {failure.reason} (after {attempts} attempt{'s' if attempts > 1 else ''})")


# OpenSSL reasons meaning the peer did not answer TLS at all (it sent plain bytes, e.g. an HTTP error page).
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL", "PACKET_LENGTH_TOO_LONG",
                      "HTTP_REQUEST", "HTTPS_PROXY_REQUEST"})
# OpenSSL reasons meaning the peer speaks TLS but refused our handshake; retrying cannot change that.
_TLS_REFUSED = frozenset({"TLSV1_ALERT_PROTOCOL_VERSION", "SSLV3_ALERT_HANDSHAKE_FAILURE", "UNSUPPORTED_PROTOCOL",
                          "NO_PROTOCOLS_AVAILABLE", "TLSV1_ALERT_INTERNAL_ERROR", "TLSV1_UNRECOGNIZED_NAME"})


def classify_exception(exc: BaseException, base_url: str, *, connect_timeout_s: float | None = None,
                       probe_tls: Callable[[], bool] | None = None) -> Failure:
    """Classify a failed send by the exception types in its chain (requests wraps urllib3 wraps ssl/socket).

    The reason names ``scheme://host:port`` and the likely cause; never a credential.

    :param probe_tls: asked only when the connection dropped without an answer: does the server speak TLS?
    """
    where = _where(base_url)
    causes = _causes(exc)

    def found(*types: type[BaseException]) -> Any:
        return next((cause for cause in causes if isinstance(cause, types)), None)

    tls = found(ssl.SSLError)
    tls_reason = getattr(tls, "reason", None)  # OpenSSL's reason code, e.g. WRONG_VERSION_NUMBER
    if (setup := _tls_setup_failure(found(ssl.SSLCertVerificationError) or tls, where)) is not None:
        return setup
    if found(socket.gaierror, urllib3.exceptions.NameResolutionError) is not None:
        return Failure(Outcome.NEVER_SENT, f"cannot resolve the host of {where}: is the host name right, "
                       "and is DNS reachable from here?", error=HubSpotConnectionError)
    if found(ConnectionRefusedError) is not None:
        return Failure(Outcome.NEVER_SENT, f"connection refused: nothing is listening on {where}; is the server "
                       "(or the simulator) running, and are the host and port right?", error=HubSpotConnectionError)
    if (new := found(urllib3.exceptions.NewConnectionError)) is not None:
        number = next((c.errno for c in _causes(new) if isinstance(c, OSError) and c.errno), None)
        code = errno.errorcode.get(number, str(number)) if number is not None else "no route"
        return Failure(Outcome.NEVER_SENT, f"cannot open a connection to {where} ({code}): is the host right "
                       "and reachable from here?", error=HubSpotConnectionError)
    if found(requests.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError) is not None:
        within = f" within {connect_timeout_s:g}s" if connect_timeout_s else ""
        return Failure(Outcome.NEVER_SENT, f"{where} did not accept the connection{within}: the host may be down, "
                       "firewalled, or wrong", error=HubSpotConnectionError)
    if found(requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError) is not None:
        return Failure(Outcome.MAYBE_APPLIED, f"read from {where} timed out (the answer may have been lost)")
    line = getattr(found(http.client.BadStatusLine), "line", "")
    if isinstance(line, str) and len(line) >= 2 and 0x14 <= ord(line[0]) <= 0x17 and line[1] == "\x03":
        # A TLS record (alert or handshake) where an HTTP status line belongs.
        return Failure(Outcome.MISCONFIGURED, f"the server at {where} answered TLS to a plain-HTTP request: it "
                       "expects HTTPS; use https://", error=HubSpotTLSError)
    if tls is not None:
        return Failure(Outcome.MAYBE_APPLIED, f"TLS error talking to {where} ({tls_reason or type(tls).__name__})")
    if probe_tls is not None and probe_tls():
        # A TLS server resets a plain-HTTP request without a word; only the handshake tells it apart.
        return Failure(Outcome.MISCONFIGURED, f"the server at {where} expects HTTPS: it dropped a plain-HTTP "
                       "request but completes a TLS handshake; use https://", error=HubSpotTLSError)
    return Failure(Outcome.MAYBE_APPLIED, f"connection to {where} dropped before an answer arrived")


def _tls_setup_failure(tls: ssl.SSLError | None, where: str) -> Failure | None:
    """A TLS error that no retry can cure: an unverifiable certificate, a server that does not speak TLS,
    or a handshake it refused."""
    if isinstance(tls, ssl.SSLCertVerificationError):
        return Failure(Outcome.MISCONFIGURED, f"the TLS certificate of {where} could not be verified "
                       f"({tls.verify_message or tls.reason}): check the host name and the CA bundle",
                       error=HubSpotTLSError)
    reason = getattr(tls, "reason", None)
    if reason in _NOT_TLS:
        return Failure(Outcome.MISCONFIGURED, f"TLS handshake with {where} failed: the server there does not speak "
                       "TLS (it answered plain bytes); use http:// for the local simulator, or check the port",
                       error=HubSpotTLSError)
    if reason in _TLS_REFUSED:
        return Failure(Outcome.MISCONFIGURED, f"TLS handshake with {where} failed ({reason}): the server "
                       "refused our TLS version or ciphers", error=HubSpotTLSError)
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps: ``__cause__``, ``__context__``, exceptions in ``args``, and
    urllib3's ``MaxRetryError.reason``; breadth first, each once."""
    seen: list[BaseException] = []
    queue = [exc]
    while queue:
        current = queue.pop(0)
        if any(current is known for known in seen):
            continue
        seen.append(current)
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        queue.extend(item for item in nested if isinstance(item, BaseException))
    return seen


def _where(base_url: str) -> str:
    """``scheme://host:port`` of a base URL, the port made explicit."""
    parts = urlsplit(base_url)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def _speaks_tls(host: str, port: int, *, timeout_s: float) -> bool:
    """Whether a TLS handshake with host:port completes. The certificate is deliberately not checked and
    nothing is sent after the handshake: this only asks "is the server speaking TLS?"."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (socket.create_connection((host, port), timeout=timeout_s) as raw,
              context.wrap_socket(raw, server_hostname=host)):
            return True
    except (OSError, ValueError):
        return False
