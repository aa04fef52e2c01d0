"""The Airflow hook for HubSpot's CRM Appointments API: an Airflow connection → an `AppointmentsClient`.

Like Airflow's Salesforce hook, the hook has its client rather than being one: ``hook.get_conn()``
returns the `AppointmentsClient` (built once per hook), whose methods are the endpoints.
"""

from __future__ import annotations

import hashlib
import threading
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import requests
from airflow.sdk import BaseHook

from airflow_provider_appointments import CONN_TYPE, DEFAULT_CONN_ID
from airflow_provider_appointments.api.client import AppointmentsClient
from airflow_provider_appointments.api.settings import DEFAULT_HOST, ClientSettings
from airflow_provider_appointments.errors import (
    HubSpotAuthenticationError,
    HubSpotError,
    HubSpotPermissionError,
    HubSpotTransportError,
)
from airflow_provider_appointments.transport.auth import OAUTH_TOKEN_PATH, OAuthRefreshAuth, PrivateAppAuth
from airflow_provider_appointments.transport.http import HubSpotTransport, check_base_url, is_loopback
from airflow_provider_appointments.transport.pacing import Pacer
from airflow_provider_appointments.transport.retry import RetryPolicy

# Connection extras that tune the client: the settings field each one sets, and its type.
EXTRA_SETTINGS: dict[str, tuple[str, type]] = {
    "api_version": ("api_version", str), "requests_per_10s": ("requests_per_10s", int),
    "search_requests_per_second": ("search_requests_per_second", int), "concurrency": ("concurrency", int),
    "timeout": ("timeout_s", float)}


