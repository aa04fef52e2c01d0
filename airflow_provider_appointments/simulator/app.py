"""The router: HubSpot's CRM endpoints for appointments (and the objects they associate with).

Each API request passes, in order: fault injection (outermost ASGI layer), authentication, scopes,
rate limits, latency, then the handler, which works on the store under its lock.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from airflow_provider_appointments.simulator.auth import READ_SCOPE, WRITE_SCOPE, Authenticator, require_scope
from airflow_provider_appointments.simulator.errors import (
    HubSpotHTTPError,
    error_body,
    new_correlation_id,
    not_found,
    validation,
)
from airflow_provider_appointments.simulator.faults import FaultConfig, FaultInjector
from airflow_provider_appointments.simulator.properties import (
    APPOINTMENT_PROPERTIES,
    COMPANY_PROPERTIES,
    CONTACT_PROPERTIES,
    DEAL_PROPERTIES,
    InvalidPropertyValue,
    iso_ms,
    normalize,
    to_epoch_ms,
)
from airflow_provider_appointments.simulator.ratelimit import RateLimiter
from airflow_provider_appointments.simulator.store import (
    APPOINTMENTS,
    COMPANIES,
    CONTACTS,
    DEALS,
    OBJECT_TYPES,
    TYPE_IDS,
    UNIQUE_PROPERTY,
    Record,
    Store,
)

BATCH_LIMIT = 100
SEARCH_LIMIT = 200
SEARCH_CAP = 10_000
DEFAULT_PROPERTIES = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")
VERSIONS = ("2026-03", "v3", "2025-09", "v4")
# (from, to) -> [(category, typeId, label)]; label None is the default (unlabelled) type.
ASSOCIATION_LABELS: dict[tuple[str, str], list[tuple[str, int, str | None]]] = {
    (APPOINTMENTS, CONTACTS): [("HUBSPOT_DEFINED", 906, None), ("USER_DEFINED", 1001, "Primary patient")],
    (APPOINTMENTS, COMPANIES): [("HUBSPOT_DEFINED", 908, None)],
    (APPOINTMENTS, DEALS): [("HUBSPOT_DEFINED", 944, None)],
    (CONTACTS, APPOINTMENTS): [("HUBSPOT_DEFINED", 907, None)],
    (COMPANIES, APPOINTMENTS): [("HUBSPOT_DEFINED", 909, None)],
    (DEALS, APPOINTMENTS): [("HUBSPOT_DEFINED", 945, None)],
}
_PROPERTIES_OF = {
    CONTACTS: CONTACT_PROPERTIES, COMPANIES: COMPANY_PROPERTIES, DEALS: DEAL_PROPERTIES,
}


@dataclass
class SimulatorConfig:
    """Everything about one simulator. 0 or None switches a budget off.

    :param seed: seed of the generated data (same seed, same records).
    :param seed_appointments: how many appointments exist at start (contacts, companies, deals follow).
    :param tokens: private-app tokens accepted as ``Authorization: Bearer``.
    :param token_scopes: tokens with restricted scopes (token -> scopes), for 403 tests.
    :param oauth_clients: OAuth client id -> client secret.
    :param refresh_tokens: refresh tokens the token endpoint accepts.
    :param oauth_token_ttl_s: lifetime of issued OAuth access tokens (``expires_in``).
    :param requests_per_10s: rolling 10-second budget per token (HubSpot Professional: 190).
    :param search_requests_per_second: the separate search budget (HubSpot: 5).
    :param daily_limit: daily budget per private-app token.
    :param retry_after: whether 429 answers carry ``Retry-After`` (HubSpot does not always send it).
    :param latency_ms: added latency per API request; ``latency_jitter_ms`` adds up to that much more.
    :param faults: fault injection settings.
    """

    seed: int = 7
    seed_appointments: int = 200
    tokens: tuple[str, ...] = ("pat-na1-simulator-token",)
    token_scopes: dict[str, list[str]] = field(default_factory=dict)
    oauth_clients: dict[str, str] = field(default_factory=lambda: {"simulator-client-id": "simulator-client-secret"})
    refresh_tokens: tuple[str, ...] = ("simulator-refresh-token",)
    oauth_token_ttl_s: int = 1800
    requests_per_10s: int | None = 190
    search_requests_per_second: int | None = 5
    daily_limit: int | None = 625_000
    retry_after: bool = False
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    faults: FaultConfig = field(default_factory=FaultConfig)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SimulatorConfig:
        values = dict(values)
        faults = values.pop("faults", None)
        for key in ("tokens", "refresh_tokens"):
            if key in values:
                values[key] = tuple(values[key])
        config = cls(**values)
        if faults is not None:
            config.faults = faults if isinstance(faults, FaultConfig) else FaultConfig(**faults)
        return config


class SimulatorState:
    """The store plus the policies layered on top of it, shared by every request."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.store = Store(config.seed, config.seed_appointments)
        self.auth = Authenticator(config.tokens, config.token_scopes, config.oauth_clients,
                                  config.refresh_tokens, config.oauth_token_ttl_s)
        self.limiter = RateLimiter(config.requests_per_10s, config.search_requests_per_second,
                                   config.daily_limit, config.retry_after)
        self.faults = FaultInjector(config.faults, seed=config.seed)
        self.stats: dict[str, Any] = {"requests": 0, "by_status": {}, "rate_limited": 0, "by_route": {}}
        self._jitter = random.Random(config.seed)

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change settings while serving (latency, budgets, faults, retry_after)."""
        for key, value in changes.items():
            if key == "faults":
                value = value if isinstance(value, FaultConfig) else FaultConfig(**value)
                self.faults.config = value
            elif not hasattr(self.config, key):
                raise ValueError(f"unknown simulator setting {key!r}")
            setattr(self.config, key, value)
        self.limiter.requests_per_10s = self.config.requests_per_10s
        self.limiter.search_per_second = self.config.search_requests_per_second
        self.limiter.daily_limit = self.config.daily_limit
        self.limiter.retry_after = self.config.retry_after
        self.auth.token_ttl_s = self.config.oauth_token_ttl_s
        return self.config

    def reset(self) -> None:
        self.store.reset(self.config.seed, self.config.seed_appointments)
        self.stats = {"requests": 0, "by_status": {}, "rate_limited": 0, "by_route": {}}
        self.faults.injected.clear()

    def record(self, route: str, status: int) -> None:
        stats = self.stats
        stats["requests"] += 1
        stats["by_status"][str(status)] = stats["by_status"].get(str(status), 0) + 1
        stats["by_route"][route] = stats["by_route"].get(route, 0) + 1
        if status == 429:
            stats["rate_limited"] += 1

    def snapshot(self) -> dict:
        return {**self.stats, "faults_injected": dict(self.faults.injected), "oauth_tokens_issued": self.auth.issued}

    def latency_s(self) -> float:
        jitter = self._jitter.random() * self.config.latency_jitter_ms if self.config.latency_jitter_ms else 0.0
        return (self.config.latency_ms + jitter) / 1000.0


# ---------------------------------------------------------------------------------------------
# helpers


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    content = b"" if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status_code=status, headers=headers,
                    media_type=None if body is None else "application/json;charset=utf-8")


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _query_list(request: Request, name: str) -> list[str] | None:
    """HubSpot accepts `a,b` and repeated parameters alike."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    return [part for value in values for part in value.split(",") if part]


