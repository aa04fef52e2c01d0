"""Connection failures over real sockets on 127.0.0.1: fast, named errors, and one logged line per retry.

Also the classification of failures (from exception types, never message text) and the retry policy's
decisions, on constructed exceptions.
"""

from __future__ import annotations

import http.client
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import urllib3

from airflow_provider_appointments.errors import (
    HubSpotAmbiguousWriteError,
    HubSpotAPIError,
    HubSpotConnectionError,
    HubSpotTLSError,
)
from airflow_provider_appointments.transport.auth import PrivateAppAuth
from airflow_provider_appointments.transport.http import HubSpotTransport, classify_exception
from airflow_provider_appointments.transport.retry import Action, Attempts, Failure, Outcome, RateLimit, RetryPolicy

TOKEN = "pat-na1-secret-token-never-logged"
FAST = RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_cap_s=0.05)


def transport(url: str, retry: RetryPolicy | None = None, token: str = TOKEN) -> HubSpotTransport:
    return HubSpotTransport(url, PrivateAppAuth(token), retry=retry, timeout=(2.0, 5.0))


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A raw TCP server on 127.0.0.1 calling `handle` for each connection in a thread; yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)  # so the loop notices `stop`
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=_handle_and_close, args=(handle, conn), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()
    thread.join(timeout=5)


def _handle_and_close(handle: Callable[[socket.socket], None], conn: socket.socket) -> None:
    try:
        conn.settimeout(5)
        handle(conn)
    except OSError:
        pass
    finally:
        conn.close()


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway certificate and key for 127.0.0.1, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def tls_server(self_signed: tuple[Path, Path]) -> Iterator[int]:
    """A real TLS server (Python ssl): completes handshakes, answers a minimal HTTP 200 over TLS, and drops
    plain-HTTP requests as TLS servers do."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, self_signed))

    def handle(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            if tls.recv(65536):
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

    yield from serve(handle)


@pytest.fixture
def tls_alert_server() -> Iterator[int]:
    """A server that answers any request with a TLS alert record (protocol_version), as some TLS stacks do."""
    def handle(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"\x15\x03\x01\x00\x02\x02\x46")

    yield from serve(handle)


@pytest.fixture
def dropping_server() -> Iterator[int]:
    """A plain server that reads the request and closes without answering (and is not TLS)."""
    yield from serve(lambda conn: conn.recv(65536))


@pytest.fixture
def plain_http_server() -> Iterator[int]:
    """A plain-HTTP server that answers every request with ``{}``."""
    def handle(conn: socket.socket) -> None:
        if conn.recv(65536):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

    yield from serve(handle)


@pytest.fixture
def retry_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog, attached to the transport's logger itself: the first masked secret imports Airflow's logging,
    which replaces the root handlers caplog relies on."""
    PrivateAppAuth("pat-warm-up")
    logger = logging.getLogger("airflow_provider_appointments.transport.http")
    logger.addHandler(caplog.handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # once, whether or not the root handlers survived
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


# --- real sockets -----------------------------------------------------------------------------------------------

def test_refused_connection_fails_fast_naming_host_and_port_and_logs_each_retry(retry_log):
    caplog = retry_log
    port = closed_port()
    client = transport(f"http://127.0.0.1:{port}")  # the default policy: 8 attempts for answers, 3 to connect
    started = time.monotonic()
    with pytest.raises(HubSpotConnectionError) as failed:
        client.request("GET", "/crm/objects/2026-03/appointments")
    elapsed = time.monotonic() - started
    print(f"refused connection reported after {elapsed:.2f}s")
    assert elapsed < 5, f"took {elapsed:.1f}s"
    message = str(failed.value)
    assert f"http://127.0.0.1:{port}" in message and "nothing is listening" in message and "simulator" in message
    assert "after 3 attempts" in message
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.WARNING, logging.WARNING]
    assert "GET /crm/objects/2026-03/appointments" in retries[0].getMessage()
    assert "connection refused" in retries[0].getMessage() and "attempt 1/3" in retries[0].getMessage()
    assert "retrying in 0.25s" in retries[0].getMessage() and "retrying in 0.50s" in retries[1].getMessage()
    assert TOKEN not in caplog.text and "Bearer" not in caplog.text


