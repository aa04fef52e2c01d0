"""Authentication: a private-app token, or OAuth access tokens obtained from a refresh token."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests

from airflow_provider_appointments.errors import HubSpotAuthenticationError, HubSpotTransportError

OAUTH_TOKEN_PATH = "/oauth/2026-03/token"  # /oauth/v1/token is retired in February 2027


def _mask(secret: str) -> None:
    """Register a secret with Airflow's masker so it is redacted from every log line."""
    if not secret:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # outside Airflow (e.g. the simulator's own tools)
        return
    mask_secret(secret)


class PrivateAppAuth:
    """``Authorization: Bearer <private-app token>``; private-app tokens do not expire."""

    refreshable = False

    def __init__(self, token: str) -> None:
        if not token:
            raise HubSpotAuthenticationError(401, "INVALID_AUTHENTICATION", "the connection has no access token")
        _mask(token)
        self._token = token

    def header(self) -> str:
        return f"Bearer {self._token}"

    def invalidate(self) -> None:
        """Nothing to refresh: a rejected private-app token is final."""

    def __repr__(self) -> str:
        return "PrivateAppAuth(token=***)"


class OAuthRefreshAuth:
    """OAuth 2.0 refresh-token grant, caching each access token until shortly before it expires.

    HubSpot asks clients to refresh from ``expires_in`` rather than wait for a 401, so the token is
    renewed `margin_s` early; a 401 ``EXPIRED_AUTHENTICATION`` still triggers one refresh and replay.
    A refresh token HubSpot rejects raises `HubSpotAuthenticationError` at once: no retry loop.
    """

    refreshable = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        post: Callable[..., requests.Response],
        margin_s: float = 60.0,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (client_id and client_secret and refresh_token):
            raise HubSpotAuthenticationError(
                401, "INVALID_AUTHENTICATION",
                "OAuth needs client_id, client_secret and refresh_token in the connection",
            )
        for secret in (client_secret, refresh_token):
            _mask(secret)
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._post = post
        self._margin_s = margin_s
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._expires_at = 0.0
        self.refreshes = 0

    def header(self) -> str:
        with self._lock:
            if self._access_token is None or self._clock() >= self._expires_at - self._margin_s:
                self._refresh()
            return f"Bearer {self._access_token}"

    def invalidate(self) -> None:
        """Forget the cached access token (HubSpot said it expired)."""
        with self._lock:
            self._access_token = None

    def _refresh(self) -> None:
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "refresh_token": self._refresh_token,
        }
        try:
            response = self._post(self.token_url, data=form, timeout=self._timeout)
        except requests.RequestException as exc:
            raise HubSpotTransportError(f"cannot reach HubSpot's OAuth token endpoint: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            status = str(body.get("status") or body.get("category") or "BAD_REFRESH_TOKEN")
            message = str(body.get("message") or f"token endpoint answered HTTP {response.status_code}")
            raise HubSpotAuthenticationError(
                response.status_code,
                status,
                f"OAuth refresh failed ({message}); re-authorize the app and update the connection's refresh token",
                correlation_id=body.get("correlationId"),
                method="POST",
                path=OAUTH_TOKEN_PATH,
            )
        self._access_token = str(body["access_token"])
        _mask(self._access_token)
        if body.get("refresh_token") and body["refresh_token"] != self._refresh_token:
            self._refresh_token = str(body["refresh_token"])
            _mask(self._refresh_token)
        self._expires_at = self._clock() + float(body.get("expires_in", 1800))
        self.refreshes += 1

    def __repr__(self) -> str:
        return f"OAuthRefreshAuth(client_id={self._client_id!r}, client_secret=***, refresh_token=***)"
