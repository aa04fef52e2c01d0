"""The ASGI application: the request pipeline that layers the policies, and the route table.

The handlers live in one module per family (`objects`, `batches`, `associations`, `properties_api`,
`oauth`, `admin`); this module binds them to the simulator's state and to their paths.

Every API request passes, in order: added latency, fault injection (faults that answer or drop
before anything is applied), the URL length check, authentication, scopes, rate limits, body
parsing, then the handler under the store's lock, then the faults that apply first and break the
answer afterwards (lost, late or truncated). Admin endpoints (``/_simulator/...``) skip all of it
and answer loopback clients only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import Headers, QueryParams

from airflow_provider_appointments.simulator.admin import AdminAPI
from airflow_provider_appointments.simulator.associations import AssociationsAPI
from airflow_provider_appointments.simulator.auth import scope_error
from airflow_provider_appointments.simulator.batches import OPERATIONS as BATCH_OPERATIONS
from airflow_provider_appointments.simulator.batches import BatchesAPI
from airflow_provider_appointments.simulator.errors import HubSpotHTTPError, new_correlation_id, validation_error
from airflow_provider_appointments.simulator.faults import BEFORE_APPLY, PROXY_PAGE, reset_connection, truncate
from airflow_provider_appointments.simulator.oauth import OAuthAPI
from airflow_provider_appointments.simulator.objects import ObjectsAPI
from airflow_provider_appointments.simulator.properties_api import PropertiesAPI
from airflow_provider_appointments.simulator.ratelimit import rate_limit_error
from airflow_provider_appointments.simulator.routing import Call, Reply, Route, Router
from airflow_provider_appointments.simulator.schema import object_schema
from airflow_provider_appointments.simulator.state import SimulatorState

MAX_URL_CHARS = 8_000  # longer request targets get 414 (HubSpot's exact limit is not documented)
JSON_TYPE = b"application/json;charset=utf-8"
LOOPBACK_CLIENTS = frozenset({"127.0.0.1", "::1", "localhost"})
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class SimulatorApp:
    """The ASGI callable: routes requests through the pipeline.

    :param state: the simulator's state and policies.
    """

    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        store = state.store
        apis = ObjectsAPI(store), BatchesAPI(store), AssociationsAPI(store), PropertiesAPI(store)
        self.router = Router(api_routes(*apis) + own_routes(OAuthAPI(state.auth), AdminAPI(state)))

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        correlation = new_correlation_id()
        method, raw_path = scope["method"], scope.get("raw_path") or scope["path"].encode()
        try:
            route, params = self.router.match(method, raw_path)
        except HubSpotHTTPError as error:
            self.state.stats.record("unmatched", error.status)
            await _send_json(send, error.status, error.to_body(correlation), {"X-HubSpot-Correlation-Id": correlation})
            return
        if route.kind == "admin":
            await self._admin(route, params, scope, receive, send)
            return
        await self._api(route, params, scope, receive, send, correlation)

    async def _api(self, route: Route, params: dict[str, str], scope: dict, receive: Receive, send: Send,
                   correlation: str) -> None:
        state, name = self.state, f"{route.method} {route.template}"
        delay = state.latency_s()
        if delay:
            await asyncio.sleep(delay)
        fault = state.faults.draw(route.method, scope["path"])
        if fault in BEFORE_APPLY:
            await self._answer_fault(fault, name, send, correlation)
            return
        status, body, headers = await self._handle(route, params, scope, receive, correlation)
        if fault == "reset_after_apply":
            state.stats.record(name, "dropped")
            await reset_connection(send)
            return
        if fault == "timeout":
            await asyncio.sleep(state.config.faults.timeout_s)
        elif fault == "truncated":
            body = truncate(body)
        state.stats.record(name, status)
        await _send(send, status, body, JSON_TYPE if body else None, headers)

    async def _handle(self, route: Route, params: dict[str, str], scope: dict, receive: Receive,
                      correlation: str) -> tuple[int, bytes, dict[str, str]]:
        """Authenticate, rate-limit and run the handler: (status, body, headers) of the answer."""
        state = self.state
        headers = {"X-HubSpot-Correlation-Id": correlation}
        request_headers = Headers(scope=scope)
        query_string = scope.get("query_string", b"").decode("latin-1")
        call = Call(route.method, params, QueryParams(query_string), request_headers,
                    f"{scope.get('scheme', 'http')}://{request_headers.get('host', 'localhost')}",
                    scope.get("raw_path", b"").decode("latin-1") or scope["path"],
                    version=params.get("version", route.version))
        try:
            if len(call.path) + len(query_string) + 1 > MAX_URL_CHARS:
                raise HubSpotHTTPError(414, "URI_TOO_LONG", f"The request URL is longer than {MAX_URL_CHARS} "
                                                            "characters; ask for fewer properties per request.")
            if route.kind in ("api", "search"):
                caller = state.auth.authenticate(request_headers.get("authorization"))
                required = route.scopes(call) if route.scopes else ()
                if required and caller.scopes.isdisjoint(required):
                    raise scope_error(required)
                headers.update(state.limiter.admit(caller, search=route.kind == "search"))
                call.source_id = caller.source_id
            call.raw_body = await _read_body(receive)
            call.body = _parse_body(route, call.raw_body)
            with state.store.lock:
                reply = route.handler(call)
        except HubSpotHTTPError as error:
            headers.update(error.headers)
            return error.status, _encode(error.to_body(correlation)), headers
        headers.update(reply.headers)
        return reply.status, _encode(reply.body) if reply.body is not None else b"", headers

    async def _answer_fault(self, fault: str, route: str, send: Send, correlation: str) -> None:
        """Faults that hit before anything is applied."""
        stats = self.state.stats
        if fault == "reset":
            stats.record(route, "dropped")
            await reset_connection(send)
        elif fault == "html":
            stats.record(route, 502)
            await _send(send, 502, PROXY_PAGE, b"text/html", {})
        elif fault == "429":
            error = rate_limit_error("TEN_SECONDLY_ROLLING", self.state.config.hub_id,
                                     retry_after_s=1 if self.state.config.retry_after else None,
                                     limit=self.state.config.requests_per_10s)
            stats.record(route, 429)
            await _send_json(send, 429, error.to_body(correlation),
                             {"X-HubSpot-Correlation-Id": correlation, **error.headers})
        else:
            status = int(fault)
            message = {502: "Bad Gateway", 503: "Service Unavailable: the service is temporarily overloaded, "
                       "try again later", 504: "Gateway Timeout: the request took too long to process"}[status]
            stats.record(route, status)
            await _send_json(send, status, {"status": "error", "message": message, "correlationId": correlation,
                                            "category": "INTERNAL_ERROR"}, {"X-HubSpot-Correlation-Id": correlation})

    async def _admin(self, route: Route, params: dict[str, str], scope: dict, receive: Receive, send: Send) -> None:
        client = (scope.get("client") or ("",))[0]
        if client not in LOOPBACK_CLIENTS:
            await _send_json(send, 403, {"status": "error", "message": "The simulator's admin endpoints answer "
                                         "loopback clients only.", "category": "FORBIDDEN"}, {})
            return
        call = Call(route.method, params, QueryParams(scope.get("query_string", b"").decode("latin-1")),
                    Headers(scope=scope), "", scope["path"])
        try:
            call.raw_body = await _read_body(receive)
            call.body = json.loads(call.raw_body) if call.raw_body else None
            reply = route.handler(call)
        except (HubSpotHTTPError, json.JSONDecodeError) as problem:
            status = problem.status if isinstance(problem, HubSpotHTTPError) else 400
            await _send_json(send, status, {"status": "error", "message": str(problem)}, {})
            return
        await _send_json(send, reply.status, reply.body, {})


# -- the route table -----------------------------------------------------------------------------
def _scopes(access: str, param: str = "object_type", schemas: bool = False) -> Callable[[Call], tuple[str, ...]]:
    """The scopes an endpoint accepts, from the object type in its path."""
    def required(call: Call) -> tuple[str, ...]:
        kind = object_schema(call.params[param]).name
        return (f"crm.objects.{kind}.{access}",) + ((f"crm.schemas.{kind}.read",) if schemas else ())
    return required


def _batch_access(operation: str) -> str:
    return "read" if operation == "read" else "write"


def api_routes(objects: ObjectsAPI, batches: BatchesAPI, associations: AssociationsAPI,
               properties: PropertiesAPI) -> list[Route]:
    """Every HubSpot endpoint the simulator serves, under each path spelling."""
    read, write = _scopes("read"), _scopes("write")
    object_routes: list[tuple[str, str, Callable[[Call], Reply], Any, str]] = [
        ("GET", "", objects.list, read, "api"),
        ("POST", "", objects.create, write, "api"),
        ("POST", "/search", objects.search, read, "search"),
        ("POST", "/gdpr-delete", objects.gdpr_delete, write, "api"),
        ("GET", "/{object_id}", objects.read, read, "api"),
        ("PATCH", "/{object_id}", objects.update, write, "api"),
        ("DELETE", "/{object_id}", objects.archive, write, "api"),
        ("GET", "/{object_id}/associations/{to_type}", associations.list, read, "api"),
        ("PUT", "/{object_id}/associations/{to_type}/{to_id}", associations.put_labelled, write, "api"),
        ("DELETE", "/{object_id}/associations/{to_type}/{to_id}", associations.delete_pair, write, "api"),
        ("PUT", "/{object_id}/associations/default/{to_type}/{to_id}", associations.put_default, write, "api"),
        ("PUT", "/{object_id}/associations/{to_type}/{to_id}/{association_type}", associations.put_typed, write, "api"),
        ("DELETE", "/{object_id}/associations/{to_type}/{to_id}/{association_type}", associations.delete_typed,
         write, "api"),
    ]
    for operation in BATCH_OPERATIONS:
        object_routes.append(("POST", f"/batch/{operation}", getattr(batches, operation),
                              _scopes(_batch_access(operation)), "api"))
    routes = [Route(method, prefix + suffix, handler, kind=kind, scopes=scopes, version=version)
              for prefix, version in (("/crm/objects/{version}/{object_type}", "v3"),
                                      ("/crm/v3/objects/{object_type}", "v3"))
              for method, suffix, handler, scopes, kind in object_routes]
    # v4 spells the single-pair association paths /crm/v4/objects/...
    routes += [Route(method, "/crm/v4/objects/{object_type}" + suffix, handler, scopes=scopes, version="v4")
               for method, suffix, handler, scopes, kind in object_routes if "/associations/" in suffix
               and "{association_type}" not in suffix]
    for prefix, version in (("/crm/associations/{version}/{from_type}/{to_type}", "v4"),
                            ("/crm/v4/associations/{from_type}/{to_type}", "v4")):
        routes.append(Route("GET", prefix + "/labels", associations.labels, scopes=_scopes("read", "from_type"),
                            version=version))
        for operation, handler in (("create", associations.batch_create),
                                   ("associate/default", associations.batch_default),
                                   ("read", associations.batch_read), ("archive", associations.batch_archive),
                                   ("labels/archive", associations.batch_archive_labels)):
            routes.append(Route("POST", f"{prefix}/batch/{operation}", handler, version=version,
                                scopes=_scopes(_batch_access(operation), "from_type")))
    for prefix in ("/crm/properties/{version}/{object_type}", "/crm/v3/properties/{object_type}"):
        routes.append(Route("GET", prefix, properties.list, scopes=_scopes("read", schemas=True)))
        routes.append(Route("POST", prefix, properties.create, scopes=_schema_write))
        routes.append(Route("GET", prefix + "/{property_name}", properties.read, scopes=_scopes("read", schemas=True)))
    return routes


def _schema_write(call: Call) -> tuple[str, ...]:
    return (f"crm.schemas.{object_schema(call.params['object_type']).name}.write",)


def own_routes(oauth: OAuthAPI, admin: AdminAPI) -> list[Route]:
    """The OAuth token endpoint and the simulator's admin endpoints."""
    admin_routes: list[tuple[str, str, Callable[[Call], Reply]]] = [
        ("GET", "health", admin.health),
        ("GET", "stats", admin.stats),
        ("GET", "config", admin.get_config),
        ("PATCH", "config", admin.patch_config),
        ("POST", "reset", admin.reset),
        ("GET", "state", admin.describe),
        ("POST", "oauth/expire", admin.expire_oauth),
        ("POST", "oauth/revoke", admin.revoke_oauth),
        ("POST", "faults/burst-429", admin.burst_429),
    ]
    return [Route("POST", "/oauth/{oauth_version}/token", oauth.token, kind="oauth")] + [
        Route(method, f"/_simulator/{action}", handler, kind="admin") for method, action, handler in admin_routes]