class HubSpotAppointmentsHook(BaseHook):
    """Talks to HubSpot's Appointments API (object ``0-421``) with the ``hubspot`` connection.

    The connection holds a private-app access token in *password*, or OAuth ``client_id``,
    ``client_secret`` and ``refresh_token`` in its extras. *Host* defaults to
    ``https://api.hubapi.com``; a loopback host without a scheme (the simulator) uses plain HTTP.
    Extras ``requests_per_10s``, ``search_requests_per_second``, ``concurrency``, ``timeout`` and
    ``max_attempts`` (of each request, the first included; default 8) tune
    pacing and transport; ``api_version`` picks ``2026-03`` (default) or ``v3`` paths.

    :param hubspot_conn_id: the Airflow connection id.
    :param api_version: overrides the connection's ``api_version``.
    :param requests_per_10s: overrides the connection's rate budget (None: learn it from HubSpot's headers).
    :param concurrency: overrides the connection's number of requests in flight.
    :param retry_policy: overrides the default `RetryPolicy`.
    """

    conn_name_attr = "hubspot_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "HubSpot"

    def __init__(self, hubspot_conn_id: str = DEFAULT_CONN_ID, *, api_version: str | None = None,
                 requests_per_10s: int | None = None, concurrency: int | None = None,
                 retry_policy: RetryPolicy | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hubspot_conn_id = hubspot_conn_id
        self.overrides: dict[str, Any] = {name: value for name, value in (("api_version", api_version),
                                                          ("requests_per_10s", requests_per_10s),
                                                          ("concurrency", concurrency)) if value is not None}
        self.retry_policy = retry_policy

    def __repr__(self) -> str:
        return f"HubSpotAppointmentsHook(hubspot_conn_id={self.hubspot_conn_id!r})"

    @cached_property
    def airflow_connection(self) -> Any:
        """The Airflow connection, read once (a secrets backend may be a network call)."""
        return self.get_connection(self.hubspot_conn_id)

    @cached_property
    def settings(self) -> ClientSettings:
        """The connection parsed once; anything it does not set keeps `ClientSettings`' default."""
        connection = self.airflow_connection
        extra = connection.extra_dejson or {}
        values: dict[str, Any] = {}
        for key, (name, kind) in EXTRA_SETTINGS.items():
            if extra.get(key) not in (None, ""):
                try:
                    values[name] = kind(extra[key])
                except ValueError:
                    raise ValueError(f"connection {self.hubspot_conn_id!r}: extra {key!r} must be a "
                                     f"{kind.__name__}, got {extra[key]!r}") from None
        return ClientSettings(base_url=_base_url(connection.host, connection.port), **{**values, **self.overrides})

    @cached_property
    def conn(self) -> AppointmentsClient:
        """The client, built once: connection → auth → transport (pacing, retries) → endpoints."""
        settings = self.settings
        connection = self.airflow_connection
        extra = connection.extra_dejson or {}
        session = requests.Session()
        if connection.password:
            auth: PrivateAppAuth | OAuthRefreshAuth = PrivateAppAuth(connection.password)
        elif extra.get("refresh_token"):
            auth = OAuthRefreshAuth(settings.base_url + OAUTH_TOKEN_PATH, extra.get("client_id") or "",
                                    extra.get("client_secret") or "", extra["refresh_token"], post=session.post)
        else:
            raise HubSpotAuthenticationError(
                401, "INVALID_AUTHENTICATION",
                f"connection {self.hubspot_conn_id!r} has neither an access token (password) nor an OAuth "
                "refresh_token (extra)")
        pacer, search_pacer = _account_pacers(settings, connection.password or extra.get("client_id") or "")
        retry = self.retry_policy
        if retry is None and extra.get("max_attempts") not in (None, ""):  # e.g. fail fast in DAG tests
            retry = RetryPolicy(max_attempts=int(extra["max_attempts"]))
        transport = HubSpotTransport(
            settings.base_url, auth, limiter=pacer, search_limiter=search_pacer, retry=retry,
            concurrency=settings.concurrency, timeout=settings.timeout, session=session)
        return AppointmentsClient(transport, settings)

    def get_conn(self) -> AppointmentsClient:
        """The `AppointmentsClient`: ``hook.get_conn().batch_upsert(...)``."""
        return self.conn

    def test_connection(self) -> tuple[bool, str]:
        """One cheap real call (a one-record page); a clear reason when it fails."""
        try:
            probe = HubSpotAppointmentsHook(self.hubspot_conn_id)
            probe.overrides = dict(self.overrides)
            probe.retry_policy = RetryPolicy(max_attempts=2, backoff_base_s=0.2)
            next(probe.get_conn().iter_appointments(page_size=1), None)
        except HubSpotAuthenticationError as error:
            return False, f"HubSpot rejected the credentials: {error.message}"
        except HubSpotPermissionError as error:
            return False, f"the token lacks a scope (crm.objects.appointments.read is needed): {error.message}"
        except HubSpotTransportError as error:
            return False, f"cannot reach {self.settings.base_url}: {error}"
        except (HubSpotError, ValueError) as error:
            return False, str(error)
        return True, f"connected to {self.settings.base_url} (API {self.settings.api_version})"


# One pair of pacers per account and process: tasks that run one after another in a process (dag.test,
# a DAG's own tests, several hooks in one task) share the account's budgets instead of each starting
# as if nothing had been sent in the last window.
_PACERS: dict[tuple[str, str], tuple[Pacer, Pacer]] = {}
_PACERS_LOCK = threading.Lock()


def _account_pacers(settings: ClientSettings, credential: str) -> tuple[Pacer, Pacer]:
    """The (10-second, search) pacers of the account behind this host and credential."""
    key = (settings.base_url, hashlib.sha256(credential.encode()).hexdigest())  # never the credential itself
    with _PACERS_LOCK:
        shared = _PACERS.get(key)
        if shared is None or all(pacer.idle() for pacer in shared):  # idle for a window: start afresh
            shared = _PACERS[key] = (Pacer(settings.requests_per_10s),
                                     Pacer.for_search(settings.search_requests_per_second))
        return shared


def _base_url(host: str | None, port: int | None) -> str:
    """The connection's host as a URL: HubSpot by default; a bare loopback host (the simulator) is HTTP."""
    url = (host or "").strip() or DEFAULT_HOST
    if "://" not in url:
        scheme = "http" if is_loopback(url.split(":")[0].strip("[]")) else "https"
        url = f"{scheme}://{url}"
    if port and not urlsplit(url).port:
        url = f"{url.rstrip('/')}:{port}"
    return check_base_url(url)
