"""Sending only what changed: rows compared with what HubSpot holds, by key, per property type.

Used by the upsert operator's ``skip_unchanged=True`` and by the sync's ``compare="hubspot"``: the
records are read by their unique value (one batch read per 100 keys, paced and retried like any read),
and each row keeps only the properties whose value differs (`records.compare`), so an unchanged row
costs no write and its ``hs_lastmodifieddate`` stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from airflow_provider_appointments.api.results import OBJECT_NOT_FOUND, RecordOutcome, settled_row
from airflow_provider_appointments.api.timestamps import created_ms
from airflow_provider_appointments.operators.run import WriteRun
from airflow_provider_appointments.records.compare import changes


@dataclass
class Compared:
    """Where each item stands against HubSpot (positions are into the compared items).

    :param changed: position → (HubSpot id, the changed properties → ``{"from", "to"}``).
    :param unchanged: position → the settled outcome (succeeded with the HubSpot id: ``unchanged``, or
        counted as created when an interrupted earlier try of this task created the record).
    :param missing: positions HubSpot has no record for.
    :param failed: position → the read's own failure (a lasting 5xx, a refused read): the row is settled
        with it, never guessed to be missing (a transient one is sent again by a retry).
    """

    changed: dict[int, tuple[str, dict[str, dict]]] = field(default_factory=dict)
    unchanged: dict[int, RecordOutcome] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)
    failed: dict[int, RecordOutcome] = field(default_factory=dict)


def compare_with_hubspot(run: WriteRun, id_property: str, rows: list[int], items: list[dict],
                         created_since: int | None = None) -> Compared:
    """Read the records of `items` (``{"id": key, "properties": ...}``, from input `rows`) and compare.

    :param created_since: epoch ms from which a record equal to its row was created by an interrupted
        earlier try of this task (`Window.resumed_since`): it counts as created, as it would have had
        that try finished.
    """
    compared = Compared()
    if not items:
        return compared
    keys = [str(item["id"]) for item in items]
    wanted = sorted({name for item in items for name in item["properties"]} | {id_property})
    distinct = list(dict.fromkeys(keys))  # a key that repeats (settled by the duplicate policy) read once
    before = run.client.stats().requests
    read = run.client.batch_read(distinct, properties=wanted, id_property=id_property)
    run.reads += run.client.stats().requests - before
    found = {str((record.get("properties") or {}).get(id_property)): record for record in read.records}
    unreadable = {distinct[outcome.index]: outcome for outcome in read.outcomes
                  if not outcome.succeeded and outcome.category != OBJECT_NOT_FOUND}
    for position, (row, item, key) in enumerate(zip(rows, items, keys)):
        if key in unreadable:
            compared.failed[position] = replace(unreadable[key], index=-1, input_row=row, key=key, message=(
                f"row {row}: reading {id_property} {key!r} to compare failed: {unreadable[key].message}"))
            continue
        record = found.get(key)
        if record is None:
            compared.missing.append(position)
            continue
        diff = changes(run.schema, item["properties"], record.get("properties") or {})
        if diff:
            compared.changed[position] = (str(record.get("id")), diff)
        else:
            new = created_since is not None and created_ms(record) >= created_since
            compared.unchanged[position] = settled_row(row, key, True, hubspot_id=str(record.get("id")), new=new,
                                                       unchanged=not new)
    return compared
