"""Who may call: private-app bearer tokens, OAuth access tokens from the refresh-token grant, scopes.

Token endpoint errors are HubSpot's ``{"status": "<CODE>", "message": ...}`` 400 bodies:
``BAD_GRANT_TYPE`` (grant other than ``refresh_token``), ``BAD_CLIENT_ID`` (unknown client id),
``BAD_CLIENT_SECRET`` (wrong secret for the client; model choice, HubSpot documents none of these
except ``BAD_REFRESH_TOKEN``) and ``BAD_REFRESH_TOKEN`` (unknown or revoked refresh token).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from airflow_provider_appointments.simulator.errors import HubSpotHTTPError
from airflow_provider_appointments.simulator.properties import iso_ms
from airflow_provider_appointments.simulator.schema import SCHEMAS

ALL_SCOPES = tuple(sorted({f"crm.objects.{kind}.{access}" for kind in SCHEMAS for access in ("read", "write")}
                          | {f"crm.schemas.{kind}.{access}" for kind in SCHEMAS for access in ("read", "write")}
                          | {"oauth"}))
INVALID_AUTHENTICATION_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more "
    "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
_AUTH_FAILURE_HEADER = {"x-hubspot-auth-failure": "401 Unauthorized"}


@dataclass(frozen=True)
class Caller:
    """An authenticated caller.

    :param principal: the rate-limit identity: the private app (its token), or the OAuth installation.
    :param oauth: authenticated with an OAuth access token (no daily limit, no daily headers).
    :param scopes: granted scopes.
    :param source_id: the ``sourceId`` its writes leave in property history.
    """

    principal: str
    oauth: bool
    scopes: frozenset[str]
    source_id: str


def scope_error(required: tuple[str, ...]) -> HubSpotHTTPError:
    """HubSpot's 403 when a token has none of the scopes an endpoint accepts."""
    return HubSpotHTTPError(
        403, "MISSING_SCOPES",
        "This app hasn't been granted all required scopes to make this call. Read more about required scopes "
        "here: https://developers.hubspot.com/scopes.",
        errors=[{"message": "One or more of the following scopes are required.",
                 "context": {"requiredGranularScopes": list(required)}}],
    )


class Authenticator:
    """Checks bearer tokens and runs the OAuth refresh-token grant.

    :param tokens: private-app tokens (all scopes unless `token_scopes` says otherwise).
    :param token_scopes: tokens with restricted scopes; a token listed only here is accepted too.
    :param oauth_clients: client id -> client secret.
    :param refresh_tokens: refresh tokens the token endpoint accepts.
    :param token_ttl_s: lifetime of issued access tokens (``expires_in``).
    :param hub_id: the simulated account's id.
    """

    def __init__(self, tokens: tuple[str, ...], token_scopes: dict[str, list[str]], oauth_clients: dict[str, str],
                 refresh_tokens: tuple[str, ...], token_ttl_s: float, hub_id: int) -> None:
        self._lock = threading.Lock()
        self._access: dict[str, float] = {}  # issued OAuth access token -> expiry (epoch seconds)
        self.issued = 0
        self.revoked: set[str] = set()
        self.configure(tokens, token_scopes, oauth_clients, refresh_tokens, token_ttl_s, hub_id)

    def configure(self, tokens: tuple[str, ...], token_scopes: dict[str, list[str]], oauth_clients: dict[str, str],
                  refresh_tokens: tuple[str, ...], token_ttl_s: float, hub_id: int) -> None:
        """Apply changed settings; issued access tokens stay valid until they expire."""
        with self._lock:
            self.private = {token: frozenset(ALL_SCOPES) for token in tokens}
            self.private.update({token: frozenset(scopes) for token, scopes in token_scopes.items()})
            self.oauth_clients = dict(oauth_clients)
            self.refresh_tokens = set(refresh_tokens)
            self.token_ttl_s = token_ttl_s
            self.hub_id = hub_id
            self._app_numbers = {token: number for number, token in enumerate(self.private, start=1)}

    def authenticate(self, authorization: str | None) -> Caller:
        """The caller of an ``Authorization`` header, or HubSpot's 401."""
        if not authorization or not authorization[:7].lower() == "bearer ":
            raise _unauthorized("INVALID_AUTHENTICATION", INVALID_AUTHENTICATION_MESSAGE)
        token = authorization[7:].strip()
        scopes = self.private.get(token)
        if scopes is not None:
            return Caller(token, False, scopes, f"private-app:{self._app_numbers.get(token, 0)}")
        with self._lock:
            expiry = self._access.get(token)
        if expiry is None:
            raise _unauthorized("INVALID_AUTHENTICATION", INVALID_AUTHENTICATION_MESSAGE)
        now = time.time()
        if now >= expiry:
            raise _unauthorized("EXPIRED_AUTHENTICATION",
                                f"The OAuth token used to make this call expired {int(now - expiry)} second(s) ago.",
                                context={"expire time": [iso_ms(int(expiry * 1000))]})
        return Caller(f"oauth:{self.hub_id}", True, frozenset(ALL_SCOPES), f"oauth-app:{self.hub_id}")

    def token_grant(self, form: dict[str, str]) -> dict:
        """The refresh-token grant: a new access token, or HubSpot's 400 ``{status, message}`` body."""
        if form.get("grant_type") != "refresh_token":
            raise _token_error("BAD_GRANT_TYPE", "grant_type must be refresh_token")
        client_id = form.get("client_id", "")
        if client_id not in self.oauth_clients:
            raise _token_error("BAD_CLIENT_ID", "missing or unknown client id")
        if not secrets.compare_digest(self.oauth_clients[client_id].encode(),  # bytes: any characters compare
                                      form.get("client_secret", "").encode("utf-8", "surrogatepass")):
            raise _token_error("BAD_CLIENT_SECRET", "missing or invalid client secret")
        refresh_token = form.get("refresh_token", "")
        with self._lock:
            if refresh_token not in self.refresh_tokens:
                raise _token_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
            access_token = "sim-oauth-" + secrets.token_urlsafe(32)
            self._access[access_token] = time.time() + self.token_ttl_s
            self.issued += 1
        return {"access_token": access_token, "refresh_token": refresh_token, "expires_in": int(self.token_ttl_s),
                "token_type": "bearer", "token_use": "access_token", "hub_id": self.hub_id, "user_id": 51446676,
                "scopes": list(ALL_SCOPES)}

    def expire_all(self) -> int:
        """Expire every issued access token now; returns how many there were."""
        with self._lock:
            expired = time.time() - 1
            for token in self._access:
                self._access[token] = expired
            return len(self._access)

    def revoke_refresh_tokens(self, refresh_token: str | None = None) -> int:
        """Revoke one refresh token, or all of them; returns how many were revoked."""
        with self._lock:
            gone = {refresh_token} & self.refresh_tokens if refresh_token else set(self.refresh_tokens)
            self.refresh_tokens -= gone
            self.revoked |= gone
            return len(gone)


def _unauthorized(category: str, message: str, context: dict | None = None) -> HubSpotHTTPError:
    return HubSpotHTTPError(401, category, message, context=context, headers=dict(_AUTH_FAILURE_HEADER))


def _token_error(status: str, message: str) -> HubSpotHTTPError:
    return HubSpotHTTPError(400, status, message, body={"status": status, "message": message})
