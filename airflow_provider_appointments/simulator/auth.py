"""Who may call: private-app bearer tokens and OAuth access tokens issued from refresh tokens."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from airflow_provider_appointments.simulator.errors import HubSpotHTTPError

READ_SCOPE = "crm.objects.appointments.read"
WRITE_SCOPE = "crm.objects.appointments.write"
ALL_SCOPES = (READ_SCOPE, WRITE_SCOPE, "crm.objects.contacts.read", "crm.schemas.appointments.read")
_MISSING = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more "
    "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


@dataclass(frozen=True)
class Caller:
    token: str
    oauth: bool
    scopes: tuple[str, ...]


class Authenticator:
    """Validates bearer tokens and runs the OAuth refresh-token grant."""

    def __init__(
        self,
        tokens: tuple[str, ...],
        token_scopes: dict[str, list[str]],
        oauth_clients: dict[str, str],
        refresh_tokens: tuple[str, ...],
        token_ttl_s: int,
    ) -> None:
        self._lock = threading.Lock()
        self.tokens = tuple(tokens)
        self.token_scopes = dict(token_scopes)
        self.oauth_clients = dict(oauth_clients)
        self.refresh_tokens = set(refresh_tokens)
        self.token_ttl_s = token_ttl_s
        self._access: dict[str, float] = {}  # OAuth access token -> expiry (epoch seconds)
        self.issued = 0

    def authenticate(self, authorization: str | None) -> Caller:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise _unauthorized("INVALID_AUTHENTICATION", _MISSING)
        token = authorization[7:].strip()
        if token in self.tokens or token in self.token_scopes:
            return Caller(token, False, tuple(self.token_scopes.get(token, ALL_SCOPES)))
        with self._lock:
            expiry = self._access.get(token)
        if expiry is None:
            raise _unauthorized("INVALID_AUTHENTICATION", _MISSING)
        if time.time() >= expiry:
            ago = int(time.time() - expiry)
            raise _unauthorized(
                "EXPIRED_AUTHENTICATION",
                f"The OAuth token used to make this call expired {ago} second(s) ago.",
                context={"expire time": [time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(expiry))]},
            )
        return Caller(token, True, ALL_SCOPES)

    def refresh(self, form: dict[str, str]) -> dict:
        """The refresh-token grant: a new access token, or HubSpot's 400 body."""
        if form.get("grant_type") != "refresh_token":
            raise HubSpotHTTPError(400, "BAD_GRANT_TYPE", "grant_type must be refresh_token",
                                   body={"status": "BAD_GRANT_TYPE", "message": "grant_type must be refresh_token"})
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        if self.oauth_clients.get(client_id) != client_secret or not client_id:
            raise HubSpotHTTPError(400, "BAD_CLIENT_ID", "missing or unknown client_id / client_secret",
                                   body={"status": "BAD_CLIENT_ID", "message": "missing or unknown client_id / client_secret"})
        refresh_token = form.get("refresh_token", "")
        with self._lock:
            if refresh_token not in self.refresh_tokens:
                message = "missing or unknown refresh token"
                raise HubSpotHTTPError(400, "BAD_REFRESH_TOKEN", message,
                                       body={"status": "BAD_REFRESH_TOKEN", "message": message})
            access = "sim-oauth-" + secrets.token_urlsafe(24)
            self._access[access] = time.time() + self.token_ttl_s
            self.issued += 1
        return {
            "access_token": access,
            "refresh_token": refresh_token,
            "expires_in": self.token_ttl_s,
            "token_type": "bearer",
            "token_use": "access_token",
            "hub_id": 4242,
            "scopes": list(ALL_SCOPES),
        }

    def expire_all(self) -> int:
        """Expire every issued access token now (a test's way to make a token expire mid-run)."""
        with self._lock:
            for token in self._access:
                self._access[token] = time.time() - 1
            return len(self._access)

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self.refresh_tokens.clear()


def require_scope(caller: Caller, scope: str) -> None:
    if scope not in caller.scopes:
        raise HubSpotHTTPError(
            403,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call. Read more about required "
            "scopes here: https://developers.hubspot.com/scopes.",
            errors=[{"message": "One or more of the following scopes are required.",
                     "context": {"requiredGranularScopes": [scope]}}],
        )


def _unauthorized(category: str, message: str, context: dict | None = None) -> HubSpotHTTPError:
    return HubSpotHTTPError(401, category, message, context=context,
                            headers={"x-hubspot-auth-failure": "401 Unauthorized"})
