"""The Airflow hook for HubSpot's CRM Appointments API: connection → auth → transport → endpoints."""

from __future__ import annotations

from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_provider_appointments import CONN_TYPE, DEFAULT_CONN_ID
from airflow_provider_appointments.api.client import AppointmentsClient
from airflow_provider_appointments.errors import (
    HubSpotAuthenticationError,
    HubSpotError,
    HubSpotPermissionError,
    HubSpotTransportError,
)
from airflow_provider_appointments.transport.auth import OAUTH_TOKEN_PATH, OAuthRefreshAuth, PrivateAppAuth
from airflow_provider_appointments.transport.http import DEFAULT_HOST, HubSpotTransport, check_base_url, is_loopback
from airflow_provider_appointments.transport.pacing import RateLimiter
from airflow_provider_appointments.transport.retry import RetryPolicy

API_VERSIONS = ("2026-03", "v3")


class HubSpotAppointmentsHook(BaseHook, AppointmentsClient):
    """Talks to HubSpot's Appointments API (object ``0-421``) with the ``hubspot`` connection.

    The connection holds a private-app access token in *password*, or OAuth ``client_id``,
    ``client_secret`` and ``refresh_token`` in its extras. *Host* defaults to
    ``https://api.hubapi.com``; a loopback host without a scheme (the simulator) uses plain HTTP.
    Extras ``requests_per_10s``, ``search_requests_per_second``, ``concurrency`` and ``timeout`` tune
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

    def __init__(
        self,
        hubspot_conn_id: str = DEFAULT_CONN_ID,
        *,
        api_version: str | None = None,
        requests_per_10s: int | None = None,
        concurrency: int | None = None,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hubspot_conn_id = hubspot_conn_id
        self._api_version = api_version
        self._requests_per_10s = requests_per_10s
        self._concurrency = concurrency
        self._retry_policy = retry_policy

    def __repr__(self) -> str:
        return f"HubSpotAppointmentsHook(hubspot_conn_id={self.hubspot_conn_id!r})"

    @cached_property
    def _settings(self) -> dict[str, Any]:
        connection = self.get_connection(self.hubspot_conn_id)
        extra = connection.extra_dejson or {}
        host = (connection.host or "").strip() or DEFAULT_HOST
        if "://" not in host:
            scheme = "http" if is_loopback(host.split(":")[0].strip("[]")) else "https"
            host = f"{scheme}://{host}"
        if connection.port and not urlsplit(host).port:
            host = f"{host.rstrip('/')}:{connection.port}"
        version = str(self._api_version or extra.get("api_version") or "2026-03")
        if version not in API_VERSIONS:
            raise ValueError(f"api_version must be one of {API_VERSIONS}, got {version!r}")
        timeout = float(extra.get("timeout") or 60)
        return {
            "base_url": check_base_url(host),
            "token": connection.password or "",
            "client_id": extra.get("client_id") or "",
            "client_secret": extra.get("client_secret") or "",
            "refresh_token": extra.get("refresh_token") or "",
            "api_version": version,
            "requests_per_10s": self._requests_per_10s or _int(extra.get("requests_per_10s")),
            "search_per_second": _int(extra.get("search_requests_per_second")) or 5,
            "concurrency": self._concurrency or _int(extra.get("concurrency")) or 8,
            "timeout": (min(10.0, timeout), timeout),
        }

    @property
    def api_version(self) -> str:  # type: ignore[override]
        return self._settings["api_version"]

    @property
    def concurrency(self) -> int:  # type: ignore[override]
        return self._settings["concurrency"]

    @cached_property
    def transport(self) -> HubSpotTransport:  # type: ignore[override]
        settings = self._settings
        import requests

        session = requests.Session()
        if settings["token"]:
            auth: PrivateAppAuth | OAuthRefreshAuth = PrivateAppAuth(settings["token"])
        elif settings["refresh_token"]:
            auth = OAuthRefreshAuth(settings["base_url"] + OAUTH_TOKEN_PATH, settings["client_id"],
                                    settings["client_secret"], settings["refresh_token"], post=session.post)
        else:
            raise HubSpotAuthenticationError(
                401, "INVALID_AUTHENTICATION",
                f"connection {self.hubspot_conn_id!r} has neither an access token (password) nor an OAuth "
                "refresh_token (extra)")
        return HubSpotTransport(
            settings["base_url"],
            auth,
            limiter=RateLimiter(settings["requests_per_10s"]),
            search_limiter=RateLimiter(settings["search_per_second"], window_s=1.0, utilization=1.0, reserve=0, transit_s=0.05),
            retry=self._retry_policy,
            concurrency=settings["concurrency"],
            timeout=settings["timeout"],
            session=session,
        )

    def get_conn(self) -> HubSpotTransport:
        """The transport (pooled session, pacing, retries) this hook sends through."""
        return self.transport

    def test_connection(self) -> tuple[bool, str]:
        """One cheap real call (a one-record page); a clear reason when it fails."""
        try:
            probe = HubSpotAppointmentsHook(self.hubspot_conn_id, api_version=self._api_version,
                                            retry_policy=RetryPolicy(max_attempts=2, backoff_base_s=0.2))
            next(probe.iter_appointments(page_size=1), None)
        except HubSpotAuthenticationError as error:
            return False, f"HubSpot rejected the credentials: {error.message}"
        except HubSpotPermissionError as error:
            return False, f"the token lacks a scope (crm.objects.appointments.read is needed): {error.message}"
        except HubSpotTransportError as error:
            return False, f"cannot reach {self._settings['base_url']}: {error}"
        except (HubSpotError, ValueError) as error:
            return False, str(error)
        return True, f"connected to {self._settings['base_url']} (API {self.api_version})"


def _int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    return int(value)
