"""Associations: the single-pair forms of the objects API and the batch associations API.

Three ways to associate one pair, all supported:

- ``PUT .../{id}/associations/{toObjectType}/{toObjectId}/{associationTypeId}`` (v3 and the
  appointments guide; no body; 200 with the record and its associations; the last segment may also
  be a v3 type name such as ``appointment_to_contact``);
- ``PUT .../{id}/associations/{toObjectType}/{toObjectId}`` with a JSON array of
  ``{associationCategory, associationTypeId}`` (2026-03; 201 ``LabelsBetweenObjectPair``);
- ``PUT .../{id}/associations/default/{toObjectType}/{toObjectId}`` (the default type; 200).

Missing or archived records are 404 ``OBJECT_NOT_FOUND`` on single-pair calls and one error per
input in batches. Batch read reports a record without associations the way HubSpot does: an error
with ``subCategory: crm.associations.NO_ASSOCIATIONS_FOUND`` (207), not an empty result.
Associating never changes ``hs_lastmodifieddate`` (model choice).
"""

from __future__ import annotations

import builtins  # AssociationsAPI has a method named list
from collections.abc import Iterator
from typing import Any

from airflow_provider_appointments.simulator.errors import (
    HubSpotHTTPError,
    expect_fields,
    expect_list,
    expect_type_id,
    not_found,
    validation_error,
)
from airflow_provider_appointments.simulator.inputs import batch_inputs, record_id
from airflow_provider_appointments.simulator.routing import Call, Reply
from airflow_provider_appointments.simulator.schema import (
    ASSOCIATION_TYPES,
    AssociationType,
    ObjectSchema,
    association_for_spec,
    association_types,
    default_association_type,
    object_schema,
)
from airflow_provider_appointments.simulator.shapes import (
    associations_body,
    batch_body,
    labelled_targets,
    labels_between,
    live_links,
    now_iso,
    record_body,
)
from airflow_provider_appointments.simulator.store import Record, Store

LIST_LIMIT = 500
# What each batch input holds: ``from`` and ``to`` are ``{id}`` objects (``to`` is a list of them in
# batch archive), ``types`` a list of ``AssociationSpec``; batch read takes ``{id}`` inputs.
PAIR, PAIR_WITH_TYPES, FROM_AND_TARGETS, PUBLIC_ID = "pair", "pair+types", "from+targets", "id"


def association_inputs(body: Any, shape: str) -> list[dict]:
    """The inputs of an association batch, each checked for the JSON types of its fields, or the
    invalid-input 400 naming the first field that does not fit (before any input is applied)."""
    inputs = batch_inputs(body)
    for position, item in enumerate(inputs):
        where = f"inputs[{position}]"
        if shape == PUBLIC_ID:
            expect_fields(item, where, scalars=("id",))
            continue
        item = expect_fields(item, where, objects=("from",) if shape == FROM_AND_TARGETS else ("from", "to"),
                             lists=("to",) if shape == FROM_AND_TARGETS else ("types",) if shape == PAIR_WITH_TYPES
                             else ())
        expect_fields(item.get("from") or {}, f"{where}.from", scalars=("id",))
        targets = item.get("to") if shape == FROM_AND_TARGETS else [item.get("to") or {}]
        for number, target in enumerate(targets or []):
            expect_fields(target, f"{where}.to[{number}]" if shape == FROM_AND_TARGETS else f"{where}.to",
                          scalars=("id",))
        for number, spec in enumerate(item.get("types") or [] if shape == PAIR_WITH_TYPES else []):
            expect_type_id(spec, f"{where}.types[{number}]")
    return inputs