def test_refused_create_is_a_connection_error_not_an_ambiguous_write():
    # Nothing reached the server, so the create certainly was not applied.
    with pytest.raises(HubSpotConnectionError) as failed:
        transport(f"http://127.0.0.1:{closed_port()}", FAST).request("POST", "/x", json_body={}, idempotent=False)
    assert not isinstance(failed.value, HubSpotAmbiguousWriteError)


def test_https_to_a_plain_http_server_says_it_does_not_speak_tls(plain_http_server):
    client = transport(f"https://127.0.0.1:{plain_http_server}")
    started = time.monotonic()
    with pytest.raises(HubSpotTLSError) as failed:
        client.request("GET", "/crm/objects/2026-03/appointments")
    assert time.monotonic() - started < 2
    assert client.requests_sent == 1 and client.retries == 0  # not retried: it cannot heal
    message = str(failed.value)
    assert f"127.0.0.1:{plain_http_server}" in message and "does not speak TLS" in message and "http://" in message


def test_https_to_the_simulator_says_it_does_not_speak_tls(hubspot_simulator):
    port = hubspot_simulator.url.rsplit(":", 1)[1]
    client = transport(f"https://127.0.0.1:{port}", token=hubspot_simulator.token)
    with pytest.raises(HubSpotTLSError, match=f"127.0.0.1:{port}.*does not speak TLS"):
        client.request("GET", "/crm/objects/2026-03/appointments", params={"limit": 1})
    assert client.requests_sent == 1


def test_http_to_a_tls_server_says_it_expects_https(tls_server):
    for idempotent in (True, False):  # a create too: the server never read it, so it is not ambiguous
        client = transport(f"http://127.0.0.1:{tls_server}")
        started = time.monotonic()
        with pytest.raises(HubSpotTLSError) as failed:
            client.request("POST", "/crm/objects/2026-03/appointments", json_body={}, idempotent=idempotent)
        assert time.monotonic() - started < 3
        assert client.requests_sent == 1
        assert f"http://127.0.0.1:{tls_server}" in str(failed.value) and "expects HTTPS" in str(failed.value)


def test_http_to_a_server_answering_a_tls_alert_says_it_expects_https(tls_alert_server):
    client = transport(f"http://127.0.0.1:{tls_alert_server}")
    with pytest.raises(HubSpotTLSError, match=f"127.0.0.1:{tls_alert_server}.*expects HTTPS"):
        client.request("GET", "/crm/objects/2026-03/appointments")
    assert client.requests_sent == 1


def test_an_untrusted_certificate_is_named_and_not_retried(tls_server):
    client = transport(f"https://127.0.0.1:{tls_server}")
    with pytest.raises(HubSpotTLSError, match="certificate of https://127.0.0.1:.*could not be verified"):
        client.request("GET", "/x")
    assert client.requests_sent == 1


def test_a_plain_server_that_drops_the_request_is_not_mistaken_for_tls(dropping_server, retry_log):
    caplog = retry_log
    with pytest.raises(HubSpotAmbiguousWriteError, match="may or may not"):
        transport(f"http://127.0.0.1:{dropping_server}", FAST).request("POST", "/x", json_body={}, idempotent=False)
    client = transport(f"http://127.0.0.1:{dropping_server}", FAST)
    with pytest.raises(Exception) as failed:
        client.request("GET", "/x")
    assert not isinstance(failed.value, HubSpotTLSError) and "dropped before an answer" in str(failed.value)
    assert client.requests_sent == 3  # an idempotent read is retried as before
    assert "dropped before an answer arrived (attempt 1/3); retrying in" in caplog.text