def _flag(value: str | None) -> bool:
    return (value or "").lower() == "true"


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise validation(f"Invalid input JSON on line {getattr(exc, 'lineno', 1)}, column "
                         f"{getattr(exc, 'colno', 1)}: {getattr(exc, 'msg', 'malformed')}") from None


def _object_type(name: str) -> str:
    kind = OBJECT_TYPES.get(name.lower())
    if kind is None:
        raise HubSpotHTTPError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")
    return kind


def _parse_id(value: Any) -> int | None:
    text = str(value).strip()
    return int(text) if text.isdigit() else None


def render(record: Record, properties: list[str] | None = None, history: list[str] | None = None,
           associations: list[str] | None = None, store: Store | None = None) -> dict:
    """A record in HubSpot's `SimplePublicObjectWithAssociations` shape."""
    names = list(DEFAULT_PROPERTIES) + [name for name in properties or () if name not in DEFAULT_PROPERTIES]
    values = {name: value for name in names if (value := record.value(name)) is not None}
    body: dict[str, Any] = {
        "id": str(record.id),
        "properties": values,
        "createdAt": iso_ms(record.created_ms),
        "updatedAt": iso_ms(record.updated_ms),
        "archived": record.archived,
    }
    if record.archived:
        body["archivedAt"] = iso_ms(record.archived_ms or record.updated_ms)
    if history:
        body["propertiesWithHistory"] = {name: record.history_of(name) for name in history}
    if associations and store is not None:
        linked = store.associations_of(record.object_type, record.id)
        result = {}
        for to_name in associations:
            to_kind = OBJECT_TYPES.get(to_name.lower())
            targets = linked.get(to_kind or "", {})
            if targets:
                singular = {APPOINTMENTS: "appointment", CONTACTS: "contact", COMPANIES: "company", DEALS: "deal"}
                kind_label = f"{singular[record.object_type]}_to_{singular[to_kind]}"
                result[to_name] = {"results": [{"id": str(target), "type": kind_label} for target in sorted(targets)]}
        if result:
            body["associations"] = result
    return body


class RecordProblem(Exception):
    """One input of a batch that cannot be applied; becomes an entry of `errors`."""

    def __init__(self, error: HubSpotHTTPError) -> None:
        super().__init__(error.message)
        self.error = error


def validate_properties(kind: str, properties: Any, *, creating: bool) -> dict[str, str]:
    """HubSpot's checks on a `properties` map; raises HubSpotHTTPError with every problem found."""
    if not isinstance(properties, dict):
        raise validation("properties must be an object of property name to string value")
    if kind != APPOINTMENTS:
        known = set(_PROPERTIES_OF[kind])
        unknown = [name for name in properties if name not in known]
        if unknown:
            raise _property_errors([{"name": n, "error": "PROPERTY_DOESNT_EXIST",
                                     "message": f'Property "{n}" does not exist'} for n in unknown])
        return {name: "" if value is None else str(value) for name, value in properties.items()}
    problems: list[dict] = []
    clean: dict[str, str] = {}
    for name, value in properties.items():
        spec = APPOINTMENT_PROPERTIES.get(name)
        if spec is None:
            problems.append({"name": name, "error": "PROPERTY_DOESNT_EXIST", "message": f'Property "{name}" does not exist'})
        elif spec.read_only:
            problems.append({"name": name, "error": "READ_ONLY_VALUE",
                             "message": f'"{name}" is a read only property; its value cannot be set.'})
        else:
            try:
                clean[name] = normalize(spec, value)
            except InvalidPropertyValue as exc:
                problems.append({"name": name, "error": exc.code, "message": exc.message})
    if creating and not clean.get("hs_appointment_name"):
        problems.append({"name": "hs_appointment_name", "error": "REQUIRED_PROPERTY",
                         "message": 'Property "hs_appointment_name" is required to create an appointment'})
    if problems:
        raise _property_errors(problems)
    return clean