class AssociationsAPI:
    """Handlers of the association endpoints, bound to a store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- one pair --------------------------------------------------------------------------------
    def put_typed(self, call: Call) -> Reply:
        """``PUT .../associations/{toObjectType}/{toObjectId}/{associationTypeId}`` (v3 style)."""
        record, to_schema, to_id = self._pair(call.params["object_type"], call.params["object_id"],
                                              call.params["to_type"], call.params["to_id"])
        association = _type_named(record.schema, to_schema, call.params["association_type"])
        self.store.associate(record.object_type, record.id, to_schema.name, to_id, {association.type_id})
        body = record_body(record)
        body["associations"] = associations_body(self.store, record, [to_schema.name])
        return Reply(200, body)

    def put_labelled(self, call: Call) -> Reply:
        """``PUT .../associations/{toObjectType}/{toObjectId}`` with a body of association specs."""
        record, to_schema, to_id = self._pair(call.params["object_type"], call.params["object_id"],
                                              call.params["to_type"], call.params["to_id"])
        for position, spec in enumerate(expect_list(call.body, "body")):
            expect_type_id(spec, f"body[{position}]")
        type_ids = _type_ids(record.schema, to_schema, call.body)
        self.store.associate(record.object_type, record.id, to_schema.name, to_id, type_ids)
        location = f"{call.base_url}{call.path}"
        return Reply(201, labels_between(self.store, record, to_schema.name, to_id), {"Location": location})

    def put_default(self, call: Call) -> Reply:
        """``PUT .../associations/default/{toObjectType}/{toObjectId}``: the default association type."""
        started = now_iso()
        record, to_schema, to_id = self._pair(call.params["object_type"], call.params["object_id"],
                                              call.params["to_type"], call.params["to_id"])
        return Reply(200, batch_body([self._associate_default(record, to_schema, to_id)], [], started))

    def delete_pair(self, call: Call) -> Reply:
        """Remove every association between the pair."""
        record, to_schema, to_id = self._pair(call.params["object_type"], call.params["object_id"],
                                              call.params["to_type"], call.params["to_id"])
        self.store.dissociate(record.object_type, record.id, to_schema.name, to_id)
        return Reply(204)

    def delete_typed(self, call: Call) -> Reply:
        record, to_schema, to_id = self._pair(call.params["object_type"], call.params["object_id"],
                                              call.params["to_type"], call.params["to_id"])
        association = _type_named(record.schema, to_schema, call.params["association_type"])
        self.store.dissociate(record.object_type, record.id, to_schema.name, to_id, {association.type_id})
        return Reply(204)

    def list(self, call: Call) -> Reply:
        """v3: ``{results: [{id, type}]}``; 2026-03 / v4: ``{results: [{toObjectId, associationTypes}]}``."""
        schema, to_schema = object_schema(call.params["object_type"]), object_schema(call.params["to_type"])
        raw = call.params["object_id"]
        found = record_id(raw)
        record = self.store.get(schema.name, found) if found is not None else None
        if record is None or record.archived:
            raise not_found(raw)
        limit = min(record_id(call.query.get("limit", str(LIST_LIMIT))) or LIST_LIMIT, LIST_LIMIT)
        after = record_id(call.query.get("after", "0")) or 0
        targets = [(to_id, types) for to_id, types in live_links(self.store, record, to_schema.name).items()
                   if to_id >= after]
        page, rest = targets[:limit], targets[limit:]
        if call.version == "v3":
            results = [{"id": str(to_id), "type": ASSOCIATION_TYPES[type_id].name}
                       for to_id, types in page for type_id in sorted(types)]
        else:
            wanted = {to_id for to_id, _ in page}
            results = [item for item in labelled_targets(self.store, record, to_schema.name)
                       if int(item["toObjectId"]) in wanted]
        body: dict[str, Any] = {"results": results}
        if rest:
            body["paging"] = {"next": {"after": str(rest[0][0]),
                                       "link": f"{call.base_url}{call.path}?limit={limit}&after={rest[0][0]}"}}
        return Reply(200, body)

    def labels(self, call: Call) -> Reply:
        """The association types (labelled or not) from one object type to another."""
        schema, to_schema = object_schema(call.params["from_type"]), object_schema(call.params["to_type"])
        return Reply(200, {"results": [a.as_api() for a in association_types(schema.name, to_schema.name)]})

    # -- batches ---------------------------------------------------------------------------------
    def batch_create(self, call: Call) -> Reply:
        schema, to_schema = object_schema(call.params["from_type"]), object_schema(call.params["to_type"])
        started, results = now_iso(), []
        errors: builtins.list[dict] = []
        for record, to_id, type_ids in self._typed_pairs(schema, to_schema, call.body, errors):
            self.store.associate(schema.name, record.id, to_schema.name, to_id, type_ids)
            results.append(labels_between(self.store, record, to_schema.name, to_id))
        return Reply(207 if errors else 201, batch_body(results, errors, started))

    def batch_default(self, call: Call) -> Reply:
        """Spec: always 200; failed inputs are listed in ``errors``."""
        schema, to_schema = object_schema(call.params["from_type"]), object_schema(call.params["to_type"])
        started, results, errors = now_iso(), [], []
        for item in association_inputs(call.body, PAIR):
            from_raw, to_raw = _pair_ids(item)
            try:
                record, _, to_id = self._pair(schema.name, from_raw, to_schema.name, to_raw)
                results.append(self._associate_default(record, to_schema, to_id))
            except HubSpotHTTPError as error:
                errors.append(error.to_standard_error({"fromObjectId": [from_raw], "toObjectId": [to_raw]}))
        return Reply(200, batch_body(results, errors, started))

    def batch_read(self, call: Call) -> Reply:
        schema, to_schema = object_schema(call.params["from_type"]), object_schema(call.params["to_type"])
        started, results, errors = now_iso(), [], []
        for item in association_inputs(call.body, PUBLIC_ID):
            raw = "" if item.get("id") is None else str(item["id"])
            found = record_id(raw)
            record = self.store.get(schema.name, found) if found is not None else None
            targets = labelled_targets(self.store, record, to_schema.name) if record and not record.archived else []
            if targets:
                results.append({"from": {"id": raw}, "to": targets})
                continue
            errors.append(HubSpotHTTPError(
                404, "OBJECT_NOT_FOUND", f"No {to_schema.singular} is associated with {schema.singular} {raw}.",
                sub_category="crm.associations.NO_ASSOCIATIONS_FOUND",
            ).to_standard_error({"fromObjectId": [raw], "fromObjectType": [schema.singular],
                                 "toObjectType": [to_schema.singular]}))
        return Reply(207 if errors else 200, batch_body(results, errors, started))

    def batch_archive(self, call: Call) -> Reply:
        """Remove every association between each ``from`` and its ``to`` records (200, no results)."""
        schema, to_schema = object_schema(call.params["from_type"]), object_schema(call.params["to_type"])
        started = now_iso()
        pairs = []
        for position, item in enumerate(association_inputs(call.body, FROM_AND_TARGETS)):
            from_id = record_id((item.get("from") or {}).get("id"))
            if from_id is None or not isinstance(item.get("to"), list):
                raise validation_error(f"inputs[{position}] needs a numeric from.id and a to list of {{id}}.",
                                       context={"field": [f"inputs[{position}]"]})
            pairs += [(from_id, to_id) for to_id in (record_id(target.get("id")) for target in item["to"])
                      if to_id is not None]
        for from_id, to_id in pairs:
            self.store.dissociate(schema.name, from_id, to_schema.name, to_id)
        return Reply(200, batch_body([], [], started))

    def batch_archive_labels(self, call: Call) -> Reply:
        """Remove the given types; removing the default type removes the labelled ones too."""
        schema, to_schema = object_schema(call.params["from_type"]), object_schema(call.params["to_type"])
        started = now_iso()
        errors: builtins.list[dict] = []
        default = default_association_type(schema.name, to_schema.name)
        for record, to_id, type_ids in self._typed_pairs(schema, to_schema, call.body, errors):
            everything = default is not None and default.type_id in type_ids
            self.store.dissociate(schema.name, record.id, to_schema.name, to_id, None if everything else type_ids)
        return Reply(200, batch_body([], errors, started))

    # -- shared ----------------------------------------------------------------------------------
    def _typed_pairs(self, schema: ObjectSchema, to_schema: ObjectSchema, body: Any,
                     errors: builtins.list[dict]) -> Iterator[tuple[Record, int, set[int]]]:
        """The (source record, target id, type ids) of each valid input of a typed pair batch; the
        others go to `errors`, naming both sides."""
        for item in association_inputs(body, PAIR_WITH_TYPES):
            from_raw, to_raw = _pair_ids(item)
            try:
                record, _, to_id = self._pair(schema.name, from_raw, to_schema.name, to_raw)
                type_ids = _type_ids(schema, to_schema, item.get("types"))
            except HubSpotHTTPError as error:
                errors.append(error.to_standard_error({"fromObjectId": [from_raw], "toObjectId": [to_raw]}))
                continue
            yield record, to_id, type_ids

    def _pair(self, from_name: str, from_raw: str, to_name: str, to_raw: str) -> tuple[Record, ObjectSchema, int]:
        """The active source record, the target type and the id of an active target, or a 404."""
        schema, to_schema = object_schema(from_name), object_schema(to_name)
        found = record_id(from_raw)
        record = self.store.get(schema.name, found) if found is not None else None
        if record is None or record.archived:
            raise not_found(from_raw)
        to_id = record_id(to_raw)
        if to_id is None or not self.store.is_active(to_schema.name, to_id):
            raise HubSpotHTTPError(404, "OBJECT_NOT_FOUND", f"No {to_schema.singular} with id {to_raw} exists.",
                                   context={"id": [to_raw], "objectType": [to_schema.singular]})
        if not association_types(schema.name, to_schema.name):
            raise validation_error(f"{schema.name} cannot be associated with {to_schema.name}.",
                                   context={"toObjectType": [to_schema.name]})
        return record, to_schema, to_id

    def _associate_default(self, record: Record, to_schema: ObjectSchema, to_id: int) -> dict:
        default = default_association_type(record.object_type, to_schema.name)
        assert default is not None  # `_pair` checked that the two types associate
        self.store.associate(record.object_type, record.id, to_schema.name, to_id, {default.type_id})
        return {"from": {"id": str(record.id)}, "to": {"id": str(to_id)},
                "associationSpec": {"associationCategory": default.category, "associationTypeId": default.type_id}}


def _pair_ids(item: dict) -> tuple[str, str]:
    """The ``from.id`` and ``to.id`` of an input `association_inputs` checked ("" when missing)."""
    def id_of(side: str) -> str:
        value = (item.get(side) or {}).get("id")
        return "" if value is None else str(value)
    return id_of("from"), id_of("to")


def _type_named(schema: ObjectSchema, to_schema: ObjectSchema, name: str) -> AssociationType:
    """The association type a path segment names: its id, or its v3 name."""
    for association in association_types(schema.name, to_schema.name):
        if name in (str(association.type_id), association.name):
            return association
    raise validation_error(f"{name} is not a valid association type from {schema.name} to {to_schema.name}.",
                           context={"associationType": [name]})


def _type_ids(schema: ObjectSchema, to_schema: ObjectSchema, specs: Any) -> set[int]:
    """The type ids of an ``AssociationSpec`` list, each valid between the two object types."""
    if not isinstance(specs, list) or not specs:
        raise validation_error("The body must be a non-empty array of {associationCategory, associationTypeId}.")
    type_ids = set()
    for spec in specs:
        association = association_for_spec(spec, schema.name, to_schema.name)
        if association is None:
            valid = sorted(a.type_id for a in association_types(schema.name, to_schema.name))
            named = spec.get("associationTypeId") if isinstance(spec, dict) else spec
            raise validation_error(f"{spec!r} is not a valid association type from {schema.name} to {to_schema.name}; "
                                   f"valid type ids: {valid}.", context={"associationTypeId": [str(named)]})
        type_ids.add(association.type_id)
    return type_ids