# -- plumbing ------------------------------------------------------------------------------------
def _parse_body(route: Route, raw: bytes) -> Any:
    """The JSON body, or HubSpot's "Invalid input JSON" 400: for malformed JSON, bytes that are not
    UTF-8, the non-standard ``NaN`` / ``Infinity`` literals, numbers too long to read and nesting too
    deep to read."""
    if not raw or route.kind == "oauth":
        return None
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as problem:
        reason = f" on line {problem.lineno}, column {problem.colno}: {problem.msg}"
    except UnicodeDecodeError as problem:
        reason = f": the body is not UTF-8 ({problem.reason} at byte {problem.start})"
    except RecursionError:
        reason = ": the body is nested too deeply"
    except ValueError as problem:  # NaN / Infinity, or an integer with more digits than Python reads
        reason = f": {problem}" if "JSON value" in str(problem) else ": a number in the body has too many digits"
    raise validation_error(f"Invalid input JSON{reason}", context={"body": ["malformed JSON"]})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _encode(body: Any) -> bytes:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate (``"\\ud800"`` in a request) echoed back: keep it escaped
        return json.dumps(body, separators=(",", ":")).encode()


async def _send_json(send: Send, status: int, body: Any, headers: dict[str, str]) -> None:
    await _send(send, status, _encode(body), JSON_TYPE, headers)


async def _send(send: Send, status: int, body: bytes, content_type: bytes | None, headers: dict[str, str]) -> None:
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    if content_type:
        raw.append((b"content-type", content_type))
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
