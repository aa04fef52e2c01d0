"""Sending only what changed: rows compared with what HubSpot holds, by key, per property type.

Used by the upsert operator's ``skip_unchanged=True`` and by the sync's ``compare="hubspot"``: the
records are read by their unique value (one batch read per 100 keys, paced and retried like any read),
and each row keeps only the properties whose value differs (`records.compare`), so an unchanged row
costs no write and its ``hs_lastmodifieddate`` stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_provider_appointments.api.results import RecordOutcome, settled_row
from airflow_provider_appointments.operators.run import WriteRun
from airflow_provider_appointments.records.compare import changes


@dataclass
class Compared:
    """Where each item stands against HubSpot (positions are into the compared items).

    :param changed: position → (HubSpot id, the changed properties → ``{"from", "to"}``).
    :param unchanged: position → the settled outcome (succeeded, unchanged, with the HubSpot id).
    :param missing: positions HubSpot has no record for.
    """

    changed: dict[int, tuple[str, dict[str, dict]]] = field(default_factory=dict)
    unchanged: dict[int, RecordOutcome] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)


def compare_with_hubspot(run: WriteRun, id_property: str, rows: list[int], items: list[dict]) -> Compared:
    """Read the records of `items` (``{"id": key, "properties": ...}``, from input `rows`) and compare."""
    compared = Compared()
    if not items:
        return compared
    keys = [str(item["id"]) for item in items]
    wanted = sorted({name for item in items for name in item["properties"]})
    before = run.client.stats().requests
    found = run.client.read_by_unique(id_property, keys, wanted)
    run.reads += run.client.stats().requests - before
    for position, (row, item, key) in enumerate(zip(rows, items, keys)):
        record = found.get(key)
        if record is None:
            compared.missing.append(position)
            continue
        diff = changes(run.schema, item["properties"], record.get("properties") or {})
        if diff:
            compared.changed[position] = (str(record.get("id")), diff)
        else:
            compared.unchanged[position] = settled_row(row, key, True, hubspot_id=str(record.get("id")), new=False,
                                                       unchanged=True)
    return compared
