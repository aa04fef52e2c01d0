"""Typed errors: every failure carries the facts a user needs (HTTP status, HubSpot category, message,
correlation id, context) and never a credential."""

from __future__ import annotations

from typing import Any


class HubSpotError(Exception):
    """Base class for everything this provider raises about HubSpot."""


class HubSpotAPIError(HubSpotError):
    """HubSpot answered with an error status.

    :param status: HTTP status code.
    :param category: HubSpot's ``category`` (``VALIDATION_ERROR``, ``OBJECT_NOT_FOUND``, …) or 429's ``policyName``.
    :param message: HubSpot's ``message``.
    :param correlation_id: HubSpot's ``correlationId``: quote it to HubSpot support.
    :param context: HubSpot's ``context`` (e.g. the ids or trace ids that failed).
    :param errors: HubSpot's ``errors[]`` details.
    :param method: HTTP method of the request.
    :param path: URL path of the request, without the query string.
    """

    def __init__(
        self,
        status: int,
        category: str | None,
        message: str,
        *,
        correlation_id: str | None = None,
        context: dict[str, Any] | None = None,
        errors: list[dict] | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.category = category
        self.message = message
        self.correlation_id = correlation_id
        self.context = context or {}
        self.errors = errors or []
        self.method = method
        self.path = path
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" on {self.method} {self.path}" if self.path else ""
        correlation = f" (correlationId {self.correlation_id})" if self.correlation_id else ""
        return f"HTTP {self.status} {self.category or 'ERROR'}{where}: {self.message}{correlation}"

    def __reduce__(self) -> tuple:
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[HubSpotAPIError], state: dict) -> HubSpotAPIError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, str(error))
    return error


class HubSpotAuthenticationError(HubSpotAPIError):
    """401, or an OAuth refresh token HubSpot no longer accepts: fix the connection, retrying won't help."""


class HubSpotPermissionError(HubSpotAPIError):
    """403 ``MISSING_SCOPES``: the token lacks a scope."""


class HubSpotNotFoundError(HubSpotAPIError):
    """404: the record (or route) does not exist, or is archived."""


class HubSpotRateLimitError(HubSpotAPIError):
    """429 that retrying cannot fix now (the daily limit, or retries exhausted)."""


class HubSpotTransportError(HubSpotError):
    """No usable answer: connection failures or timeouts after retries, or a body that is not HubSpot's JSON."""


class HubSpotAmbiguousWriteError(HubSpotTransportError):
    """A non-idempotent request (a create) may or may not have been applied: its answer was lost.

    It is never replayed blindly; the client reconciles it (see ``batch_create(dedupe_property=...)``).
    """


class HubSpotConnectionError(HubSpotTransportError):
    """The request never reached HubSpot: the host refused the connection, could not be resolved, or did not
    answer the connect in time. The message names ``scheme://host:port`` and the likely cause."""


class HubSpotTLSError(HubSpotConnectionError):
    """TLS setup is wrong, so no retry can help: ``https://`` to a server that speaks plain HTTP (or the reverse),
    a certificate that cannot be verified, or a handshake the server refused."""


class HubSpotInputError(HubSpotError, ValueError):
    """Input that is wrong before any request is sent; the message names the row or column and the problem."""


def error_for_status(status: int) -> type[HubSpotAPIError]:
    """The exception class for an HTTP error status."""
    if status == 401:
        return HubSpotAuthenticationError
    if status == 403:
        return HubSpotPermissionError
    if status == 404:
        return HubSpotNotFoundError
    if status == 429:
        return HubSpotRateLimitError
    return HubSpotAPIError
