"""The CRM objects API: one record, lists, batches, search and GDPR delete.

Handlers run under the store's lock and answer `Reply` or raise `HubSpotHTTPError`. Model choices
where HubSpot's documentation is silent:

- Creating (or upserting) with the unique value of an archived record restores that record (same
  id, back from the recycling bin, values updated), as HubSpot's 90-day restore would.
- A write that changes nothing leaves ``hs_lastmodifieddate`` and the history alone; all writes of
  one batch get the same timestamp.
- Batch create without a unique ``objectWriteTraceId`` on every input checks every input first and
  fails the whole batch with the first problem (400, or 409 for a taken unique value); with them,
  valid inputs are created and each failure is an error naming its trace id (207).
- Batch update reports unknown or archived ids in one ``OBJECT_NOT_FOUND`` error listing them in
  ``context.ids``, and invalid values per input (207); a batch where every input fails is a 207
  with no results, not a 400.
- Upsert without ``idProperty`` (or with ``hs_object_id``) updates by record id and cannot create.
- DELETE and batch archive answer 204 for ids that do not exist or are archived already.
- ``archived=true`` returns only archived records on get, list and batch read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from airflow_provider_appointments.simulator import search as searching
from airflow_provider_appointments.simulator import search_query
from airflow_provider_appointments.simulator.errors import (
    HubSpotHTTPError,
    expect_fields,
    expect_string_list,
    not_found,
    validation_error,
)
from airflow_provider_appointments.simulator.inputs import (
    batch_inputs,
    check_associations_shape,
    check_properties_shape,
    record_id,
    validate_properties,
)
from airflow_provider_appointments.simulator.routing import Call, Reply
from airflow_provider_appointments.simulator.schema import ObjectSchema, association_for_spec
from airflow_provider_appointments.simulator.shapes import associations_body, batch_body, now_iso, record_body
from airflow_provider_appointments.simulator.store import Record, Store

LIST_LIMIT, LIST_LIMIT_WITH_HISTORY, LIST_DEFAULT = 100, 50, 10
Links = list[tuple[str, int, set[int]]]
Names = list[str]  # property or object type names (an alias: inside ObjectsAPI, `list` is its method)


class ObjectsAPI:
    """Handlers of ``/crm/objects/{version}/{objectType}/...`` bound to a store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- one record ------------------------------------------------------------------------------
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
        record = self._lookup(schema, raw, call.query.get("idProperty"))
        if record is None or record.archived != call.flag("archived"):
            raise not_found(raw)
        return Reply(200, self._read_body(record, call.query_list("properties"),
                                          call.query_list("propertiesWithHistory"), call.query_list("associations")))

    def create(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        body = expect_fields(call.body, "body", objects=("properties",), lists=("associations",))
        check_properties_shape(body.get("properties"), "properties")
        check_associations_shape(body.get("associations"), "associations")
        record, _ = self._create(schema, body, self.store.now_ms(), call.source_id)
        return Reply(201, record_body(record, list(call.body.get("properties") or {})))

    def update(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        raw = call.params["object_id"]
        body = expect_fields(call.body, "body", objects=("properties",))
        check_properties_shape(body.get("properties"), "properties")
        record = self._lookup(schema, raw, call.query.get("idProperty"))
        if record is None or record.archived:
            raise not_found(raw)
        if not isinstance(call.body.get("properties"), dict):
            raise validation_error("The request body must be a JSON object with properties.",
                                   context={"field": ["properties"]})
        values = validate_properties(schema, call.body["properties"], creating=False)
        self._check_unique(schema, values, record)
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
        record = self._lookup(schema, raw, body.get("idProperty"))
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

    # -- batches ---------------------------------------------------------------------------------
    def batch_create(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        inputs = batch_inputs(call.body, "create")
        started, at = now_iso(), self.store.now_ms()
        traces = [item.get("objectWriteTraceId") if isinstance(item, dict) else None for item in inputs]
        multi_status = all(traces) and len({str(t) for t in traces}) == len(traces)
        if not multi_status:
            self._check_whole_batch(schema, inputs)
        results, errors = [], []
        for item, trace in zip(inputs, traces):
            try:
                record, _ = self._create(schema, item, at, call.source_id)
            except HubSpotHTTPError as error:
                errors.append(error.to_standard_error({"objectWriteTraceId": [str(trace)]}))
                continue
            result = record_body(record, list(item.get("properties") or {}))
            if trace:
                result["objectWriteTraceId"] = str(trace)
            results.append(result)
        return Reply(207 if errors else 201, batch_body(results, errors, started))

    def batch_read(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        inputs = batch_inputs(call.body, "read")
        expect_fields(call.body, "body", scalars=("idProperty",))
        id_property = call.body.get("idProperty")
        id_property = None if id_property is None else str(id_property)
        properties = expect_string_list(call.body.get("properties"), "properties")
        history = expect_string_list(call.body.get("propertiesWithHistory"), "propertiesWithHistory")
        keys = [_field(item, "id") for item in inputs]
        _reject_duplicates(keys)
        archived = call.flag("archived")
        results, missing = [], []
        for key in keys:
            record = self._lookup(schema, key, id_property)
            if record is None or record.archived != archived:
                missing.append(key)
                continue
            results.append(record_body(record, properties, history))
        errors = []
        if missing:
            errors.append(HubSpotHTTPError(
                404, "OBJECT_NOT_FOUND", f"Could not get some {schema.name} objects, they may be deleted or not exist. "
                                         "Check that ids are valid.").to_standard_error({"ids": missing}))
        return Reply(207 if errors else 200, batch_body(results, errors, now_iso()))

    def batch_update(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        inputs = batch_inputs(call.body, "update")
        started, at = now_iso(), self.store.now_ms()
        _reject_duplicates([f"{_field(item, 'idProperty')}:{_field(item, 'id')}" for item in inputs],
                           [_field(item, "id") for item in inputs])
        results, errors, missing = [], [], []
        for item in inputs:
            key = _field(item, "id")
            record = self._lookup(schema, key, _field(item, "idProperty") or None)
            if record is None or record.archived:
                missing.append(key)
                continue
            try:
                if not isinstance(item.get("properties"), dict):
                    raise validation_error("Each input needs properties.")
                values = validate_properties(schema, item["properties"], creating=False)
                self._check_unique(schema, values, record)
            except HubSpotHTTPError as error:
                errors.append(error.to_standard_error(_input_context(item, key)))
                continue
            record = self.store.update(record, values, at, call.source_id)
            results.append(_traced(record_body(record, list(values)), item))
        if missing:
            errors.append(HubSpotHTTPError(
                404, "OBJECT_NOT_FOUND", f"Could not update some {schema.name} objects, they may be deleted or not "
                                         "exist.").to_standard_error({"ids": missing}))
        return Reply(207 if errors else 200, batch_body(results, errors, started))

    def batch_upsert(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        inputs = batch_inputs(call.body, "upsert")
        started, at = now_iso(), self.store.now_ms()
        default_property = call.query.get("idProperty")
        for item in inputs:
            _unique_property(schema, _field(item, "idProperty") or default_property)
        _reject_duplicates(
            [f"{_field(item, 'idProperty') or default_property}:{_field(item, 'id')}" for item in inputs],
            [_field(item, "id") for item in inputs])
        results, errors = [], []
        for item in inputs:
            key = _field(item, "id")
            id_property = _field(item, "idProperty") or default_property
            try:
                record, new = self._upsert(schema, item, key, id_property, at, call.source_id)
            except HubSpotHTTPError as error:
                errors.append(error.to_standard_error(_input_context(item, key)))
                continue
            result = _traced(record_body(record, list(item.get("properties") or {}) + [id_property or "hs_object_id"]),
                             item)
            result["new"] = new
            results.append(result)
        return Reply(207 if errors else 200, batch_body(results, errors, started))

    def batch_archive(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        at = self.store.now_ms()
        for item in batch_inputs(call.body, "archive"):
            found = record_id(_field(item, "id"))
            record = self.store.get(schema.name, found) if found is not None else None
            if record is not None:
                self.store.archive(record, at)
        return Reply(204)

    # -- shared ----------------------------------------------------------------------------------
    def _read_body(self, record: Record, properties: Names | None, history: Names | None,
                   associations: Names | None) -> dict:
        body = record_body(record, properties, history)
        if associations:
            linked = associations_body(self.store, record, associations)
            if linked:
                body["associations"] = linked
        return body

    def _lookup(self, schema: ObjectSchema, raw: str, id_property: str | None) -> Record | None:
        """The record a path or input names, by id or by a unique property (archived included)."""
        if id_property and id_property != "hs_object_id":
            _unique_property(schema, id_property)
            return self.store.find_unique(schema.name, id_property, raw)
        found = record_id(raw)
        return self.store.get(schema.name, found) if found is not None else None

    def _create(self, schema: ObjectSchema, item: Any, at: int, source_id: str) -> tuple[Record, bool]:
        """Create one record from a create input, or restore the archived record holding its unique
        value; returns (record, created)."""
        if not isinstance(item, dict):
            raise validation_error("Each input must be a JSON object with properties.")
        values = validate_properties(schema, item.get("properties"), creating=True)
        links = self._links_for_create(schema, item.get("associations"))
        restored = self._check_unique(schema, values, None)
        if restored is not None:
            record = self.store.update(self.store.restore(restored, at), values, at, source_id)
        else:
            record = self.store.create(schema.name, values, at, source_id)
        for to_kind, to_id, type_ids in links:
            self.store.associate(schema.name, record.id, to_kind, to_id, type_ids)
        return record, restored is None

    def _upsert(self, schema: ObjectSchema, item: Any, key: str, id_property: str | None, at: int,
                source_id: str) -> tuple[Record, bool]:
        if not isinstance(item, dict) or not isinstance(item.get("properties"), dict):
            raise validation_error("Each input needs id and properties.")
        record = self._lookup(schema, key, id_property)
        unique = None if id_property in (None, "hs_object_id") else id_property  # None: by record id
        if record is None and unique is None:
            raise not_found(key)
        if record is None:
            return self._create(schema, {"properties": {**item["properties"], id_property: key}}, at, source_id)
        values = validate_properties(schema, item["properties"], creating=False)
        if unique is not None:
            values[unique] = key
        self._check_unique(schema, values, record)
        if record.archived:
            record = self.store.restore(record, at)
        return self.store.update(record, values, at, source_id), False

    def _check_unique(self, schema: ObjectSchema, values: dict[str, str], record: Record | None) -> Record | None:
        """409 when a unique value belongs to another active record; returns the archived record
        holding it (which a create restores instead of creating a new one)."""
        archived_holder = None
        for name in schema.unique_properties:
            value = values.get(name)
            holder = self.store.find_unique(schema.name, name, value) if value else None
            if holder is None or (record is not None and holder.id == record.id):
                continue
            if holder.archived and record is None:
                archived_holder = holder
                continue
            raise HubSpotHTTPError(
                409, "CONFLICT", f'A {schema.singular} with {name} "{value}" already exists. Existing ID: {holder.id}',
                context={"propertyName": [name], "existingObjectId": [str(holder.id)]})
        return archived_holder

    def _check_whole_batch(self, schema: ObjectSchema, inputs: Sequence[Any]) -> None:
        """Without trace ids HubSpot rejects the whole batch when any input is invalid."""
        seen: dict[tuple[str, str], int] = {}
        for position, item in enumerate(inputs):
            if not isinstance(item, dict):
                raise validation_error("Each input must be a JSON object with properties.")
            values = validate_properties(schema, item.get("properties"), creating=True)
            self._links_for_create(schema, item.get("associations"))
            self._check_unique(schema, values, None)
            for name in schema.unique_properties:
                if values.get(name):
                    if (name, values[name]) in seen:
                        raise validation_error(f'Inputs {seen[(name, values[name])]} and {position} both set {name} '
                                               f'to "{values[name]}", which must be unique.',
                                               context={"propertyName": [name]})
                    seen[(name, values[name])] = position

    def _links_for_create(self, schema: ObjectSchema, associations: Any) -> Links:
        """Check the ``associations`` of a create input: (to type, to id, type ids) per target."""
        if associations in (None, []):
            return []
        if not isinstance(associations, list):
            raise validation_error("associations must be an array of {to: {id}, types: [...]}.")
        links: Links = []
        for item in associations:
            target = record_id((item.get("to") or {}).get("id", "")) if isinstance(item, dict) else None
            types = item.get("types") if isinstance(item, dict) else None
            if target is None or not isinstance(types, list) or not types:
                raise validation_error("Each association needs to.id and a non-empty types list.")
            by_kind: dict[str, set[int]] = {}
            for spec in types:
                association = association_for_spec(spec, schema.name)
                if association is None:
                    raise validation_error(f"{spec!r} is not a valid association type from {schema.name}.",
                                           context={"associationTypeId": [str(_field(spec, "associationTypeId"))]})
                by_kind.setdefault(association.to_type, set()).add(association.type_id)
            for to_kind, type_ids in by_kind.items():
                if not self.store.is_active(to_kind, target):
                    raise validation_error(
                        f"One or more associations are invalid: there is no {to_kind} with id {target}.",
                        context={"toObjectId": [str(target)], "toObjectType": [to_kind]})
                links.append((to_kind, target, type_ids))
        return links



def _unique_property(schema: ObjectSchema, name: str | None) -> None:
    """400 unless `name` can identify records (a unique property, or hs_object_id / nothing)."""
    if name in (None, "", "hs_object_id"):
        return
    definition = schema.properties.get(name)
    if definition is None or not definition.has_unique_value:
        raise validation_error(f"{name} is not a unique property of {schema.name}, so it cannot be used as idProperty.",
                               context={"idProperty": [str(name)]})


def _reject_duplicates(keys: list[str], shown: list[str] | None = None) -> None:
    seen, duplicates = set(), []
    for key, label in zip(keys, shown or keys):
        if key in seen and label not in duplicates:
            duplicates.append(label)
        seen.add(key)
    if duplicates:
        raise validation_error(
            "Duplicate IDs found in batch input: [" + ", ".join(duplicates) + "]. IDs must be unique",
            context={"ids": duplicates})


def _positive(value: str, name: str) -> int:
    number = record_id(value)
    if number is None or number < 1:
        raise validation_error(f"{name} must be a positive integer; got {value!r}.", context={name: [value]})
    return number


def _field(item: Any, name: str) -> str:
    value = item.get(name) if isinstance(item, dict) else None
    return "" if value is None else str(value)


def _input_context(item: Any, key: str) -> dict[str, list[str]]:
    context = {"ids": [key]}
    if _field(item, "objectWriteTraceId"):
        context["objectWriteTraceId"] = [_field(item, "objectWriteTraceId")]
    return context


def _traced(result: dict, item: Any) -> dict:
    if _field(item, "objectWriteTraceId"):
        result["objectWriteTraceId"] = _field(item, "objectWriteTraceId")
    return result
