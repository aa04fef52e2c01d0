"""Record writes shared by the single-record and batch endpoints: one set of create and update checks.

`check_create` is *the* create check (HubSpot's property rules, the ``associations`` of the input,
unique values): single create, batch create (both with and without trace ids) and the creating
branch of batch upsert all go through it, so a batch can never accept an input the single create
refuses, or the other way round. `check_update` is the same for updates. Functions take the store
explicitly and run under its lock, like the handlers that call them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from airflow_provider_appointments.simulator.errors import HubSpotHTTPError, validation_error
from airflow_provider_appointments.simulator.inputs import record_id, validate_properties
from airflow_provider_appointments.simulator.schema import ObjectSchema, association_for_spec
from airflow_provider_appointments.simulator.store import Record, Store

Links = list[tuple[str, int, set[int]]]


class CreatePlan(NamedTuple):
    """A checked create input: the stored values, the associations to add and, when an archived
    record holds one of its unique values, that record (which the create restores)."""

    values: dict[str, str]
    links: Links
    restores: Record | None


def check_create(store: Store, schema: ObjectSchema, item: Any) -> CreatePlan:
    """Every check of a create input, in HubSpot's order: property values (400 naming each problem),
    associations (400), unique values (409). Nothing is written."""
    if not isinstance(item, dict):
        raise validation_error("Each input must be a JSON object with properties.")
    values = validate_properties(schema, item.get("properties"), creating=True)
    links = links_for_create(store, schema, item.get("associations"))
    restores = check_unique(store, schema, values, None)
    return CreatePlan(values, links, restores)


def create(store: Store, schema: ObjectSchema, item: Any, at: int, source_id: str) -> tuple[Record, bool]:
    """Create one record from a create input after `check_create`, or restore the archived record
    holding its unique value; returns (record, created)."""
    plan = check_create(store, schema, item)
    if plan.restores is not None:
        record = store.update(store.restore(plan.restores, at), plan.values, at, source_id)
    else:
        record = store.create(schema.name, plan.values, at, source_id)
    for to_kind, to_id, type_ids in plan.links:
        store.associate(schema.name, record.id, to_kind, to_id, type_ids)
    return record, plan.restores is None


def check_update(store: Store, schema: ObjectSchema, record: Record, properties: Any) -> dict[str, str]:
    """Every check of an update of `record`: property values (400), unique values (409). Returns
    the values to store."""
    values = validate_properties(schema, properties, creating=False)
    check_unique(store, schema, values, record)
    return values


def check_unique(store: Store, schema: ObjectSchema, values: dict[str, str], record: Record | None) -> Record | None:
    """409 when a unique value belongs to another active record; returns the archived record
    holding it (which a create restores instead of creating a new one)."""
    archived_holder = None
    for name in schema.unique_properties:
        value = values.get(name)
        holder = store.find_unique(schema.name, name, value) if value else None
        if holder is None or (record is not None and holder.id == record.id):
            continue
        if holder.archived and record is None:
            archived_holder = holder
            continue
        raise HubSpotHTTPError(
            409, "CONFLICT", f'A {schema.singular} with {name} "{value}" already exists. Existing ID: {holder.id}',
            context={"propertyName": [name], "existingObjectId": [str(holder.id)]})
    return archived_holder


def links_for_create(store: Store, schema: ObjectSchema, associations: Any) -> Links:
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
                                       context={"associationTypeId": [str(field(spec, "associationTypeId"))]})
            by_kind.setdefault(association.to_type, set()).add(association.type_id)
        for to_kind, type_ids in by_kind.items():
            if not store.is_active(to_kind, target):
                raise validation_error(
                    f"One or more associations are invalid: there is no {to_kind} with id {target}.",
                    context={"toObjectId": [str(target)], "toObjectType": [to_kind]})
            links.append((to_kind, target, type_ids))
    return links


def lookup(store: Store, schema: ObjectSchema, raw: str, id_property: str | None) -> Record | None:
    """The record a path or input names, by id or by a unique property (archived included)."""
    if id_property and id_property != "hs_object_id":
        unique_property(schema, id_property)
        return store.find_unique(schema.name, id_property, raw)
    found = record_id(raw)
    return store.get(schema.name, found) if found is not None else None


def unique_property(schema: ObjectSchema, name: str | None) -> None:
    """400 unless `name` can identify records (a unique property, or hs_object_id / nothing)."""
    if name in (None, "", "hs_object_id"):
        return
    definition = schema.properties.get(name)
    if definition is None or not definition.has_unique_value:
        raise validation_error(f"{name} is not a unique property of {schema.name}, so it cannot be used as idProperty.",
                               context={"idProperty": [str(name)]})


def field(item: Any, name: str) -> str:
    """A field of a JSON input as a string ("" when absent or the input is not an object)."""
    value = item.get(name) if isinstance(item, dict) else None
    return "" if value is None else str(value)
