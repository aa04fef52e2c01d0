"""The endpoint layer: one method per HubSpot Appointments endpoint, over a `HubSpotTransport`.

No Airflow here: `AppointmentsClient(transport, settings)` works on its own; the hook builds one from
an Airflow connection and hands it out with ``hook.get_conn()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_provider_appointments.api.association_endpoints import AssociationEndpoints
from airflow_provider_appointments.api.associations import association_category, association_input
from airflow_provider_appointments.api.batches import BatchEndpoint, BatchRunner, ChunkObserver
from airflow_provider_appointments.api.creates import ON_EXISTING, Creates
from airflow_provider_appointments.api.paging import (
    CursorPaginator,
    KeysetPaginator,
    ModifiedWindowPaginator,
    OffsetPaginator,
    PageRequest,
    paginate,
)
from airflow_provider_appointments.api.paths import OBJECT_ID, OBJECT_TYPE, segment
from airflow_provider_appointments.api.results import BATCH_LIMIT, BatchResult
from airflow_provider_appointments.api.settings import ClientSettings
from airflow_provider_appointments.api.timestamps import MODIFIED, to_epoch_ms
from airflow_provider_appointments.errors import HubSpotAPIError, HubSpotError, HubSpotInputError
from airflow_provider_appointments.transport.http import HubSpotTransport

__all__ = ["ON_EXISTING", "AppointmentsClient", "association_category", "association_input", "segment", "to_epoch_ms"]

SEARCH_PAGE_MAX = 200
LIST_PAGE_MAX = 100
LIST_PAGE_MAX_WITH_HISTORY = 50
# Keep the query string well under the ~8 kB many proxies (and HubSpot's 414) allow.
MAX_QUERY_CHARS = 6_000


def _by_property(name: str) -> Any:
    return lambda result: (result.get("properties") or {}).get(name)


def _by_id(result: dict) -> str:
    return str(result.get("id"))


@dataclass(frozen=True)
class ClientStats:
    """What a client has sent so far: requests (retries included), 429 answers and retries."""

    requests: int
    rate_limited: int
    retries: int


class AppointmentsClient(AssociationEndpoints):
    """HubSpot's Appointments endpoints.

    :param transport: sends every request (auth, retries, pacing).
    :param settings: API version and concurrency (the transport carries the rest).
    """

    def __init__(self, transport: HubSpotTransport, settings: ClientSettings | None = None) -> None:
        self.transport = transport
        self.settings = settings or ClientSettings(base_url=transport.base_url)
        self.batches = BatchRunner(transport, self.settings.concurrency)
        self._schema: Any = None
        self._default_types: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"AppointmentsClient({self.transport!r}, api_version={self.api_version!r})"

    def stats(self) -> ClientStats:
        """A snapshot of this client's counters (progress lines and summaries read these)."""
        return ClientStats(self.transport.requests_sent, self.transport.rate_limited, self.transport.retries)

    @property
    def api_version(self) -> str:
        return self.settings.api_version

    @property
    def concurrency(self) -> int:
        return self.settings.concurrency

    # -- paths ---------------------------------------------------------------------------------
    @property
    def objects_path(self) -> str:
        if self.api_version == "v3":
            return f"/crm/v3/objects/{OBJECT_TYPE}"
        return f"/crm/objects/{self.api_version}/{OBJECT_TYPE}"

    def associations_path(self, to_object_type: str) -> str:
        if self.api_version == "v3":  # v3-era clients reach batch associations through v4
            return f"/crm/v4/associations/{OBJECT_TYPE}/{segment(to_object_type)}"
        return f"/crm/associations/{self.api_version}/{OBJECT_TYPE}/{segment(to_object_type)}"

    @property
    def properties_path(self) -> str:
        if self.api_version == "v3":
            return f"/crm/v3/properties/{OBJECT_TYPE}"
        return f"/crm/properties/{self.api_version}/{OBJECT_TYPE}"

    # -- properties ----------------------------------------------------------------------------
    def get_properties(self) -> list[dict]:
        """Every appointment property definition (name, type, options, hasUniqueValue, …)."""
        return list(self.transport.request("GET", self.properties_path).body.get("results", []))

    def get_property_schema(self) -> Any:
        """The property definitions as a `PropertySchema` (fetched once per client)."""
        if self._schema is None:
            from airflow_provider_appointments.records.properties import PropertySchema

            self._schema = PropertySchema.from_api(self.get_properties())
        return self._schema

    def create_property(self, definition: dict) -> dict:
        """Create an appointment property (needs the ``crm.schemas.appointments.write`` scope)."""
        try:
            created = self.transport.request("POST", self.properties_path, json_body=definition, idempotent=False).body
        except HubSpotAPIError as error:
            if error.status == 403:
                raise HubSpotError(
                    f"cannot create appointment property {definition.get('name')!r}: the token lacks the "
                    f"crm.schemas.appointments.write scope ({error.message}). Create the property in HubSpot, "
                    "or grant the scope to the private app") from None
            raise
        self._schema = None  # the next schema read sees the new property
        return created

    def ensure_property(self, name: str, *, label: str | None = None, type: str = "string",  # noqa: A002
                        field_type: str = "text", group_name: str = "appointmentinformation",
                        has_unique_value: bool = False, description: str = "", create: bool = True) -> dict | None:
        """The property `name`, created through the properties API when it does not exist yet
        (``create=False``: None instead, and nothing is written).

        Raises `HubSpotInputError` when it exists with another type or without unique values where
        they are required, and `HubSpotError` naming the missing scope when it cannot be created.
        """
        try:
            existing = self.transport.request("GET", f"{self.properties_path}/{segment(name)}").body
        except HubSpotAPIError as error:
            if error.status != 404:
                raise
            existing = None
        if existing is None:
            if not create:
                return None
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
        groups: list[dict[str, list[str]]] = [{"properties": [], "propertiesWithHistory": []}]
        size = 0
        for kind, names in (("properties", properties or ()), ("propertiesWithHistory", history or ())):
            for name in names:
                if size + len(name) + 1 > MAX_QUERY_CHARS and size:
                    groups.append({"properties": [], "propertiesWithHistory": []})
                    size = 0
                groups[-1][kind].append(name)
                size += len(name) + 1
        return [{key: ",".join(value) for key, value in group.items() if value} for group in groups]

    def get_appointment(self, appointment_id: str, properties: Sequence[str] | None = None,
                        properties_with_history: Sequence[str] | None = None,
                        associations: Sequence[str] | None = None, archived: bool = False,
                        id_property: str | None = None) -> dict:
        """One appointment; property selections too long for one URL are fetched in parts and merged."""
        merged: dict | None = None
        for selection in self._split_selection(properties, properties_with_history):
            params: dict[str, Any] = {**selection, "archived": str(archived).lower()}
            if associations:
                params["associations"] = ",".join(associations)
            if id_property:
                params["idProperty"] = id_property
            part = self.transport.request("GET", f"{self.objects_path}/{segment(appointment_id)}", params=params).body
            if merged is None:
                merged = part
            else:
                merged["properties"].update(part.get("properties") or {})
                merged.setdefault("propertiesWithHistory", {}).update(part.get("propertiesWithHistory") or {})
        assert merged is not None
        return merged

    def create_appointment(self, properties: dict[str, str], associations: list[dict] | None = None) -> dict:
        body = {"properties": properties, "associations": associations or []}
        return self.transport.request("POST", self.objects_path, json_body=body, idempotent=False).body

    def update_appointment(self, appointment_id: str, properties: dict[str, str],
                           id_property: str | None = None) -> dict:
        params = {"idProperty": id_property} if id_property else None
        return self.transport.request("PATCH", f"{self.objects_path}/{segment(appointment_id)}", params=params,
                                      json_body={"properties": properties}).body

    def archive_appointment(self, appointment_id: str) -> None:
        self.transport.request("DELETE", f"{self.objects_path}/{segment(appointment_id)}")

    # -- listing and search --------------------------------------------------------------------
    def iter_appointments(self, properties: Sequence[str] | None = None,
                          properties_with_history: Sequence[str] | None = None,
                          associations: Sequence[str] | None = None, archived: bool = False,
                          page_size: int = LIST_PAGE_MAX) -> Iterator[list[dict]]:
        """Every appointment, one list per page, following the ``after`` cursor to the end.

        A property selection too long for a URL is listed with the default properties and each page
        is completed with a batch read (its property list travels in the body).
        """
        maximum = LIST_PAGE_MAX_WITH_HISTORY if properties_with_history else LIST_PAGE_MAX
        selections = self._split_selection(properties, properties_with_history)
        complete = len(selections) > 1
        request = PageRequest({"limit": max(1, min(page_size, maximum)), "archived": str(archived).lower(),
                               **({} if complete else selections[0])})
        if associations:
            request.params["associations"] = ",".join(associations)
        for page in paginate(self._get_page, request, CursorPaginator()):
            records = page.get("results", [])
            if complete and records:
                records = self.complete(records, properties=properties,
                                        properties_with_history=properties_with_history, archived=archived)
            yield records

    def _get_page(self, request: PageRequest) -> dict:
        return self.transport.request("GET", self.objects_path, params=request.params).body

    def _search_page(self, request: PageRequest) -> dict:
        return self.transport.request("POST", f"{self.objects_path}/search", json_body=request.body, search=True).body

    def complete(self, records: list[dict], *, properties: Sequence[str] | None = None,
                 properties_with_history: Sequence[str] | None = None, associations: Sequence[str] = (),
                 archived: bool = False) -> list[dict]:
        """Add what a page could not carry (search has no history or associations; a list URL has room
        for only so many properties) by batch reads of the page's ids."""
        ids = [record["id"] for record in records]
        if properties_with_history or (properties and len(self._split_selection(properties, None)) > 1):
            full = {r["id"]: r for r in self.batch_read(ids, properties=properties, archived=archived,
                                                          properties_with_history=properties_with_history).records}
            for record in records:
                found = full.get(record["id"]) or {}
                record["properties"] = {**record.get("properties", {}), **found.get("properties", {})}
                if properties_with_history:
                    record["propertiesWithHistory"] = found.get("propertiesWithHistory") or {}
        for kind in associations:
            linked = self.read_associations(ids, kind)
            for record in records:
                targets = linked.get(record["id"], [])
                record.setdefault("associations", {})[kind] = {"results": [{"id": i} for i in targets]}
        return records

    def iter_search(self, filter_groups: list[dict], sorts: list[dict] | None = None,
                    properties: Sequence[str] | None = None, page_size: int = SEARCH_PAGE_MAX,
                    query: str | None = None, paginator: OffsetPaginator | None = None) -> Iterator[list[dict]]:
        """Search results page by page (at most 10,000 per query: see `iter_modified` for windows).

        :param paginator: pass one to learn afterwards whether the query reached the cap (`capped`).
        """
        limit = max(1, min(page_size, SEARCH_PAGE_MAX))
        body: dict[str, Any] = {"filterGroups": filter_groups, "limit": limit}
        if sorts:
            body["sorts"] = sorts
        if properties:
            body["properties"] = list(properties)
        if query:
            body["query"] = query
        for page in paginate(self._search_page, PageRequest(body=body), paginator or OffsetPaginator(limit)):
            yield page.get("results", [])

    def iter_search_all(self, filter_groups: list[dict], properties: Sequence[str] | None = None,
                        page_size: int = SEARCH_PAGE_MAX) -> Iterator[list[dict]]:
        """Every appointment a search matches, past search's 10,000-result cap: keyset-paged by id
        (ascending), so nothing is skipped or repeated however many match. Each filter group gains
        one filter (``hs_object_id GT …``), so a group may hold at most five of its own."""
        paginator = KeysetPaginator(filter_groups, max(1, min(page_size, SEARCH_PAGE_MAX)), OBJECT_ID)
        body = {"properties": list(dict.fromkeys([*(properties or ()), OBJECT_ID]))}
        for page in paginate(self._search_page, paginator.first_request(body), paginator):
            yield page.get("results", [])

    def iter_modified(self, modified_after: datetime | int | str | None = None,
                      modified_before: datetime | int | str | None = None,
                      properties: Sequence[str] | None = None, page_size: int = SEARCH_PAGE_MAX,
                      properties_with_history: Sequence[str] | None = None,
                      associations: Sequence[str] = ()) -> Iterator[list[dict]]:
        """Appointments with ``modified_after <= hs_lastmodifieddate < modified_before``, each exactly once.

        Sorted by ``hs_lastmodifieddate``; when a query reaches HubSpot's 10,000-result cap it is
        restarted from the last timestamp seen (inclusive), skipping the ids already emitted at that
        timestamp, so no record is lost or repeated whatever the window holds. History and
        associations, which search cannot return, are completed by batch reads.
        """
        lower = to_epoch_ms(modified_after) if modified_after is not None else 0
        upper = to_epoch_ms(modified_before) if modified_before is not None else None
        paginator = ModifiedWindowPaginator(lower, upper, max(1, min(page_size, SEARCH_PAGE_MAX)))
        request = paginator.first_request({"properties": list(dict.fromkeys([*(properties or ()), MODIFIED]))})
        for answer in paginate(self._search_page, request, paginator):
            fresh = paginator.fresh(answer.get("results", []))
            if fresh:
                yield self.complete(fresh, properties_with_history=properties_with_history, associations=associations)

    def search_total(self, filter_groups: list[dict]) -> int:
        """How many appointments a search matches (search's ``total``), for one request."""
        body = {"filterGroups": filter_groups, "limit": 1, "properties": [OBJECT_ID]}
        return int(self._search_page(PageRequest(body=body)).get("total", 0))

    def id_bounds(self) -> tuple[int, int, int] | None:
        """(lowest id, highest id, how many) of the unarchived appointments, or None when there are none."""
        ends = []
        for direction in ("ASCENDING", "DESCENDING"):
            body = {"filterGroups": [], "limit": 1, "properties": [OBJECT_ID],
                    "sorts": [{"propertyName": OBJECT_ID, "direction": direction}]}
            ends.append(self._search_page(PageRequest(body=body)))
        if not ends[0].get("results"):
            return None
        return int(ends[0]["results"][0]["id"]), int(ends[1]["results"][0]["id"]), int(ends[1].get("total", 0))

    def iter_id_range(self, low: int, high: int, *, properties: Sequence[str] = (),
                      page_size: int = SEARCH_PAGE_MAX) -> Iterator[list[dict]]:
        """Appointments with ``low <= hs_object_id < high``, keyset-paged (`KeysetPaginator`: ``GT``
        the last id seen, ascending, no offset), so HubSpot's 10,000-result cap never applies."""
        in_range = [{"propertyName": OBJECT_ID, "operator": "GTE", "value": str(low)},
                    {"propertyName": OBJECT_ID, "operator": "LT", "value": str(high)}]
        for page in self.iter_search_all([{"filters": in_range}], properties=properties, page_size=page_size):
            if page:
                yield page

    # -- batches -------------------------------------------------------------------------------
    def batch_read(self, ids: Sequence[str], properties: Sequence[str] | None = None,
                   properties_with_history: Sequence[str] | None = None, id_property: str | None = None,
                   archived: bool = False) -> BatchResult:
        """Read appointments by id (or by a unique property); `records` holds what was found."""
        selection = list(dict.fromkeys([*(properties or ()), *([id_property] if id_property else [])]))
        extra = {"idProperty": id_property} if id_property else {}
        endpoint = BatchEndpoint(
            "read", f"{self.objects_path}/batch/read", key=str, keep_records=True,
            body=lambda keys: {"inputs": [{"id": key} for key in keys], "properties": selection,
                               "propertiesWithHistory": list(properties_with_history or []), **extra},
            result_key=_by_property(id_property) if id_property else _by_id,
            params={"archived": "true"} if archived else None)
        return self.batches.run(endpoint, [str(value) for value in ids])

    def batch_create(self, inputs: Sequence[dict], *, dedupe_property: str | None = None,
                     on_existing: str = "skip", created_since: datetime | int | None = None,
                     batch_size: int = BATCH_LIMIT, observer: ChunkObserver | None = None) -> BatchResult:
        """Create appointments: ``inputs`` are ``{"properties": {...}, "associations": [...]}``.

        With `dedupe_property` (a unique-value property every input carries) nothing is created twice:
        a batch whose answer was lost is read back by that property and only the inputs not found
        are sent again, and an input whose value already exists resolves per `on_existing`:
        ``"skip"`` (succeeded with the existing id, ``unchanged``), ``"update"`` (its properties are
        written to that record) or ``"fail"`` (``CONFLICT``). Without it, an input whose answer was
        lost fails with category ``AMBIGUOUS_WRITE``.

        :param created_since: records found by the read-back and created at or after this moment
            count as created by this call: a resumed task passes the moment its interrupted attempt
            started sending them.
        :param observer: told before and after each request (a checkpoint journal).
        """
        creates = Creates(self.batches, f"{self.objects_path}/batch/create", unique_property=dedupe_property,
                          on_existing=on_existing, created_since=created_since,
                          retry=self.transport.retry, read_by_unique=self.read_by_unique,
                          update=self.batch_update)
        return creates.run(inputs, batch_size, observer)

    def read_by_unique(self, unique_property: str, values: Sequence[str],
                       properties: Sequence[str] = ()) -> dict[str, dict]:
        """The existing records holding these unique values, by value (archived ones are not found)."""
        read = self.batch_read(list(values), properties=[unique_property, *properties], id_property=unique_property)
        return {str((record.get("properties") or {}).get(unique_property)): record for record in read.records}

    def batch_update(self, inputs: Sequence[dict], *, id_property: str | None = None,
                     batch_size: int = BATCH_LIMIT, observer: ChunkObserver | None = None) -> BatchResult:
        """Update appointments: ``inputs`` are ``{"id": ..., "properties": {...}}`` (the id may be an
        `id_property` value)."""

        def entry(item: dict) -> dict:
            properties = item.get("properties") or {}
            if not id_property:
                return {"id": str(item["id"]), "properties": properties}
            return {"id": str(item["id"]), "idProperty": id_property,
                    "properties": {**properties, id_property: str(item["id"])}}

        endpoint = BatchEndpoint("update", f"{self.objects_path}/batch/update", new_default=False,
                                 body=lambda items: {"inputs": [entry(item) for item in items]},
                                 key=lambda item: str(item["id"]),
                                 result_key=_by_property(id_property) if id_property else _by_id)
        return self.batches.run(endpoint, list(inputs), batch_size, observer=observer)

    def batch_upsert(self, inputs: Sequence[dict], *, id_property: str, batch_size: int = BATCH_LIMIT,
                     created_since: datetime | int | None = None,
                     observer: ChunkObserver | None = None) -> BatchResult:
        """Create or update by a unique property: ``inputs`` are ``{"id": <value>, "properties": {...}}``.

        Replaying an upsert is harmless, so it is retried like any idempotent request.

        :param created_since: records created at or after this moment count as created (``new``) even
            when HubSpot answers ``new: false``: a resumed task passes the moment its interrupted
            attempt started the window, so its counts equal an uninterrupted run's.
        """
        endpoint = BatchEndpoint(
            "upsert", f"{self.objects_path}/batch/upsert", key=lambda item: str(item["id"]),
            body=lambda items: {"inputs": [{"id": str(item["id"]), "idProperty": id_property, "properties": {
                **(item.get("properties") or {}), id_property: str(item["id"])}} for item in items]},
            result_key=_by_property(id_property), error_keys=("ids", "id", id_property),
            created_since_ms=to_epoch_ms(created_since) if created_since is not None else None)
        return self.batches.run(endpoint, list(inputs), batch_size, observer=observer)

    def batch_archive(self, ids: Sequence[str], *, batch_size: int = BATCH_LIMIT,
                      observer: ChunkObserver | None = None) -> BatchResult:
        """Archive (move to the recycling bin); HubSpot answers 204 even for ids that do not exist."""
        endpoint = BatchEndpoint("archive", f"{self.objects_path}/batch/archive", key=str, result_key=_by_id,
                                 body=lambda keys: {"inputs": [{"id": key} for key in keys]})
        return self.batches.run(endpoint, [str(value) for value in ids], batch_size, observer=observer)
