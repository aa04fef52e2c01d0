"""The endpoint layer: one method per HubSpot Appointments endpoint, over a `HubSpotTransport`.

No Airflow here: `HubSpotAppointmentsHook` adds the connection handling on top of this class.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone
from functools import cached_property
from typing import Any
from urllib.parse import quote

from airflow_provider_appointments.api.paging import CappedOffsetPaginator, NextAfterPaginator, walk_pages
from airflow_provider_appointments.api.results import (
    BATCH_LIMIT,
    BatchResult,
    RecordOutcome,
    chunked,
    failed_outcome,
    map_answer,
)
from airflow_provider_appointments.errors import (
    HubSpotAPIError,
    HubSpotError,
    HubSpotInputError,
)
from airflow_provider_appointments.transport.http import HubSpotTransport

OBJECT_TYPE = "appointments"
SEARCH_PAGE_MAX = 200
SEARCH_RESULT_CAP = 10_000
LIST_PAGE_MAX = 100
LIST_PAGE_MAX_WITH_HISTORY = 50
# Keep the query string well under the ~8 kB many proxies (and HubSpot's 414) allow.
MAX_QUERY_CHARS = 6_000
MODIFIED = "hs_lastmodifieddate"
ON_EXISTING = ("skip", "update", "fail")
AMBIGUOUS = "AMBIGUOUS_WRITE"


def segment(value: Any) -> str:
    """One URL path segment: ids and names with `/`, `?`, `..` or spaces can never escape it."""
    text = str(value)
    if text in (".", ".."):
        text = text.replace(".", "%2E")
    return quote(text, safe="")


def to_epoch_ms(moment: datetime | int | str) -> int:
    if isinstance(moment, int):
        return moment
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def association_category(type_id: int) -> str:
    """HubSpot numbers its own association types below 1000; an account's labels come after."""
    return "HUBSPOT_DEFINED" if type_id < 1000 else "USER_DEFINED"


def _created_ms(record: dict) -> int:
    return to_epoch_ms(record.get("createdAt") or (record.get("properties") or {}).get("hs_createdate") or 0)


def _record_modified_ms(record: dict) -> int:
    value = (record.get("properties") or {}).get(MODIFIED) or record.get("updatedAt")
    return to_epoch_ms(value)


