"""The CRM objects batch API: ``/batch/create``, ``read``, ``update``, ``upsert`` and ``archive``.

Each input goes through the same checks as the single-record endpoint (`writes.check_create`,
`writes.check_update`); batches add only what is theirs: input counts and shapes, duplicate ids,
and how failures are reported. Model choices where HubSpot's documentation is silent:

- Batch create without a unique ``objectWriteTraceId`` on every input checks every input first and
  fails the whole batch with the first problem (400, or 409 for a taken unique value); with them,
  valid inputs are created and each failure is an error naming its trace id (207).
- Batch update reports unknown or archived ids in one ``OBJECT_NOT_FOUND`` error listing them in
  ``context.ids``, and invalid values per input (207); a batch where every input fails is a 207
  with no results, not a 400.
- Upsert without ``idProperty`` (or with ``hs_object_id``) updates by record id and cannot create;
  upserting the unique value of an archived record restores it.
- All writes of one batch get the same timestamp.
- Batch archive answers 204 for ids that do not exist or are archived already.
- ``archived=true`` returns only archived records on batch read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_appointments.simulator import writes
from airflow_provider_appointments.simulator.errors import (
    HubSpotHTTPError,
    expect_fields,
    expect_string_list,
    not_found,
    validation_error,
)
from airflow_provider_appointments.simulator.inputs import batch_inputs, record_id, validate_properties
from airflow_provider_appointments.simulator.routing import Call, Reply
from airflow_provider_appointments.simulator.schema import ObjectSchema
from airflow_provider_appointments.simulator.shapes import batch_body, now_iso, record_body
from airflow_provider_appointments.simulator.store import Record, Store
from airflow_provider_appointments.simulator.writes import field as _field

OPERATIONS = ("create", "read", "update", "upsert", "archive")


class BatchesAPI:
    """Handlers of ``/crm/objects/{version}/{objectType}/batch/...`` bound to a store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, call: Call) -> Reply:
        """Each input gets exactly the single create's checks (`writes.check_create`): all inputs up
        front without trace ids (the first problem fails the batch), per input with them (207)."""
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
                record, _ = writes.create(self.store, schema, item, at, call.source_id)
            except HubSpotHTTPError as error:
                errors.append(error.to_standard_error({"objectWriteTraceId": [str(trace)]}))
                continue
            result = record_body(record, list(item.get("properties") or {}))
            if trace:
                result["objectWriteTraceId"] = str(trace)
            results.append(result)
        return Reply(207 if errors else 201, batch_body(results, errors, started))

    def read(self, call: Call) -> Reply:
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
            record = writes.lookup(self.store, schema, key, id_property)
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

    def update(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        inputs = batch_inputs(call.body, "update")
        started, at = now_iso(), self.store.now_ms()
        _reject_duplicates([f"{_field(item, 'idProperty')}:{_field(item, 'id')}" for item in inputs],
                           [_field(item, "id") for item in inputs])
        results, errors, missing = [], [], []
        for item in inputs:
            key = _field(item, "id")
            record = writes.lookup(self.store, schema, key, _field(item, "idProperty") or None)
            if record is None or record.archived:
                missing.append(key)
                continue
            try:
                if not isinstance(item.get("properties"), dict):
                    raise validation_error("Each input needs properties.")
                values = writes.check_update(self.store, schema, record, item["properties"])
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

    def upsert(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        inputs = batch_inputs(call.body, "upsert")
        started, at = now_iso(), self.store.now_ms()
        default_property = call.query.get("idProperty")
        for item in inputs:
            writes.unique_property(schema, _field(item, "idProperty") or default_property)
        _reject_duplicates(
            [f"{_field(item, 'idProperty') or default_property}:{_field(item, 'id')}" for item in inputs],
            [_field(item, "id") for item in inputs])
        results, errors = [], []
        for item in inputs:
            key = _field(item, "id")
            id_property = _field(item, "idProperty") or default_property
            try:
                record, new = self._upsert_one(schema, item, key, id_property, at, call.source_id)
            except HubSpotHTTPError as error:
                errors.append(error.to_standard_error(_input_context(item, key)))
                continue
            result = _traced(record_body(record, list(item.get("properties") or {}) + [id_property or "hs_object_id"]),
                             item)
            result["new"] = new
            results.append(result)
        return Reply(207 if errors else 200, batch_body(results, errors, started))

    def archive(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        at = self.store.now_ms()
        for item in batch_inputs(call.body, "archive"):
            found = record_id(_field(item, "id"))
            record = self.store.get(schema.name, found) if found is not None else None
            if record is not None:
                self.store.archive(record, at)
        return Reply(204)

    def _upsert_one(self, schema: ObjectSchema, item: Any, key: str, id_property: str | None, at: int,
                    source_id: str) -> tuple[Record, bool]:
        """Update the record `key` names, or create it (through the single-create checks) when a
        unique `id_property` names no record; returns (record, created)."""
        if not isinstance(item, dict) or not isinstance(item.get("properties"), dict):
            raise validation_error("Each input needs id and properties.")
        record = writes.lookup(self.store, schema, key, id_property)
        unique = None if id_property in (None, "hs_object_id") else id_property  # None: by record id
        if record is None and unique is None:
            raise not_found(key)
        if record is None:
            return writes.create(self.store, schema, {"properties": {**item["properties"], id_property: key}}, at,
                                 source_id)
        values = validate_properties(schema, item["properties"], creating=False)
        if unique is not None:
            values[unique] = key
        writes.check_unique(self.store, schema, values, record)
        if record.archived:
            record = self.store.restore(record, at)
        return self.store.update(record, values, at, source_id), False

    def _check_whole_batch(self, schema: ObjectSchema, inputs: Sequence[Any]) -> None:
        """Without trace ids HubSpot rejects the whole batch when any input is invalid: each input
        gets the single-create checks, then unique values must differ between inputs."""
        seen: dict[tuple[str, str], int] = {}
        for position, item in enumerate(inputs):
            values = writes.check_create(self.store, schema, item).values
            for name in schema.unique_properties:
                if values.get(name):
                    if (name, values[name]) in seen:
                        raise validation_error(f'Inputs {seen[(name, values[name])]} and {position} both set {name} '
                                               f'to "{values[name]}", which must be unique.',
                                               context={"propertyName": [name]})
                    seen[(name, values[name])] = position


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


def _input_context(item: Any, key: str) -> dict[str, list[str]]:
    context = {"ids": [key]}
    if _field(item, "objectWriteTraceId"):
        context["objectWriteTraceId"] = [_field(item, "objectWriteTraceId")]
    return context


def _traced(result: dict, item: Any) -> dict:
    if _field(item, "objectWriteTraceId"):
        result["objectWriteTraceId"] = _field(item, "objectWriteTraceId")
    return result