def _property_errors(problems: list[dict]) -> HubSpotHTTPError:
    detail = [{"isValid": False, "message": p["message"], "error": p["error"], "name": p["name"],
               "localizedErrorMessage": p["message"]} for p in problems]
    return validation(
        f"Property values were not valid: {json.dumps(detail, separators=(',', ':'))}",
        errors=[{"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}} for p in problems],
    )


def _conflict(value: str, holder: Record) -> HubSpotHTTPError:
    return HubSpotHTTPError(
        409, "CONFLICT",
        f'A appointment with {UNIQUE_PROPERTY} "{value}" already exists. Existing ID: {holder.id}',
        context={UNIQUE_PROPERTY: [value], "id": [str(holder.id)]},
    )


def _batch_body(results: list[dict], errors: list[dict], started: str) -> dict:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "requestedAt": started,
                            "startedAt": started, "completedAt": _now_iso()}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    return body


def _batch_error(error: HubSpotHTTPError, context: dict[str, list[str]]) -> dict:
    """A `StandardError` item of a multi-status answer."""
    merged = {**(error.context or {}), **context}
    return {"status": "error", "category": error.category, "message": error.message,
            "context": merged, "errors": error.errors or [], "links": {}}


def _inputs(body: Any) -> list:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise validation("Request body must be an object with an `inputs` array")
    inputs = body["inputs"]
    if len(inputs) > BATCH_LIMIT:
        raise validation(f"Batch input size {len(inputs)} exceeds the limit of {BATCH_LIMIT} inputs per request",
                         context={"limit": [str(BATCH_LIMIT)], "size": [str(len(inputs))]})
    return inputs


def _reject_duplicate_ids(inputs: list) -> None:
    seen: set[str] = set()
    duplicates = []
    for item in inputs:
        key = str(item.get("id")) if isinstance(item, dict) else str(item)
        if key in seen:
            duplicates.append(key)
        seen.add(key)
    if duplicates:
        raise validation("Duplicate IDs found in batch input: " + ", ".join(sorted(set(duplicates))),
                         context={"ids": sorted(set(duplicates))})


# ---------------------------------------------------------------------------------------------
# the application


class SimulatorApp:
    """Routes bound to one `SimulatorState`."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self.store = state.store

    # -- request plumbing ------------------------------------------------------------------------
    def api(self, handler: Callable[..., Any], *, scope: str | Callable[[Request], str], search: bool = False
            ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            state = self.state
            correlation = new_correlation_id()
            headers = {"X-HubSpot-Correlation-Id": correlation}
            route = f"{request.method} {request.scope['route'].path}" if "route" in request.scope else request.url.path
            try:
                caller = state.auth.authenticate(request.headers.get("authorization"))
                require_scope(caller, scope(request) if callable(scope) else scope)
                headers.update(state.limiter.check(caller.token, search, caller.oauth))
                delay = state.latency_s()
                if delay:
                    await asyncio.sleep(delay)
                status, body = handler(request, await _body(request) if request.method in ("POST", "PUT", "PATCH") else None)
            except HubSpotHTTPError as error:
                headers.update(error.headers)
                state.record(route, error.status)
                return _json(error.status, error.to_body(correlation), headers)
            state.record(route, status)
            return _json(status, body, headers)

        return endpoint

    # -- objects ---------------------------------------------------------------------------------
    def list_objects(self, request: Request, _: Any) -> tuple[int, Any]:
        kind = _object_type(request.path_params["object_type"])
        history = _query_list(request, "propertiesWithHistory")
        maximum = 50 if history else 100
        try:
            limit = min(max(int(request.query_params.get("limit", 10)), 1), maximum)
        except ValueError:
            raise validation("limit must be an integer") from None
        after = request.query_params.get("after")
        after_id = _parse_id(after) if after else 0
        if after and after_id is None:
            raise validation(f"Invalid after cursor {after!r}")
        archived = _flag(request.query_params.get("archived"))
        properties = _query_list(request, "properties")
        associations = _query_list(request, "associations")
        results: list[dict] = []
        next_id = None
        with self.store.lock:
            for record in self.store.iter_records(kind, after_id or 0):
                if record.archived != archived:
                    continue
                if len(results) == limit:
                    next_id = record.id
                    break
                results.append(render(record, properties, history, associations, self.store))
        body: dict[str, Any] = {"results": results}
        if next_id is not None:
            query = [(key, value) for key, value in request.query_params.multi_items() if key != "after"]
            query.append(("after", str(next_id)))
            body["paging"] = {"next": {"after": str(next_id), "link": f"{request.url.scheme}://{request.url.netloc}"
                                       f"{request.url.path}?{urlencode(query)}"}}
        return 200, body

    def _lookup(self, kind: str, raw_id: str, id_property: str | None) -> Record | None:
        if id_property and id_property not in ("hs_object_id",):
            if kind == APPOINTMENTS and id_property != UNIQUE_PROPERTY:
                raise validation(f"{id_property} is not a unique property", context={"idProperty": [id_property]})
            return self.store.find_by_property(kind, id_property, raw_id)
        record_id = _parse_id(raw_id)
        return None if record_id is None else self.store.get(kind, record_id)

    def get_object(self, request: Request, _: Any) -> tuple[int, Any]:
        kind = _object_type(request.path_params["object_type"])
        raw_id = request.path_params["object_id"]
        archived = _flag(request.query_params.get("archived"))
        with self.store.lock:
            record = self._lookup(kind, raw_id, request.query_params.get("idProperty"))
            if record is None or (record.archived and not archived):
                raise not_found(raw_id)
            return 200, render(record, _query_list(request, "properties"), _query_list(request, "propertiesWithHistory"),
                               _query_list(request, "associations"), self.store)

    def _associations_for_create(self, associations: Any) -> list[tuple[str, int, set[int]]]:
        """Check `associations` of a create; returns (to type, to id, type ids)."""
        if associations in (None, []):
            return []
        if not isinstance(associations, list):
            raise validation("associations must be an array")
        by_type_id = {type_id: to for (source, to), labels in ASSOCIATION_LABELS.items() if source == APPOINTMENTS
                      for _, type_id, _ in labels}
        links = []
        for item in associations:
            to_id = _parse_id((item.get("to") or {}).get("id")) if isinstance(item, dict) else None
            types = item.get("types") if isinstance(item, dict) else None
            if to_id is None or not types:
                raise validation("Each association needs `to.id` and at least one of `types`")
            type_ids = set()
            for spec in types:
                type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
                if type_id not in by_type_id:
                    raise validation(f"{type_id} is not a valid association type id for appointments",
                                     context={"associationTypeId": [str(type_id)]})
                type_ids.add(type_id)
            to_kinds = {by_type_id[t] for t in type_ids}
            for to_kind in to_kinds:
                target = self.store.get(to_kind, to_id)
                if target is None or target.archived:
                    raise HubSpotHTTPError(
                        400, "VALIDATION_ERROR",
                        f"One or more associations are invalid: no {to_kind[:-1]} with id {to_id} exists",
                        context={"toObjectId": [str(to_id)], "toObjectType": [to_kind]})
                links.append((to_kind, to_id, {t for t in type_ids if by_type_id[t] == to_kind}))
        return links

    def _create_one(self, kind: str, item: Any) -> Record:
        """Validate and create (or restore from the recycling bin) one record; raises HubSpotHTTPError."""
        if not isinstance(item, dict):
            raise validation("Each input must be an object with `properties`")
        properties = validate_properties(kind, item.get("properties"), creating=True)
        links = self._associations_for_create(item.get("associations")) if kind == APPOINTMENTS else []
        record = None
        key = properties.get(UNIQUE_PROPERTY) if kind == APPOINTMENTS else None
        if key:
            holder = self.store.find_unique(key)
            if holder is not None and not holder.archived:
                raise _conflict(key, holder)
            if holder is not None:
                # Model choice: re-creating an archived record's unique value restores it (recycling bin).
                record = self.store.update(self.store.restore(holder), properties)
        if record is None:
            record = self.store.create(kind, properties)
        for to_kind, to_id, type_ids in links:
            self.store.associate(kind, record.id, to_kind, to_id, type_ids)
        return record

    def create_object(self, request: Request, body: Any) -> tuple[int, Any]:
        kind = _object_type(request.path_params["object_type"])
        with self.store.lock:
            record = self._create_one(kind, body)
            return 201, render(record, list(body.get("properties") or {}), store=self.store)

    def update_object(self, request: Request, body: Any) -> tuple[int, Any]:
        kind = _object_type(request.path_params["object_type"])
        raw_id = request.path_params["object_id"]
        with self.store.lock:
            record = self._lookup(kind, raw_id, request.query_params.get("idProperty"))
            if record is None or record.archived:
                raise not_found(raw_id)
            properties = validate_properties(kind, (body or {}).get("properties"), creating=False)
            self._check_unique_update(record, properties)
            self.store.update(record, properties)
            return 200, render(record, list(properties))

    def _check_unique_update(self, record: Record, properties: dict[str, str]) -> None:
        key = properties.get(UNIQUE_PROPERTY)
        if key:
            holder = self.store.find_unique(key)
            if holder is not None and holder.id != record.id:
                raise _conflict(key, holder)

    def archive_object(self, request: Request, _: Any) -> tuple[int, Any]:
        kind = _object_type(request.path_params["object_type"])
        record_id = _parse_id(request.path_params["object_id"])
        with self.store.lock:
            record = self.store.get(kind, record_id) if record_id is not None else None
            if record is not None:
                self.store.archive(record)
        return 204, None

    def gdpr_delete(self, request: Request, body: Any) -> tuple[int, Any]:
        kind = _object_type(request.path_params["object_type"])
        object_id = str((body or {}).get("objectId", ""))
        with self.store.lock:
            record = self._lookup(kind, object_id, (body or {}).get("idProperty"))
            if record is None:
                raise not_found(object_id)
            self.store.purge(record)
        return 204, None

    # -- batches ---------------------------------------------------------------------------------
    def batch(self, request: Request, body: Any) -> tuple[int, Any]:
        kind = _object_type(request.path_params["object_type"])
        operation = request.path_params["operation"]
        handler = {"create": self._batch_create, "read": self._batch_read, "update": self._batch_update,
                   "upsert": self._batch_upsert, "archive": self._batch_archive}.get(operation)
        if handler is None:
            raise HubSpotHTTPError(404, "OBJECT_NOT_FOUND", f"Unknown batch operation {operation}")
        inputs = _inputs(body)
        with self.store.lock:
            return handler(kind, inputs, body, request)

    def _batch_create(self, kind: str, inputs: list, body: dict, request: Request) -> tuple[int, Any]:
        started = _now_iso()
        traces = [item.get("objectWriteTraceId") if isinstance(item, dict) else None for item in inputs]
        multi_status = all(traces) and len(set(traces)) == len(traces)
        if not multi_status:
            # Without unique trace ids HubSpot validates the whole batch first: one bad input fails it all.
            for item in inputs:
                if not isinstance(item, dict):
                    raise validation("Each input must be an object with `properties`")
                properties = validate_properties(kind, item.get("properties"), creating=True)
                if kind == APPOINTMENTS:
                    self._associations_for_create(item.get("associations"))
                    key = properties.get(UNIQUE_PROPERTY)
                    holder = self.store.find_unique(key) if key else None
                    if holder is not None and not holder.archived:
                        raise _conflict(key, holder)
            keys = [(item.get("properties") or {}).get(UNIQUE_PROPERTY) for item in inputs]
            keys = [key for key in keys if key]
            if len(keys) != len(set(keys)):
                raise validation("Duplicate unique property values in batch input", context={UNIQUE_PROPERTY: keys})
        results, errors = [], []
        for item, trace in zip(inputs, traces):
            try:
                record = self._create_one(kind, item)
            except HubSpotHTTPError as error:
                errors.append(_batch_error(error, {"objectWriteTraceId": [str(trace)]}))
                continue
            rendered = render(record, list((item.get("properties") or {})))
            if trace:
                rendered["objectWriteTraceId"] = trace
            results.append(rendered)
        return (207 if errors else 201), _batch_body(results, errors, started)

    def _batch_read(self, kind: str, inputs: list, body: dict, request: Request) -> tuple[int, Any]:
        started = _now_iso()
        _reject_duplicate_ids(inputs)
        archived = _flag(request.query_params.get("archived"))
        id_property = body.get("idProperty")
        results, missing = [], []
        for item in inputs:
            raw = str(item.get("id", "")) if isinstance(item, dict) else ""
            record = self._lookup(kind, raw, id_property)
            if record is None or record.archived != archived:
                missing.append(raw)
                continue
            results.append(render(record, body.get("properties"), body.get("propertiesWithHistory")))
        errors = []
        if missing:
            errors.append(_batch_error(HubSpotHTTPError(404, "OBJECT_NOT_FOUND", "Could not get some "
                          f"{kind} objects, they may be deleted or not exist. Check that ids are valid."), {"ids": missing}))
        return (207 if errors else 200), _batch_body(results, errors, started)

    def _batch_update(self, kind: str, inputs: list, body: dict, request: Request) -> tuple[int, Any]:
        started = _now_iso()
        _reject_duplicate_ids(inputs)
        results, errors, missing = [], [], []
        for item in inputs:
            raw = str(item.get("id", "")) if isinstance(item, dict) else ""
            record = self._lookup(kind, raw, item.get("idProperty") if isinstance(item, dict) else None)
            if record is None or record.archived:
                missing.append(raw)
                continue
            try:
                properties = validate_properties(kind, item.get("properties"), creating=False)
                self._check_unique_update(record, properties)
            except HubSpotHTTPError as error:
                errors.append(_batch_error(error, {"ids": [raw]}))
                continue
            self.store.update(record, properties)
            results.append(render(record, list(properties)))
        if missing:
            errors.append(_batch_error(HubSpotHTTPError(404, "OBJECT_NOT_FOUND", "Could not update some "
                          f"{kind} objects, they may be deleted or not exist."), {"ids": missing}))
        return (207 if errors else 200), _batch_body(results, errors, started)

    def _batch_upsert(self, kind: str, inputs: list, body: dict, request: Request) -> tuple[int, Any]:
        started = _now_iso()
        _reject_duplicate_ids(inputs)
        results, errors = [], []
        for item in inputs:
            raw = str(item.get("id", "")) if isinstance(item, dict) else ""
            id_property = (item.get("idProperty") if isinstance(item, dict) else None) or request.query_params.get("idProperty")
            if id_property and (kind != APPOINTMENTS or id_property != UNIQUE_PROPERTY) and id_property != "hs_object_id":
                raise validation(f"Property {id_property} is not a unique property and cannot be used as idProperty",
                                 context={"idProperty": [id_property]})
            try:
                properties = validate_properties(kind, item.get("properties"), creating=False)
                if id_property == UNIQUE_PROPERTY:
                    properties[UNIQUE_PROPERTY] = raw
                record = self._lookup(kind, raw, id_property)
                if record is not None and not record.archived:
                    self._check_unique_update(record, properties)
                    self.store.update(record, properties)
                    created = False
                elif record is not None:
                    record = self.store.update(self.store.restore(record), properties)
                    created = False
                elif id_property in (None, "hs_object_id"):
                    raise not_found(raw)
                else:
                    record = self._create_one(kind, {"properties": properties})
                    created = True
            except HubSpotHTTPError as error:
                errors.append(_batch_error(error, {"ids": [raw]}))
                continue
            rendered = render(record, list(properties))
            rendered["new"] = created
            results.append(rendered)
        return (207 if errors else 200), _batch_body(results, errors, started)

    def _batch_archive(self, kind: str, inputs: list, body: dict, request: Request) -> tuple[int, Any]:
        for item in inputs:
            record_id = _parse_id(item.get("id")) if isinstance(item, dict) else None
            record = self.store.get(kind, record_id) if record_id is not None else None
            if record is not None:
                self.store.archive(record)
        return 204, None

    # -- search ----------------------------------------------------------------------------------
    def search(self, request: Request, body: Any) -> tuple[int, Any]:
        kind = _object_type(request.path_params["object_type"])
        body = body if isinstance(body, dict) else {}
        groups = body.get("filterGroups") or []
        if body.get("filters"):
            groups = [*groups, {"filters": body["filters"]}]
        if len(groups) > 5 or any(len(g.get("filters", [])) > 6 for g in groups) or \
                sum(len(g.get("filters", [])) for g in groups) > 18:
            raise validation("Too many filter groups or filters: at most 5 groups of 6 filters, 18 in total")
        limit = int(body.get("limit") or 10)
        after = int(body.get("after") or 0)
        if limit > SEARCH_LIMIT or limit < 1:
            raise validation(f"limit must be between 1 and {SEARCH_LIMIT}", context={"limit": [str(limit)]})
        if after + limit > SEARCH_CAP:
            raise validation(f"Search results are limited to {SEARCH_CAP} per query; after={after} and "
                             f"limit={limit} page beyond it. Narrow the query.", context={"after": [str(after)]})
        sorts = body.get("sorts") or []
        with self.store.lock:
            matches = [r for r in self.store.iter_records(kind) if not r.archived and _matches(r, groups, kind)]
        if sorts:
            sort = sorts[0]
            name = sort.get("propertyName") if isinstance(sort, dict) else str(sort).lstrip("-")
            descending = (sort.get("direction", "ASCENDING") == "DESCENDING") if isinstance(sort, dict) \
                else str(sort).startswith("-")
            matches.sort(key=lambda r: (_sort_key(r, name, kind), r.id), reverse=descending)
        page = matches[after:after + limit]
        result: dict[str, Any] = {"total": len(matches),
                                  "results": [render(r, body.get("properties")) for r in page]}
        if after + limit < len(matches):
            result["paging"] = {"next": {"after": str(after + limit)}}
        return 200, result

    # -- associations ----------------------------------------------------------------------------
    def _pair(self, kind: str, object_id: str, to_name: str, to_id: str) -> tuple[Record, str, Record]:
        to_kind = _object_type(to_name)
        record = self.store.get(kind, _parse_id(object_id) or -1)
        if record is None or record.archived:
            raise not_found(object_id)
        target = self.store.get(to_kind, _parse_id(to_id) or -1)
        if target is None or target.archived:
            raise not_found(to_id)
        return record, to_kind, target

    def _valid_types(self, kind: str, to_kind: str, type_ids: list[Any]) -> set[int]:
        allowed = {type_id for _, type_id, _ in ASSOCIATION_LABELS.get((kind, to_kind), [])}
        bad = [str(t) for t in type_ids if t not in allowed]
        if bad or not type_ids:
            raise validation(f"association type ids {bad or '[]'} are not valid from {kind} to {to_kind}; "
                             f"valid: {sorted(allowed)}", context={"associationTypeId": bad})
        return {int(t) for t in type_ids}

    def associate_typed(self, request: Request, _: Any) -> tuple[int, Any]:
        """The guide's form: PUT .../{id}/associations/{toObjectType}/{toObjectId}/{associationTypeId}."""
        kind = _object_type(request.path_params["object_type"])
        params = request.path_params
        if params["to_type"] == "default":  # PUT .../associations/default/{toObjectType}/{toObjectId}
            return self._associate_default(kind, params["object_id"], params["to_id"], params["type_id"])
        type_id = _parse_id(params["type_id"])
        with self.store.lock:
            record, to_kind, target = self._pair(kind, params["object_id"], params["to_type"], params["to_id"])
            self.store.associate(kind, record.id, to_kind, target.id, self._valid_types(kind, to_kind, [type_id]))
            return 200, render(record, associations=[params["to_type"]], store=self.store)

    def _associate_default(self, kind: str, object_id: str, to_name: str, to_id: str) -> tuple[int, Any]:
        started = _now_iso()
        with self.store.lock:
            record, to_kind, target = self._pair(kind, object_id, to_name, to_id)
            default = next(t for c, t, label in ASSOCIATION_LABELS[(kind, to_kind)] if label is None)
            self.store.associate(kind, record.id, to_kind, target.id, {default})
        spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": default}
        return 200, _batch_body([{"from": {"id": str(record.id)}, "to": {"id": str(target.id)},
                                  "associationSpec": spec}], [], started)

    def associate_labelled(self, request: Request, body: Any) -> tuple[int, Any]:
        """The 2026-03 form: PUT .../{id}/associations/{toObjectType}/{toObjectId} with AssociationSpec[]."""
        kind = _object_type(request.path_params["object_type"])
        params = request.path_params
        if not isinstance(body, list):
            raise validation("Body must be an array of {associationCategory, associationTypeId}")
        with self.store.lock:
            record, to_kind, target = self._pair(kind, params["object_id"], params["to_type"], params["to_id"])
            type_ids = self._valid_types(kind, to_kind, [spec.get("associationTypeId") for spec in body if isinstance(spec, dict)])
            self.store.associate(kind, record.id, to_kind, target.id, type_ids)
            return 201, self._labels_between(kind, record.id, to_kind, target.id)

    def _labels_between(self, kind: str, record_id: int, to_kind: str, to_id: int) -> dict:
        types = self.store.associations_of(kind, record_id).get(to_kind, {}).get(to_id, set())
        labels = [label for _, type_id, label in ASSOCIATION_LABELS.get((kind, to_kind), []) if type_id in types and label]
        return {"fromObjectTypeId": TYPE_IDS[kind], "fromObjectId": record_id, "toObjectTypeId": TYPE_IDS[to_kind],
                "toObjectId": to_id, "labels": labels}

    def dissociate(self, request: Request, _: Any) -> tuple[int, Any]:
        kind = _object_type(request.path_params["object_type"])
        params = request.path_params
        with self.store.lock:
            record, to_kind, target = self._pair(kind, params["object_id"], params["to_type"], params["to_id"])
            self.store.dissociate(kind, record.id, to_kind, target.id)
        return 204, None

    def list_associations(self, request: Request, _: Any) -> tuple[int, Any]:
        kind = _object_type(request.path_params["object_type"])
        to_kind = _object_type(request.path_params["to_type"])
        with self.store.lock:
            record = self.store.get(kind, _parse_id(request.path_params["object_id"]) or -1)
            if record is None or record.archived:
                raise not_found(request.path_params["object_id"])
            targets = self.store.associations_of(kind, record.id).get(to_kind, {})
            labels = ASSOCIATION_LABELS.get((kind, to_kind), [])
            results = [{"toObjectId": target, "associationTypes": [
                {"category": c, "typeId": t, "label": label} for c, t, label in labels if t in types]}
                for target, types in sorted(targets.items())]
        return 200, {"results": results}

    def labels(self, request: Request, _: Any) -> tuple[int, Any]:
        kind = _object_type(request.path_params["from_type"])
        to_kind = _object_type(request.path_params["to_type"])
        results = []
        for category, type_id, label in ASSOCIATION_LABELS.get((kind, to_kind), []):
            item: dict[str, Any] = {"category": category, "typeId": type_id}
            if label:
                item["label"] = label
            results.append(item)
        return 200, {"results": results}

    def association_batch(self, request: Request, body: Any) -> tuple[int, Any]:
        kind = _object_type(request.path_params["from_type"])
        to_kind = _object_type(request.path_params["to_type"])
        operation = request.path_params["operation"]
        inputs = _inputs(body)
        started = _now_iso()
        results, errors = [], []
        with self.store.lock:
            for item in inputs:
                if operation == "read":  # inputs are {id}; the others {from: {id}, to: {id}}
                    from_id = str((item or {}).get("id", ""))
                    record = self.store.get(kind, _parse_id(from_id) or -1)
                    if record is None or record.archived:
                        errors.append(_batch_error(not_found(from_id), {"fromObjectId": [from_id]}))
                        continue
                    targets = self.store.associations_of(kind, record.id).get(to_kind, {})
                    labels = ASSOCIATION_LABELS.get((kind, to_kind), [])
                    results.append({"from": {"id": from_id}, "to": [
                        {"toObjectId": t, "associationTypes": [{"category": c, "typeId": tid, "label": lb}
                                                               for c, tid, lb in labels if tid in types]}
                        for t, types in sorted(targets.items())]})
                    continue
                from_id = str(((item or {}).get("from") or {}).get("id", ""))
                to_id = str(((item or {}).get("to") or {}).get("id", ""))
                context = {"fromObjectId": [from_id], "toObjectId": [to_id]}
                try:
                    record, _, target = self._pair(kind, from_id, to_kind, to_id)
                    if operation == "create":
                        type_ids = self._valid_types(kind, to_kind, [s.get("associationTypeId") for s in item.get("types") or []])
                    elif operation == "associate/default":
                        type_ids = {next(t for _, t, label in ASSOCIATION_LABELS[(kind, to_kind)] if label is None)}
                    else:
                        raise HubSpotHTTPError(404, "OBJECT_NOT_FOUND", f"Unknown association batch operation {operation}")
                except HubSpotHTTPError as error:
                    errors.append(_batch_error(error, context))
                    continue
                self.store.associate(kind, record.id, to_kind, target.id, type_ids)
                if operation == "create":
                    results.append(self._labels_between(kind, record.id, to_kind, target.id))
                else:
                    results.append({"from": {"id": from_id}, "to": {"id": to_id}, "associationSpec": {
                        "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": next(iter(type_ids))}})
        success = 201 if operation == "create" else 200
        return (207 if errors else success), _batch_body(results, errors, started)

    # -- properties ------------------------------------------------------------------------------
    def list_properties(self, request: Request, _: Any) -> tuple[int, Any]:
        kind = _object_type(request.path_params["object_type"])
        if kind != APPOINTMENTS:
            return 200, {"results": [{"name": n, "label": n, "type": "string", "fieldType": "text", "groupName": "info",
                                      "description": "", "options": []} for n in _PROPERTIES_OF[kind]]}
        return 200, {"results": [spec.as_api() for spec in APPOINTMENT_PROPERTIES.values()]}

    def get_property(self, request: Request, _: Any) -> tuple[int, Any]:
        _object_type(request.path_params["object_type"])
        spec = APPOINTMENT_PROPERTIES.get(request.path_params["name"])
        if spec is None:
            raise HubSpotHTTPError(404, "OBJECT_NOT_FOUND", f"Unable to find property {request.path_params['name']}")
        return 200, spec.as_api()

    # -- OAuth -----------------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        correlation = new_correlation_id()
        version = request.path_params["version"]
        if version not in ("v1", "v3", "2026-03"):
            return _json(404, error_body("OBJECT_NOT_FOUND", "Unknown OAuth version", correlation))
        form = dict((await request.form()).items())
        if version == "v1":  # v1 also took its parameters in the query string
            form = {**dict(request.query_params), **form}
        try:
            body = self.state.auth.refresh({k: str(v) for k, v in form.items()})
        except HubSpotHTTPError as error:
            self.state.record("POST /oauth/token", error.status)
            return _json(error.status, error.to_body(correlation))
        self.state.record("POST /oauth/token", 200)
        return _json(200, body)

    # -- admin -----------------------------------------------------------------------------------
    async def admin(self, request: Request) -> Response:
        action = request.path_params["action"]
        state = self.state
        if action == "health":
            return _json(200, {"status": "ok"})
        if action == "stats":
            return _json(200, state.snapshot())
        if action == "config":
            if request.method == "PATCH":
                state.configure(**json.loads(await request.body() or b"{}"))
            return _json(200, json.loads(state.config.to_json()))
        if action == "reset":
            state.reset()
            return _json(200, {"status": "reset"})
        if action == "state":
            with state.store.lock:
                body: dict[str, Any] = {"counts": state.store.counts(), "origin": iso_ms(state.store.origin_ms)}
                if "appointments" in request.query_params.get("include", ""):
                    body["appointments"] = [
                        {**render(r, list(APPOINTMENT_PROPERTIES)),
                         "associations": {k: sorted(v) for k, v in state.store.associations_of(APPOINTMENTS, r.id).items() if v}}
                        for r in state.store.iter_records(APPOINTMENTS)]
            return _json(200, body)
        if action == "oauth/expire":
            return _json(200, {"expired": state.auth.expire_all()})
        if action == "oauth/revoke":
            state.auth.revoke_refresh_tokens()
            return _json(200, {"status": "revoked"})
        if action == "faults/burst-429":
            state.faults.burst_429 += int(json.loads(await request.body() or b"{}").get("count", 1))
            return _json(200, {"burst_429": state.faults.burst_429})
        return _json(404, {"message": f"unknown admin action {action}"})

    # -- routing table ---------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        object_routes = [
            ("", self.list_objects, ["GET"], READ_SCOPE, False),
            ("", self.create_object, ["POST"], WRITE_SCOPE, False),
            ("/search", self.search, ["POST"], READ_SCOPE, True),
            ("/gdpr-delete", self.gdpr_delete, ["POST"], WRITE_SCOPE, False),
            ("/batch/{operation}", self.batch, ["POST"], _batch_scope, False),
            ("/{object_id}", self.get_object, ["GET"], READ_SCOPE, False),
            ("/{object_id}", self.update_object, ["PATCH"], WRITE_SCOPE, False),
            ("/{object_id}", self.archive_object, ["DELETE"], WRITE_SCOPE, False),
            ("/{object_id}/associations/{to_type}", self.list_associations, ["GET"], READ_SCOPE, False),
            ("/{object_id}/associations/{to_type}/{to_id}", self.associate_labelled, ["PUT"], WRITE_SCOPE, False),
            ("/{object_id}/associations/{to_type}/{to_id}", self.dissociate, ["DELETE"], WRITE_SCOPE, False),
            ("/{object_id}/associations/{to_type}/{to_id}/{type_id}", self.associate_typed, ["PUT"], WRITE_SCOPE, False),
        ]
        routes: list[Route] = []
        for prefix in ("/crm/objects/{version}/{object_type}", "/crm/v3/objects/{object_type}", "/crm/v4/objects/{object_type}"):
            for suffix, handler, methods, scope, search in object_routes:
                routes.append(Route(prefix + suffix, self._versioned(self.api(handler, scope=scope, search=search)),
                                    methods=methods))
        for prefix in ("/crm/properties/{version}/{object_type}", "/crm/v3/properties/{object_type}"):
            routes.append(Route(prefix, self._versioned(self.api(self.list_properties, scope=READ_SCOPE)), methods=["GET"]))
            routes.append(Route(prefix + "/{name}", self._versioned(self.api(self.get_property, scope=READ_SCOPE)), methods=["GET"]))
        for prefix in ("/crm/associations/{version}/{from_type}/{to_type}", "/crm/v4/associations/{from_type}/{to_type}"):
            routes.append(Route(prefix + "/labels", self._versioned(self.api(self.labels, scope=READ_SCOPE)), methods=["GET"]))
            routes.append(Route(prefix + "/batch/{operation:path}", self._versioned(self.api(self.association_batch, scope=WRITE_SCOPE)),
                                methods=["POST"]))
        routes.append(Route("/oauth/{version}/token", self.token, methods=["POST"]))
        routes.append(Route("/_simulator/{action:path}", self.admin, methods=["GET", "POST", "PATCH"]))
        return routes

    @staticmethod
    def _versioned(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def check(request: Request) -> Response:
            version = request.path_params.get("version")
            if version is not None and version not in VERSIONS:
                return _json(404, error_body("OBJECT_NOT_FOUND", f"Unknown API version {version}", new_correlation_id()))
            return await endpoint(request)

        return check


def _batch_scope(request: Request) -> str:
    return READ_SCOPE if request.path_params.get("operation") == "read" else WRITE_SCOPE


def _value_for_compare(record: Record, name: str, kind: str) -> Any:
    value = record.value(name)
    if value is None:
        return None
    spec = APPOINTMENT_PROPERTIES.get(name) if kind == APPOINTMENTS else None
    if name == "hs_object_id" or (spec and spec.type == "number"):
        return float(value)
    if spec and spec.type in ("datetime", "date"):
        return to_epoch_ms(value)
    return value.lower()


def _operand(raw: Any, name: str, kind: str) -> Any:
    spec = APPOINTMENT_PROPERTIES.get(name) if kind == APPOINTMENTS else None
    text = str(raw)
    try:
        if name == "hs_object_id" or (spec and spec.type == "number"):
            return float(text)
        if spec and spec.type in ("datetime", "date"):
            return to_epoch_ms(text)
    except ValueError:
        raise validation(f"{text!r} is not a valid value for filter on {name}", context={"propertyName": [name]}) from None
    return text.lower()


def _matches(record: Record, groups: list[dict], kind: str) -> bool:
    if not groups:
        return True
    return any(all(_filter_matches(record, f, kind) for f in group.get("filters", [])) for group in groups)


def _filter_matches(record: Record, spec: dict, kind: str) -> bool:
    name = spec.get("propertyName", "")
    operator = spec.get("operator", "EQ")
    current = _value_for_compare(record, name, kind)
    if operator == "HAS_PROPERTY":
        return current is not None
    if operator == "NOT_HAS_PROPERTY":
        return current is None
    if operator in ("IN", "NOT_IN"):
        values = {_operand(v, name, kind) for v in spec.get("values") or []}
        return (current in values) if operator == "IN" else (current not in values)
    if operator == "NEQ":
        return current != _operand(spec.get("value"), name, kind)
    if current is None:
        return False
    if operator == "BETWEEN":
        return _operand(spec.get("value"), name, kind) <= current <= _operand(spec.get("highValue"), name, kind)
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(spec.get("value", "")).lower().strip("*")
        found = token in str(current)
        return found if operator == "CONTAINS_TOKEN" else not found
    operand = _operand(spec.get("value"), name, kind)
    try:
        return {"EQ": current == operand, "LT": current < operand, "LTE": current <= operand,
                "GT": current > operand, "GTE": current >= operand}[operator]
    except KeyError:
        raise validation(f"Unknown filter operator {operator}") from None
    except TypeError:
        return False


def _sort_key(record: Record, name: str, kind: str) -> tuple[int, Any]:
    value = _value_for_compare(record, name, kind)
    return (1, 0) if value is None else (0, value)


class FaultMiddleware:
    """The outermost layer: decides per request whether to break it, and how."""

    def __init__(self, app: Any, state: SimulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        raw = scope.get("raw_path") or b""
        if b"%2f" in raw.lower():
            # Like HubSpot, an escaped "/" stays inside its path segment instead of splitting it.
            scope = {**scope, "path": unquote(raw.decode("latin-1").replace("%2F", "%252F").replace("%2f", "%252F"))}
        if scope["type"] != "http" or scope["path"].startswith("/_simulator"):
            await self.app(scope, receive, send)
            return
        kind = self.state.faults.draw(scope["method"], scope["path"])
        if kind is None:
            await self.app(scope, receive, send)
            return
        route = f"FAULT {kind}"
        if kind in ("502", "503", "504", "429"):
            status = int(kind)
            if status == 429:
                body = {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                        "errorType": "RATE_LIMIT", "correlationId": new_correlation_id(),
                        "policyName": "TEN_SECONDLY_ROLLING", "groupName": "publicapi:simulator-burst"}
                headers = [(b"retry-after", b"1")] if self.state.config.retry_after else []
            else:
                body = error_body("INTERNAL_ERROR" if status != 504 else "TIMEOUT",
                                  {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}[status],
                                  new_correlation_id())
                headers = []
            self.state.record(route, status)
            await _send_raw(send, status, json.dumps(body).encode(), b"application/json;charset=utf-8", headers)
            return
        if kind == "html":
            self.state.record(route, 502)
            page = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>"
            await _send_raw(send, 502, page, b"text/html")
            return
        if kind == "reset":
            self.state.record(route, 0)
            _drop(send)
            return
        # The request is applied; what the client receives is lost, late or truncated.
        captured: list[dict] = []

        async def capture(message: dict) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        self.state.record(route, 0)
        if kind == "reset_after_apply":
            _drop(send)
            return
        if kind == "timeout":
            await asyncio.sleep(self.state.config.faults.timeout_s)
            for message in captured:
                await send(message)
            return
        start = next((m for m in captured if m["type"] == "http.response.start"), None)
        body = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        if start is None:
            _drop(send)
            return
        truncated = body[: max(1, len(body) // 2)]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(truncated)).encode()))
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        await send({"type": "http.response.body", "body": truncated})


async def _send_raw(send: Callable, status: int, body: bytes, content_type: bytes, extra: list | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _drop(send: Callable) -> None:
    """Close the TCP connection without an answer: the client sees a reset / RemoteDisconnected."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop the connection: the ASGI server does not expose its transport")
    transport.close()


def build_app(state: SimulatorState) -> Any:
    """The ASGI application: HubSpot's routes behind the fault-injection layer."""
    routes = SimulatorApp(state).routes()
    return FaultMiddleware(Starlette(routes=routes), state)