def test_retries_of_answers_are_logged_with_status_attempt_and_wait(hubspot_simulator_factory, retry_log):
    caplog = retry_log
    sim = hubspot_simulator_factory(seed_appointments=1, faults={"rate": 1.0, "kinds": ["503"]})
    client = transport(sim.url, FAST, token=sim.token)
    with pytest.raises(HubSpotAPIError) as failed:
        client.request("GET", "/crm/objects/2026-03/appointments", params={"limit": 1})
    assert failed.value.status == 503 and client.retries == 2
    lines = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.WARNING, logging.WARNING]
    assert "GET /crm/objects/2026-03/appointments: HTTP 503" in lines[0].getMessage()
    assert "(attempt 1/3); retrying in 0.0" in lines[0].getMessage() and "(attempt 2/3)" in lines[1].getMessage()

    caplog.clear()
    sim.configure(faults={"rate": 0.0})
    sim.burst_429(1)
    client.request("GET", "/crm/objects/2026-03/appointments", params={"limit": 1})
    pacing = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(pacing) == 1 and pacing[0].levelno == logging.INFO and "HTTP 429" in pacing[0].getMessage()
    assert sim.token not in caplog.text


# --- classification and decisions on constructed exceptions ------------------------------------------------------

BASE = "https://api.example.test"


def wrapped(reason: BaseException, cause: BaseException | None = None) -> requests.ConnectionError:
    """What requests raises: its ConnectionError around urllib3's MaxRetryError around the real reason."""
    reason.__cause__ = cause
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/x", reason))


def ssl_error(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, "handshake failed")
    error.reason = reason
    return error


@pytest.mark.parametrize(("exc", "outcome", "named"), [
    (wrapped(urllib3.exceptions.NewConnectionError(None, "failed"), ConnectionRefusedError(111, "refused")),
     Outcome.NEVER_SENT, "nothing is listening on https://api.example.test:443"),
    (wrapped(urllib3.exceptions.NameResolutionError("api.example.test", None, socket.gaierror(-2, "unknown"))),
     Outcome.NEVER_SENT, "cannot resolve the host of https://api.example.test:443"),
    (requests.ConnectTimeout(urllib3.exceptions.MaxRetryError(None, "/x", urllib3.exceptions.ConnectTimeoutError())),
     Outcome.NEVER_SENT, "did not accept the connection within 10s"),
    (requests.ReadTimeout(urllib3.exceptions.ReadTimeoutError(None, "/x", "read timed out")),
     Outcome.MAYBE_APPLIED, "timed out"),
    (requests.ConnectionError(urllib3.exceptions.ProtocolError("aborted", http.client.RemoteDisconnected("closed"))),
     Outcome.MAYBE_APPLIED, "dropped before an answer arrived"),
    (requests.ConnectionError(urllib3.exceptions.ProtocolError("aborted", ConnectionResetError(104, "reset"))),
     Outcome.MAYBE_APPLIED, "dropped before an answer arrived"),
    (requests.exceptions.SSLError(urllib3.exceptions.SSLError(ssl_error("WRONG_VERSION_NUMBER"))),
     Outcome.MISCONFIGURED, "does not speak TLS"),
    (requests.exceptions.SSLError(urllib3.exceptions.SSLError(ssl_error("TLSV1_ALERT_PROTOCOL_VERSION"))),
     Outcome.MISCONFIGURED, "refused our TLS version"),
    (requests.exceptions.SSLError(urllib3.exceptions.SSLError(ssl.SSLEOFError(8, "eof"))),
     Outcome.MAYBE_APPLIED, "TLS error"),
    (requests.ConnectionError(
        urllib3.exceptions.ProtocolError("aborted", http.client.BadStatusLine("\x15\x03\x01\x00"))),
     Outcome.MISCONFIGURED, "expects HTTPS"),
    (requests.ConnectionError(urllib3.exceptions.ProtocolError("aborted", http.client.BadStatusLine("SSH-2.0"))),
     Outcome.MAYBE_APPLIED, "dropped before an answer arrived"),
])
def test_failures_are_classified_by_exception_type(exc, outcome, named):
    failure = classify_exception(exc, BASE, connect_timeout_s=10)
    assert failure.outcome is outcome and named in failure.reason


