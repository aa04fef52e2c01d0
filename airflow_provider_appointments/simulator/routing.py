"""Matching request paths to handlers, segment by segment on the raw path.

Matching works on the undecoded path split at ``/`` and decodes each segment afterwards, so an
escaped ``%2F`` stays inside its segment (a record id containing a slash never reaches another
route), as HubSpot treats it. Routes with more literal segments win over routes with parameters
(``.../search`` before ``.../{object_id}``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from starlette.datastructures import Headers, QueryParams

from airflow_provider_appointments.simulator.errors import HubSpotHTTPError

# Date versions HubSpot has released plus the numeric ones; anything else in a {version} slot is a 404.
API_VERSIONS = frozenset({"v3", "v4", "2025-09", "2026-03", "2026-09"})


@dataclass
class Reply:
    """A handler's answer: status, JSON body (None for no body) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """Everything a handler needs about one request.

    :param method: HTTP method.
    :param params: decoded path parameters.
    :param query: query parameters (repeated names kept).
    :param headers: request headers.
    :param base_url: ``scheme://host:port`` the client used, for absolute links.
    :param path: the raw request path.
    :param version: the API version the path names (``2026-03``, ``v3``, ``v4``).
    :param body: the parsed JSON body (None when there is none).
    :param raw_body: the body as received.
    :param source_id: who is writing (the ``sourceId`` of property history entries).
    """

    method: str
    params: dict[str, str]
    query: QueryParams
    headers: Headers
    base_url: str
    path: str
    version: str = "v3"
    body: Any = None
    raw_body: bytes = b""
    source_id: str = ""

    def query_list(self, name: str) -> list[str] | None:
        """A list parameter, sent comma-separated, repeated, or both (HubSpot accepts either)."""
        values = self.query.getlist(name)
        if not values:
            return None
        return [part.strip() for value in values for part in value.split(",") if part.strip()]

    def flag(self, name: str) -> bool:
        """Whether a query parameter is ``true`` (case-insensitive)."""
        return (self.query.get(name) or "").lower() == "true"


@dataclass(frozen=True)
class Route:
    """One endpoint.

    :param method: HTTP method.
    :param template: path with ``{name}`` parameters; also the route's name in the statistics.
    :param handler: ``handler(call) -> Reply``; raises `HubSpotHTTPError` to answer an error.
    :param kind: ``api`` (authenticated, rate limited), ``search`` (own rate limit), ``oauth`` or ``admin``.
    :param scopes: the scopes of which the caller needs one, from the call (None: no scope needed).
    :param version: the API version of a template without a ``{version}`` parameter.
    """

    method: str
    template: str
    handler: Callable[[Call], Reply]
    kind: str = "api"
    scopes: Callable[[Call], tuple[str, ...]] | None = None
    version: str = "v3"

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.template.strip("/").split("/"))

    @property
    def literals(self) -> int:
        """Fixed segments of the template: routes with more of them match first."""
        return sum(1 for segment in self.segments if not segment.startswith("{"))


class Router:
    """Finds the route of a request; raises HubSpot-style 404 / 405 errors for the rest."""

    def __init__(self, routes: list[Route]) -> None:
        self._by_length: dict[int, list[tuple[Route, tuple[str, ...]]]] = {}
        for route in sorted(routes, key=lambda r: -r.literals):
            self._by_length.setdefault(len(route.segments), []).append((route, route.segments))

    def match(self, method: str, raw_path: bytes) -> tuple[Route, dict[str, str]]:
        """The route of a request and its path parameters, or HubSpot's 404 / 405."""
        segments = [unquote(part.decode("latin-1")) for part in raw_path.strip(b"/").split(b"/")]
        allowed = False
        for route, template in self._by_length.get(len(segments), ()):
            params = _bind(template, segments)
            if params is None:
                continue
            if route.method == method:
                return route, params
            allowed = True
        if allowed:
            raise HubSpotHTTPError(405, "METHOD_NOT_ALLOWED", f"{method} is not supported on this path.",
                                   context={"method": [method]})
        raise HubSpotHTTPError(404, "OBJECT_NOT_FOUND", "Resource not found: no such endpoint in the HubSpot "
                                                        "simulator.", context={"path": [raw_path.decode("latin-1")]})


def _bind(template: tuple[str, ...], segments: list[str]) -> dict[str, str] | None:
    params = {}
    for expected, actual in zip(template, segments):
        if expected.startswith("{"):
            name = expected[1:-1]
            if not actual or (name == "version" and actual not in API_VERSIONS):
                return None
            params[name] = actual
        elif expected != actual:
            return None
    return params
