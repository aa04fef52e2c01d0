"""The CRM objects API for one record at a time: get, list, create, update, archive, search, GDPR delete.

Handlers run under the store's lock and answer `Reply` or raise `HubSpotHTTPError`; the create and
update checks live in `writes` and are shared with the batch endpoints (`batches`). Model choices
where HubSpot's documentation is silent:

- Creating with the unique value of an archived record restores that record (same id, back from
  the recycling bin, values updated), as HubSpot's 90-day restore would.
- A write that changes nothing leaves ``hs_lastmodifieddate`` and the history alone.
- DELETE answers 204 for ids that do not exist or are archived already.
- ``archived=true`` returns only archived records on get and list.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from airflow_provider_appointments.simulator import search as searching
from airflow_provider_appointments.simulator import search_query, writes
from airflow_provider_appointments.simulator.errors import expect_fields, not_found, validation_error
from airflow_provider_appointments.simulator.inputs import check_associations_shape, check_properties_shape, record_id
from airflow_provider_appointments.simulator.routing import Call, Reply
from airflow_provider_appointments.simulator.shapes import associations_body, record_body
from airflow_provider_appointments.simulator.store import Record, Store

LIST_LIMIT, LIST_LIMIT_WITH_HISTORY, LIST_DEFAULT = 100, 50, 10
Names = list[str]  # property or object type names (an alias: inside ObjectsAPI, `list` is its method)


class ObjectsAPI:
    """Handlers of ``/crm/objects/{version}/{objectType}/...`` bound to a store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def list(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        history = call.query_list("propertiesWithHistory")
        limit = min(_positive(call.query.get("limit", str(LIST_DEFAULT)), "limit"),
                    LIST_LIMIT_WITH_HISTORY if history else LIST_LIMIT)
        after = call.query.get("after")
        if after is not None and record_id(after) is None:
            raise validation_error(f"after must be a cursor from paging.next.after; got {after!r}.",
                                   context={"after": [after]})
        properties, associations = call.query_list("properties"), call.query_list("associations")
        results: list[dict] = []
        next_id = None
        for found in self.store.iter_ids(schema.name, int(after or 0), archived=call.flag("archived")):
            if len(results) == limit:
                next_id = found  # the cursor is the next record's id, as on HubSpot
                break
            record = self.store.get(schema.name, found)
            if record is not None:
                results.append(self._read_body(record, properties, history, associations))
        body: dict[str, Any] = {"results": results}
        if next_id is not None:
            query = [(key, value) for key, value in call.query.multi_items() if key != "after"]
            query.append(("after", str(next_id)))
            body["paging"] = {"next": {"after": str(next_id), "link": f"{call.base_url}{call.path}?{urlencode(query)}"}}
        return Reply(200, body)

    def read(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        raw = call.params["object_id"]
        record = writes.lookup(self.store, schema, raw, call.query.get("idProperty"))
        if record is None or record.archived != call.flag("archived"):
            raise not_found(raw)
        return Reply(200, self._read_body(record, call.query_list("properties"),
                                          call.query_list("propertiesWithHistory"), call.query_list("associations")))

    def create(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        body = expect_fields(call.body, "body", objects=("properties",), lists=("associations",))
        check_properties_shape(body.get("properties"), "properties")
        check_associations_shape(body.get("associations"), "associations")
        record, _ = writes.create(self.store, schema, body, self.store.now_ms(), call.source_id)
        return Reply(201, record_body(record, list(call.body.get("properties") or {})))

    def update(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        raw = call.params["object_id"]
        body = expect_fields(call.body, "body", objects=("properties",))
        check_properties_shape(body.get("properties"), "properties")
        record = writes.lookup(self.store, schema, raw, call.query.get("idProperty"))
        if record is None or record.archived:
            raise not_found(raw)
        if not isinstance(call.body.get("properties"), dict):
            raise validation_error("The request body must be a JSON object with properties.",
                                   context={"field": ["properties"]})
        values = writes.check_update(self.store, schema, record, call.body["properties"])
        record = self.store.update(record, values, self.store.now_ms(), call.source_id)
        return Reply(200, record_body(record, list(values)))

    def archive(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        found = record_id(call.params["object_id"])
        record = self.store.get(schema.name, found) if found is not None else None
        if record is not None:
            self.store.archive(record)
        return Reply(204)

    def gdpr_delete(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        body = expect_fields(call.body if call.body is not None else {}, "body", scalars=("objectId", "idProperty"))
        if body.get("objectId") in (None, "", False):
            raise validation_error("objectId is required.", context={"objectId": [""]})
        raw = str(body["objectId"])
        record = writes.lookup(self.store, schema, raw, body.get("idProperty"))
        if record is None:
            raise not_found(raw)
        self.store.purge(record)
        return Reply(204)

    def search(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        request = search_query.parse_request(schema, call.body, len(call.raw_body))
        total, records = searching.run(self.store, schema, request)
        body: dict[str, Any] = {"total": total, "results": [record_body(r, request.properties) for r in records]}
        if request.after + request.limit < total:
            body["paging"] = {"next": {"after": str(request.after + request.limit)}}
        return Reply(200, body)

    def _read_body(self, record: Record, properties: Names | None, history: Names | None,
                   associations: Names | None) -> dict:
        body = record_body(record, properties, history)
        if associations:
            linked = associations_body(self.store, record, associations)
            if linked:
                body["associations"] = linked
        return body


def _positive(value: str, name: str) -> int:
    number = record_id(value)
    if number is None or number < 1:
        raise validation_error(f"{name} must be a positive integer; got {value!r}.", context={name: [value]})
    return number