class AppointmentsClient:
    """HubSpot's Appointments endpoints. Subclasses provide `transport` (and may override `concurrency`)."""

    api_version: str = "2026-03"
    concurrency: int = 8

    @property
    def transport(self) -> HubSpotTransport:  # pragma: no cover - provided by the hook or a subclass
        raise NotImplementedError

    # -- paths ---------------------------------------------------------------------------------
    @property
    def _objects(self) -> str:
        if self.api_version == "v3":
            return f"/crm/v3/objects/{OBJECT_TYPE}"
        return f"/crm/objects/{self.api_version}/{OBJECT_TYPE}"

    def _associations(self, to_object_type: str) -> str:
        if self.api_version == "v3":
            return f"/crm/v4/associations/{OBJECT_TYPE}/{segment(to_object_type)}"
        return f"/crm/associations/{self.api_version}/{OBJECT_TYPE}/{segment(to_object_type)}"

    @property
    def _properties(self) -> str:
        if self.api_version == "v3":
            return f"/crm/v3/properties/{OBJECT_TYPE}"
        return f"/crm/properties/{self.api_version}/{OBJECT_TYPE}"

    # -- properties ----------------------------------------------------------------------------
    def get_properties(self) -> list[dict]:
        """Every appointment property definition (name, type, options, hasUniqueValue, …)."""
        return list(self.transport.request("GET", self._properties).body.get("results", []))

    @cached_property
    def property_schema(self) -> Any:
        from airflow_provider_appointments.records.properties import PropertySchema

        return PropertySchema.from_api(self.get_properties())

    def get_property_schema(self) -> Any:
        """The property definitions as a `PropertySchema` (fetched once per hook)."""
        return self.property_schema

    def create_property(self, definition: dict) -> dict:
        """Create an appointment property (needs the ``crm.schemas.appointments.write`` scope)."""
        try:
            created = self.transport.request("POST", self._properties, json_body=definition, idempotent=False).body
        except HubSpotAPIError as error:
            if error.status == 403:
                raise HubSpotError(
                    f"cannot create appointment property {definition.get('name')!r}: the token lacks the "
                    f"crm.schemas.appointments.write scope ({error.message}). Create the property in HubSpot, "
                    "or grant the scope to the private app") from None
            raise
        self.__dict__.pop("property_schema", None)  # the next schema read sees the new property
        return created

    def ensure_property(self, name: str, *, label: str | None = None, type: str = "string",  # noqa: A002
                        field_type: str = "text", group_name: str = "appointmentinformation",
                        has_unique_value: bool = False, description: str = "") -> dict:
        """The property `name`, created through the properties API when it does not exist yet.

        Raises `HubSpotInputError` when it exists with another type or without unique values where
        they are required, and `HubSpotError` naming the missing scope when it cannot be created.
        """
        try:
            existing = self.transport.request("GET", f"{self._properties}/{segment(name)}").body
        except HubSpotAPIError as error:
            if error.status != 404:
                raise
            existing = None
        if existing is None:
            return self.create_property({
                "name": name, "label": label or name, "type": type, "fieldType": field_type,
                "groupName": group_name, "hasUniqueValue": has_unique_value, "description": description})
        if existing.get("type") != type or (has_unique_value and not existing.get("hasUniqueValue")):
            raise HubSpotInputError(
                f"appointment property {name!r} exists as type {existing.get('type')!r} with hasUniqueValue="
                f"{existing.get('hasUniqueValue')}; it must be a {type!r} property"
                f"{' with unique values' if has_unique_value else ''}. Choose another name")
        return existing

    # -- single records ------------------------------------------------------------------------
    def _split_selection(self, properties: Sequence[str] | None, history: Sequence[str] | None) -> list[dict]:
        """Query parameter sets whose property lists each fit in one URL."""
        groups: list[dict] = []
        current: dict[str, list[str]] = {"properties": [], "propertiesWithHistory": []}
        size = 0
        for name_kind, names in (("properties", properties or ()), ("propertiesWithHistory", history or ())):
            for name in names:
                if size + len(name) + 1 > MAX_QUERY_CHARS and size:
                    groups.append(current)
                    current = {"properties": [], "propertiesWithHistory": []}
                    size = 0
                current[name_kind].append(name)
                size += len(name) + 1
        groups.append(current)
        return [{key: ",".join(value) for key, value in group.items() if value} for group in groups]

    def get_appointment(
        self,
        appointment_id: str,
        properties: Sequence[str] | None = None,
        properties_with_history: Sequence[str] | None = None,
        associations: Sequence[str] | None = None,
        archived: bool = False,
        id_property: str | None = None,
    ) -> dict:
        """One appointment; property selections too long for one URL are fetched in parts and merged."""
        merged: dict | None = None
        for selection in self._split_selection(properties, properties_with_history):
            params: dict[str, Any] = {**selection, "archived": str(archived).lower()}
            if associations:
                params["associations"] = ",".join(associations)
            if id_property:
                params["idProperty"] = id_property
            part = self.transport.request("GET", f"{self._objects}/{segment(appointment_id)}", params=params).body
            if merged is None:
                merged = part
            else:
                merged["properties"].update(part.get("properties") or {})
                merged.setdefault("propertiesWithHistory", {}).update(part.get("propertiesWithHistory") or {})
        assert merged is not None
        return merged

    def create_appointment(self, properties: dict[str, str], associations: list[dict] | None = None) -> dict:
        body = {"properties": properties, "associations": associations or []}
        return self.transport.request("POST", self._objects, json_body=body, idempotent=False).body

    def update_appointment(self, appointment_id: str, properties: dict[str, str], id_property: str | None = None) -> dict:
        params = {"idProperty": id_property} if id_property else None
        return self.transport.request("PATCH", f"{self._objects}/{segment(appointment_id)}", params=params,
                                      json_body={"properties": properties}).body

    def archive_appointment(self, appointment_id: str) -> None:
        self.transport.request("DELETE", f"{self._objects}/{segment(appointment_id)}")

    # -- listing and search --------------------------------------------------------------------
    def iter_appointments(
        self,
        properties: Sequence[str] | None = None,
        properties_with_history: Sequence[str] | None = None,
        associations: Sequence[str] | None = None,
        archived: bool = False,
        page_size: int = LIST_PAGE_MAX,
    ) -> Iterator[list[dict]]:
        """Every appointment, one list per page, following the ``after`` cursor to the end.

        A property selection too long for a URL is listed with the default properties and each page
        is completed with a batch read (its property list travels in the body).
        """
        maximum = LIST_PAGE_MAX_WITH_HISTORY if properties_with_history else LIST_PAGE_MAX
        limit = max(1, min(page_size, maximum))
        selections = self._split_selection(properties, properties_with_history)
        hydrate = len(selections) > 1
        params: dict[str, Any] = {"limit": limit, "archived": str(archived).lower()}
        if not hydrate:
            params.update(selections[0])
        if associations:
            params["associations"] = ",".join(associations)

        def fetch(cursor: str | None) -> dict:
            query = params if cursor is None else {**params, "after": cursor}
            return self.transport.request("GET", self._objects, params=query).body

        for page in walk_pages(fetch, NextAfterPaginator()):
            records = page.get("results", [])
            if hydrate and records:
                records = self._hydrate(records, properties, properties_with_history, archived)
            yield records

    def _hydrate(self, records: list[dict], properties: Sequence[str] | None, history: Sequence[str] | None,
                 archived: bool) -> list[dict]:
        full = {record["id"]: record for record in self.batch_read(
            [record["id"] for record in records], properties=properties, properties_with_history=history,
            archived=archived).records}
        for record in records:
            found = full.get(record["id"])
            if found:
                record["properties"] = {**record.get("properties", {}), **found.get("properties", {})}
                if found.get("propertiesWithHistory"):
                    record["propertiesWithHistory"] = found["propertiesWithHistory"]
        return records

    def iter_search(
        self,
        filter_groups: list[dict],
        sorts: list[dict] | None = None,
        properties: Sequence[str] | None = None,
        page_size: int = SEARCH_PAGE_MAX,
        query: str | None = None,
    ) -> Iterator[list[dict]]:
        """Search results page by page (at most 10,000 per query: see `iter_modified` for windows)."""
        limit = max(1, min(page_size, SEARCH_PAGE_MAX))
        body: dict[str, Any] = {"filterGroups": filter_groups, "limit": limit}
        if sorts:
            body["sorts"] = sorts
        if properties:
            body["properties"] = list(properties)
        if query:
            body["query"] = query
        paginator = CappedOffsetPaginator(limit, SEARCH_RESULT_CAP)

        def fetch(cursor: str | None) -> dict:
            payload = body if cursor is None else {**body, "after": cursor}
            return self.transport.request("POST", f"{self._objects}/search", json_body=payload, search=True).body

        for page in walk_pages(fetch, paginator):
            yield page.get("results", [])

    def iter_modified(
        self,
        modified_after: datetime | int | str | None = None,
        modified_before: datetime | int | str | None = None,
        properties: Sequence[str] | None = None,
        page_size: int = SEARCH_PAGE_MAX,
    ) -> Iterator[list[dict]]:
        """Appointments with ``modified_after <= hs_lastmodifieddate < modified_before``, each exactly once.

        Sorted by ``hs_lastmodifieddate``; when a query reaches HubSpot's 10,000-result cap it is
        restarted from the last timestamp seen (inclusive), skipping the ids already emitted at that
        timestamp, so no record is lost or repeated whatever the window holds.
        """
        lower = to_epoch_ms(modified_after) if modified_after is not None else 0
        upper = to_epoch_ms(modified_before) if modified_before is not None else None
        selection = list(dict.fromkeys([*(properties or ()), MODIFIED]))
        seen_at_lower: set[str] = set()
        while True:
            filters = [{"propertyName": MODIFIED, "operator": "GTE", "value": str(lower)}]
            if upper is not None:
                filters.append({"propertyName": MODIFIED, "operator": "LT", "value": str(upper)})
            emitted = 0
            last_ms, ids_at_last = lower, set(seen_at_lower)
            pages = self._search_pages([{"filters": filters}], [{"propertyName": MODIFIED, "direction": "ASCENDING"}],
                                       selection, page_size)
            for records in pages.pages:
                fresh = []
                for record in records:
                    modified = _record_modified_ms(record)
                    if modified == lower and record["id"] in seen_at_lower:
                        continue
                    if modified > last_ms:
                        last_ms, ids_at_last = modified, set()
                    ids_at_last.add(record["id"])
                    fresh.append(record)
                emitted += len(fresh)
                if fresh:
                    yield fresh
            if not pages.paginator.capped:
                return
            if last_ms == lower and not emitted:
                raise HubSpotError(
                    f"more than {SEARCH_RESULT_CAP} appointments share hs_lastmodifieddate {lower}; "
                    "narrow the query with more filters")
            lower, seen_at_lower = last_ms, ids_at_last

    class _Pages:
        def __init__(self, pages: Iterator[list[dict]], paginator: CappedOffsetPaginator) -> None:
            self.pages = pages
            self.paginator = paginator

    def _search_pages(self, filter_groups: list[dict], sorts: list[dict], properties: Sequence[str],
                      page_size: int) -> AppointmentsClient._Pages:
        limit = max(1, min(page_size, SEARCH_PAGE_MAX))
        paginator = CappedOffsetPaginator(limit, SEARCH_RESULT_CAP)
        body = {"filterGroups": filter_groups, "sorts": sorts, "properties": list(properties), "limit": limit}

        def fetch(cursor: str | None) -> dict:
            payload = body if cursor is None else {**body, "after": cursor}
            return self.transport.request("POST", f"{self._objects}/search", json_body=payload, search=True).body

        return self._Pages((page.get("results", []) for page in walk_pages(fetch, paginator)), paginator)

    # -- batches -------------------------------------------------------------------------------
    def _run_batches(self, operation: str, inputs: Sequence[Any], send: Callable[[list[tuple[int, Any]]], list[RecordOutcome]],
                     batch_size: int = BATCH_LIMIT) -> BatchResult:
        """Chunk `inputs`, send the chunks concurrently, and gather one outcome per input in order."""
        indexed = list(enumerate(inputs))
        chunks = [list(chunk) for chunk in chunked(indexed, batch_size)]
        result = BatchResult(operation, batches=len(chunks))
        before = self.transport.requests_sent
        if not chunks:
            return result
        workers = max(1, min(self.concurrency, len(chunks)))
        if workers == 1:
            gathered = [send(chunk) for chunk in chunks]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"hubspot-{operation}") as pool:
                gathered = list(pool.map(send, chunks))
        result.outcomes = sorted(itertools.chain.from_iterable(gathered), key=lambda outcome: outcome.index)
        result.requests = self.transport.requests_sent - before
        if len(result.outcomes) != len(inputs):  # every input must end in exactly one place
            raise HubSpotError(f"{operation}: {len(result.outcomes)} outcomes for {len(inputs)} inputs")
        return result

    def _post_batch(self, operation: str, chunk: list[tuple[int, Any]], body: dict, keys: list[str], *,
                    result_key: Callable[[dict], str | None], error_keys: tuple[str, ...],
                    new_default: bool | None = None, idempotent: bool = True,
                    created_since_ms: int | None = None) -> list[RecordOutcome]:
        keyed = [(index, key) for (index, _), key in zip(chunk, keys)]
        try:
            answer = self.transport.request("POST", f"{self._objects}/batch/{operation}", json_body=body,
                                            idempotent=idempotent)
        except HubSpotError as error:
            return [failed_outcome(index, key, error) for index, key in keyed]
        if answer.body is None:  # 204: archive
            return [RecordOutcome(index, key, True, hubspot_id=key) for index, key in keyed]
        return map_answer(keyed, answer.body.get("results", []), answer.body.get("errors", []),
                          result_key=result_key, error_keys=error_keys, new_default=new_default,
                          correlation_id=answer.headers.get("X-HubSpot-Correlation-Id"),
                          created_since_ms=created_since_ms)

    def batch_read(
        self,
        ids: Sequence[str],
        properties: Sequence[str] | None = None,
        properties_with_history: Sequence[str] | None = None,
        id_property: str | None = None,
        archived: bool = False,
    ) -> BatchResult:
        """Read appointments by id (or by a unique property); `records` holds what was found."""
        found: list[dict] = []

        def key_of(item: dict) -> str | None:
            if id_property:
                return (item.get("properties") or {}).get(id_property)
            return str(item.get("id"))

        selection = list(dict.fromkeys([*(properties or ()), *([id_property] if id_property else [])]))

        def send(chunk: list[tuple[int, Any]]) -> list[RecordOutcome]:
            keys = [str(value) for _, value in chunk]
            body: dict[str, Any] = {"inputs": [{"id": key} for key in keys], "properties": selection,
                                    "propertiesWithHistory": list(properties_with_history or [])}
            if id_property:
                body["idProperty"] = id_property
            params = {"archived": "true"} if archived else None
            keyed = [(index, key) for (index, _), key in zip(chunk, keys)]
            try:
                answer = self.transport.request("POST", f"{self._objects}/batch/read", params=params, json_body=body)
            except HubSpotError as error:
                return [failed_outcome(index, key, error) for index, key in keyed]
            results = answer.body.get("results", [])
            found.extend(results)
            return map_answer(keyed, results, answer.body.get("errors", []), result_key=key_of,
                              error_keys=("ids", "id"))

        result = self._run_batches("read", list(ids), send)
        result.records = found
        return result

    def batch_create(self, inputs: Sequence[dict], *, dedupe_property: str | None = None,
                     on_existing: str = "skip", created_since: datetime | int | None = None,
                     batch_size: int = BATCH_LIMIT) -> BatchResult:
        """Create appointments: ``inputs`` are ``{"properties": {...}, "associations": [...]}``.

        Each input gets a unique ``objectWriteTraceId`` so HubSpot answers per input (207).

        With `dedupe_property` (a unique-value property every input carries) a create is never
        written twice: a batch whose answer was lost is read back by that property and only the
        inputs not found are sent again, and an input whose value already exists resolves to the
        existing record per `on_existing`: ``"skip"`` (succeeded with its id, ``new=False``),
        ``"update"`` (its properties are written to the existing record) or ``"fail"`` (``CONFLICT``).
        Without it, an input whose answer was lost fails with category ``AMBIGUOUS_WRITE``.

        :param created_since: records created at or after this moment count as created by this
            call (``new=True``) when found by the read-back: a resumed task passes the moment its
            interrupted attempt started the window.
        """
        if on_existing not in ON_EXISTING:
            raise HubSpotInputError(f"on_existing must be one of {ON_EXISTING}, got {on_existing!r}")
        if dedupe_property:
            missing = [index for index, item in enumerate(inputs)
                       if not (item.get("properties") or {}).get(dedupe_property)]
            if missing:
                raise HubSpotInputError(
                    f"dedupe_property {dedupe_property!r} is empty in input(s) {missing[:10]}: "
                    "every create needs its unique value to be retried safely")
        call = uuid.uuid4().hex[:12]
        # A record found by the read-back was created by this call (or the interrupted attempt
        # before it) when it is younger than the call; older ones existed before.
        since = to_epoch_ms(created_since) if created_since is not None else int(time.time() * 1000)

        def send(chunk: list[tuple[int, Any]], attempt: int = 1) -> list[RecordOutcome]:
            outcomes = self._create_chunk(chunk, call, dedupe_property)
            unsure = [o for o in outcomes if not o.succeeded and o.category in (AMBIGUOUS, "CONFLICT")]
            if not dedupe_property or not unsure:
                return outcomes
            settled = {o.index: o for o in outcomes if o not in unsure}
            items = dict(chunk)
            found = self._read_by_unique(dedupe_property, [o.key or "" for o in unsure])
            resend: list[tuple[int, Any]] = []
            conflicts: list[tuple[RecordOutcome, dict]] = []
            for outcome in unsure:
                record = found.get(outcome.key or "")
                if record is None:
                    # Not created (a lost answer, or a whole batch refused for another input's
                    # conflict): sending it again cannot write twice.
                    # (A conflict on some other unique property is sent once more, then reported.)
                    retry = attempt < self.transport.retry.max_attempts if outcome.category == AMBIGUOUS else attempt == 1
                    if retry:
                        resend.append((outcome.index, items[outcome.index]))
                    else:
                        settled[outcome.index] = outcome
                elif _created_ms(record) >= since:
                    settled[outcome.index] = RecordOutcome(outcome.index, outcome.key, True,
                                                           hubspot_id=str(record["id"]), new=True)
                elif outcome.category == AMBIGUOUS or on_existing == "skip":
                    settled[outcome.index] = RecordOutcome(outcome.index, outcome.key, True, hubspot_id=str(record["id"]),
                                                           new=False, unchanged=True)
                elif on_existing == "update":
                    conflicts.append((outcome, record))
                else:
                    settled[outcome.index] = replace(outcome, hubspot_id=str(record["id"]), message=(
                        f"{dedupe_property} {outcome.key!r} already exists as appointment {record['id']} "
                        "(on_existing='fail')"))
            for outcome in self._update_existing(conflicts, items, dedupe_property):
                settled[outcome.index] = outcome
            if resend:
                for outcome in send(resend, attempt + 1):
                    settled[outcome.index] = outcome
            return [settled[index] for index, _ in chunk]

        return self._run_batches("create", list(inputs), send, batch_size)

    def _create_chunk(self, chunk: list[tuple[int, Any]], call: str, dedupe_property: str | None) -> list[RecordOutcome]:
        """Send one batch create; a lost answer is an ``AMBIGUOUS_WRITE`` outcome per input."""
        traces = [f"{call}-{index}" for index, _ in chunk]
        keys = [_input_key(item, dedupe_property, trace) for (_, item), trace in zip(chunk, traces)]
        body = {"inputs": [{**item, "objectWriteTraceId": trace} for (_, item), trace in zip(chunk, traces)]}
        try:
            answer = self.transport.request("POST", f"{self._objects}/batch/create", json_body=body, idempotent=False)
        except HubSpotError as error:
            return [failed_outcome(index, key, error) for (index, _), key in zip(chunk, keys)]
        outcomes = map_answer([(index, trace) for (index, _), trace in zip(chunk, traces)],
                              answer.body.get("results", []), answer.body.get("errors", []),
                              result_key=lambda item: item.get("objectWriteTraceId"),
                              error_keys=("objectWriteTraceId",), new_default=True,
                              correlation_id=answer.headers.get("X-HubSpot-Correlation-Id"))
        by_index = {index: key for (index, _), key in zip(chunk, keys)}
        return [replace(outcome, key=by_index[outcome.index]) for outcome in outcomes]

    def _read_by_unique(self, unique_property: str, values: Sequence[str]) -> dict[str, dict]:
        """The existing records holding these unique values (archived ones are not found)."""
        read = self.batch_read(list(values), properties=[unique_property], id_property=unique_property)
        return {str((record.get("properties") or {}).get(unique_property)): record for record in read.records}

    def _update_existing(self, conflicts: list[tuple[RecordOutcome, dict]], items: dict[int, Any],
                         unique_property: str) -> list[RecordOutcome]:
        """``on_existing="update"``: write each conflicting input's properties to the record that has its value."""
        if not conflicts:
            return []
        updates = [{"id": str(record["id"]), "properties": items[outcome.index].get("properties") or {}}
                   for outcome, record in conflicts]
        result = self.batch_update(updates)
        return [replace(updated, index=outcome.index, key=outcome.key)
                for (outcome, _), updated in zip(conflicts, result.outcomes)]

    def batch_update(self, inputs: Sequence[dict], *, id_property: str | None = None,
                     batch_size: int = BATCH_LIMIT) -> BatchResult:
        """Update appointments: ``inputs`` are ``{"id": ..., "properties": {...}}`` (id may be an `id_property` value)."""

        def send(chunk: list[tuple[int, Any]]) -> list[RecordOutcome]:
            keys = [str(item["id"]) for _, item in chunk]
            body_inputs = []
            for _, item in chunk:
                entry = {"id": str(item["id"]), "properties": item.get("properties") or {}}
                if id_property:
                    entry["idProperty"] = id_property
                body_inputs.append(entry)
            key_of = (lambda result: (result.get("properties") or {}).get(id_property)) if id_property \
                else (lambda result: str(result.get("id")))
            if id_property:
                for entry in body_inputs:
                    entry["properties"] = {**entry["properties"], id_property: entry["id"]}
            return self._post_batch("update", chunk, {"inputs": body_inputs}, keys, result_key=key_of,
                                    error_keys=("ids", "id"), new_default=False)

        return self._run_batches("update", list(inputs), send, batch_size)

    def batch_upsert(self, inputs: Sequence[dict], *, id_property: str, batch_size: int = BATCH_LIMIT,
                     created_since: datetime | int | None = None) -> BatchResult:
        """Create or update by a unique property: ``inputs`` are ``{"id": <value>, "properties": {...}}``.

        Replaying an upsert is harmless, so it is retried like any idempotent request.

        :param created_since: records created at or after this moment count as created (``new``)
            even when HubSpot answers ``new: false``: a resumed task passes the moment its
            interrupted attempt started the window, so its counts equal an uninterrupted run's.
        """
        since = to_epoch_ms(created_since) if created_since is not None else None

        def send(chunk: list[tuple[int, Any]]) -> list[RecordOutcome]:
            keys = [str(item["id"]) for _, item in chunk]
            body = {"inputs": [{"id": key, "idProperty": id_property,
                                "properties": {**(item.get("properties") or {}), id_property: key}}
                               for (_, item), key in zip(chunk, keys)]}
            return self._post_batch("upsert", chunk, body, keys,
                                    result_key=lambda result: (result.get("properties") or {}).get(id_property),
                                    error_keys=("ids", "id", id_property), created_since_ms=since)

        return self._run_batches("upsert", list(inputs), send, batch_size)

    def batch_archive(self, ids: Sequence[str], *, batch_size: int = BATCH_LIMIT) -> BatchResult:
        """Archive (move to the recycling bin); HubSpot answers 204 even for ids that do not exist."""

        def send(chunk: list[tuple[int, Any]]) -> list[RecordOutcome]:
            keys = [str(value) for _, value in chunk]
            return self._post_batch("archive", chunk, {"inputs": [{"id": key} for key in keys]}, keys,
                                    result_key=lambda result: str(result.get("id")), error_keys=("ids", "id"))

        return self._run_batches("archive", list(ids), send, batch_size)

    # -- associations --------------------------------------------------------------------------
    def get_association_labels(self, to_object_type: str, from_object_type: str = OBJECT_TYPE) -> list[dict]:
        """The association types between appointments and `to_object_type` (``label`` absent = default)."""
        path = self._associations(to_object_type) + "/labels"
        if from_object_type != OBJECT_TYPE:
            path = path.replace(f"/{OBJECT_TYPE}/", f"/{segment(from_object_type)}/", 1)
        return list(self.transport.request("GET", path).body.get("results", []))

    @cached_property
    def _default_types(self) -> dict[str, int]:
        return {}

    def default_association_type_id(self, to_object_type: str) -> int:
        """The unlabelled (default) association type id, looked up once per object type."""
        if to_object_type not in self._default_types:
            labels = self.get_association_labels(to_object_type)
            defaults = [item for item in labels if not item.get("label") and item.get("category") == "HUBSPOT_DEFINED"]
            if not defaults:
                raise HubSpotError(f"HubSpot lists no default association type from appointments to {to_object_type}")
            self._default_types[to_object_type] = int(defaults[0]["typeId"])
        return self._default_types[to_object_type]

    def read_associations(self, appointment_ids: Sequence[str], to_object_type: str) -> dict[str, list[str]]:
        """Associated record ids per appointment (batch read of associations; search cannot return them)."""
        found: dict[str, list[str]] = {}

        def send(chunk: list[tuple[int, Any]]) -> list[RecordOutcome]:
            keys = [str(value) for _, value in chunk]
            answer = self.transport.request("POST", self._associations(to_object_type) + "/batch/read",
                                            json_body={"inputs": [{"id": key} for key in keys]})
            for item in answer.body.get("results", []):
                found[str(item["from"]["id"])] = [str(target["toObjectId"]) for target in item.get("to", [])]
            return [RecordOutcome(index, key, True) for (index, _), key in zip(chunk, keys)]

        self._run_batches("read-associations", list(appointment_ids), send)
        return found

    def associate(self, appointment_id: str, to_object_type: str, to_object_id: str,
                  association_type_id: int | None = None) -> dict:
        """Associate one pair (the guide's ``.../{toObjectType}/{toObjectId}/{associationTypeId}`` PUT)."""
        type_id = association_type_id or self.default_association_type_id(to_object_type)
        path = (f"{self._objects}/{segment(appointment_id)}/associations/{segment(to_object_type)}/"
                f"{segment(to_object_id)}/{segment(type_id)}")
        return self.transport.request("PUT", path).body

    def batch_associate(self, inputs: Sequence[dict], *, to_object_type: str, batch_size: int = BATCH_LIMIT) -> BatchResult:
        """Associate many pairs: ``inputs`` are ``{"appointment_id", "to_object_id", "association_type_id"?}``."""
        default = None

        def send(chunk: list[tuple[int, Any]]) -> list[RecordOutcome]:
            keys, body_inputs = [], []
            for _, item in chunk:
                type_id = item.get("association_type_id") or default
                keys.append(f"{item['appointment_id']}->{item['to_object_id']}")
                body_inputs.append({"from": {"id": str(item["appointment_id"])}, "to": {"id": str(item["to_object_id"])},
                                    "types": [{"associationCategory": association_category(type_id),
                                               "associationTypeId": int(type_id)}]})
            keyed = [(index, key) for (index, _), key in zip(chunk, keys)]
            try:
                answer = self.transport.request("POST", self._associations(to_object_type) + "/batch/create",
                                                json_body={"inputs": body_inputs})
            except HubSpotError as error:
                return [failed_outcome(index, key, error) for index, key in keyed]
            errors = answer.body.get("errors", [])
            for error in errors:  # name each failing pair the way inputs are keyed
                context = error.get("context") or {}
                pairs = [f"{a}->{b}" for a, b in zip(context.get("fromObjectId", []), context.get("toObjectId", []))]
                error["context"] = {**context, "pair": pairs}
                error["message"] = _missing_side(error, to_object_type)
            return map_answer(keyed, answer.body.get("results", []), errors,
                              result_key=lambda item: f"{item.get('fromObjectId')}->{item.get('toObjectId')}",
                              error_keys=("pair",))

        if any(not item.get("association_type_id") for item in inputs):
            default = self.default_association_type_id(to_object_type)
        return self._run_batches("associate", list(inputs), send, batch_size)


def _input_key(item: dict, dedupe_property: str | None, trace: str) -> str:
    if dedupe_property:
        return str((item.get("properties") or {}).get(dedupe_property))
    return trace


def _missing_side(error: dict, to_object_type: str) -> str:
    """HubSpot's association 404 does not always say which record is missing; name it."""
    message = str(error.get("message") or "")
    context = error.get("context") or {}
    if error.get("category") != "OBJECT_NOT_FOUND":
        return message
    missing = set(map(str, context.get("id", [])))
    sides = [f"appointment {value}" for value in context.get("fromObjectId", []) if str(value) in missing]
    sides += [f"{to_object_type} record {value}" for value in context.get("toObjectId", []) if str(value) in missing]
    return f"{' and '.join(sides)} does not exist ({message})" if sides else message