def test_misleading_message_text_does_not_change_the_classification():
    # The old code searched repr(exc) for "Connection refused"; a dropped answer must not be taken for it.
    exc = requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection refused NewConnectionError",
                                                                    ConnectionResetError(104, "Connection refused")))
    assert classify_exception(exc, BASE).outcome is Outcome.MAYBE_APPLIED


def test_the_tls_probe_is_asked_only_about_drops():
    asked = []

    def probe() -> bool:
        asked.append(True)
        return True

    drop = requests.ConnectionError(urllib3.exceptions.ProtocolError("aborted", ConnectionResetError(104, "reset")))
    assert classify_exception(drop, "http://127.0.0.1:8080", probe_tls=probe).outcome is Outcome.MISCONFIGURED
    timeout = requests.ReadTimeout(urllib3.exceptions.ReadTimeoutError(None, "/x", "read timed out"))
    assert classify_exception(timeout, "http://127.0.0.1:8080", probe_tls=probe).outcome is Outcome.MAYBE_APPLIED
    assert len(asked) == 1


def test_retry_policy_decisions_per_outcome():
    policy = RetryPolicy(max_attempts=5, connect_attempts=3, connect_backoff_s=0.1)

    def decide(failure: Failure, total: int, unsent: int = 0, refreshed: bool = False, **kwargs):
        return policy.decide(failure, Attempts(total, unsent, refreshed), **{"idempotent": True, **kwargs})

    never = Failure(Outcome.NEVER_SENT, "refused")
    assert decide(never, 1, 1, idempotent=False).wait_s == pytest.approx(0.1)  # never sent: safe even for creates
    assert decide(never, 2, 2).wait_s == pytest.approx(0.2) and decide(never, 2, 2).budget == 3
    assert decide(never, 3, 3).action is Action.RAISE
    maybe = Failure(Outcome.MAYBE_APPLIED, "dropped")
    assert decide(maybe, 1).action is Action.RETRY and decide(maybe, 1).budget == 5
    assert decide(maybe, 1, idempotent=False).action is Action.RAISE and decide(maybe, 1, idempotent=False).ambiguous
    assert decide(maybe, 5).action is Action.RAISE and not decide(maybe, 5).ambiguous
    gateway = Failure(Outcome.MAYBE_APPLIED, "HTTP 502", status=502)
    assert decide(gateway, 1, idempotent=False).ambiguous and decide(gateway, 1).action is Action.RETRY
    limited = Failure(Outcome.REJECTED, "HTTP 429", status=429, headers={"Retry-After": "2"}, body={},
                      rate_limit=RateLimit.TEN_SECONDLY)
    assert decide(limited, 1, idempotent=False).wait_s == 2 and not decide(limited, 1, idempotent=False).ambiguous
    # A 429 holds back every thread sharing the budget: as long as the wait, or a window when not retried.
    assert decide(limited, 1).pause_s == 2 and decide(limited, 5).pause_s == policy.rate_limit_window_s
    assert decide(gateway, 1).pause_s == 0
    assert decide(Failure(Outcome.REJECTED, "HTTP 400", status=400), 1).action is Action.RAISE
    expired = Failure(Outcome.EXPIRED_TOKEN, "HTTP 401", status=401)
    assert decide(expired, 1, can_refresh=True).action is Action.REFRESH
    assert decide(expired, 2, refreshed=True, can_refresh=True).action is Action.RAISE
    assert decide(expired, 1, can_refresh=False).action is Action.RAISE
    assert decide(Failure(Outcome.MISCONFIGURED, "tls"), 1).action is Action.RAISE
