"""HubSpot's response shapes, built from store records."""

from __future__ import annotations

import time
from typing import Any

from airflow_provider_appointments.simulator.errors import HubSpotHTTPError
from airflow_provider_appointments.simulator.properties import iso_ms
from airflow_provider_appointments.simulator.schema import ASSOCIATION_TYPES, SCHEMAS, object_schema
from airflow_provider_appointments.simulator.store import Record, Store


def now_iso() -> str:
    return iso_ms(int(time.time() * 1000))


def record_body(record: Record, properties: list[str] | None = None, history: list[str] | None = None) -> dict:
    """`SimplePublicObject`: the default properties plus the requested ones (null when unset;
    unknown names are ignored, as HubSpot does), and ``propertiesWithHistory`` when asked."""
    schema = record.schema
    names = list(schema.default_properties)
    names += [name for name in properties or () if name in schema.properties and name not in names]
    body: dict[str, Any] = {
        "id": str(record.id),
        "properties": {name: record.value(name) for name in names},
        "createdAt": iso_ms(record.created_ms),
        "updatedAt": iso_ms(record.updated_ms),
        "archived": record.archived,
    }
    if record.archived_ms is not None:
        body["archivedAt"] = iso_ms(record.archived_ms)
    if history:
        body["propertiesWithHistory"] = {name: record.history_of(name) for name in history
                                         if name in schema.properties}
    return body


def live_links(store: Store, record: Record, to_kind: str) -> dict[int, set[int]]:
    """A record's associations to one object type, leaving out archived targets."""
    targets = store.associations_of(record.object_type, record.id).get(to_kind, {})
    return {to_id: types for to_id, types in sorted(targets.items()) if types and store.is_active(to_kind, to_id)}


def associations_body(store: Store, record: Record, names: list[str]) -> dict:
    """The ``associations`` of a read: per object type asked for, ``{results: [{id, type}]}``; one
    entry per association type, so a labelled pair appears twice, as on HubSpot. Types without any
    association (and unknown names) are left out."""
    result = {}
    for name in names:
        try:
            to_kind = object_schema(name).name
        except HubSpotHTTPError:  # HubSpot ignores object types it does not know in reads
            continue
        entries = [{"id": str(to_id), "type": ASSOCIATION_TYPES[type_id].name}
                   for to_id, types in live_links(store, record, to_kind).items() for type_id in sorted(types)]
        if entries:
            result[to_kind] = {"results": entries}
    return result


def labelled_targets(store: Store, record: Record, to_kind: str) -> list[dict]:
    """`MultiAssociatedObjectWithLabel` items: each target with its association types."""
    return [{"toObjectId": str(to_id), "associationTypes": [ASSOCIATION_TYPES[t].as_api() for t in sorted(types)]}
            for to_id, types in live_links(store, record, to_kind).items()]


def labels_between(store: Store, record: Record, to_kind: str, to_id: int) -> dict:
    """`LabelsBetweenObjectPair`: the labels (labelled association types) between two records."""
    types = store.associations_of(record.object_type, record.id).get(to_kind, {}).get(to_id, set())
    return {"fromObjectTypeId": SCHEMAS[record.object_type].type_id, "fromObjectId": str(record.id),
            "toObjectTypeId": SCHEMAS[to_kind].type_id, "toObjectId": str(to_id),
            "labels": sorted(ASSOCIATION_TYPES[t].label for t in types if ASSOCIATION_TYPES[t].label)}


def batch_body(results: list[dict], errors: list[dict], started_at: str) -> dict:
    """HubSpot's batch response: ``numErrors`` and ``errors`` only when some inputs failed."""
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "requestedAt": started_at,
                            "startedAt": started_at, "completedAt": now_iso()}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    return body
