"""One `execute` of a write operator: what it learns before sending, handed to the operator's steps.

An operator instance is configuration (what its arguments say); everything one run learns lives here
and is gone with the run, so a retry or a second `execute` of the same instance starts clean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from airflow_provider_appointments.api.client import AppointmentsClient
from airflow_provider_appointments.api.timestamps import to_epoch_ms
from airflow_provider_appointments.operators.duplicates import DuplicateKeys
from airflow_provider_appointments.records.properties import PropertySchema

if TYPE_CHECKING:
    from airflow.sdk import Context


@dataclass
class WriteRun:
    """What one run of a write operator knows.

    :param client: the HubSpot client of the run's connection.
    :param schema: the appointments' property schema, read once at the start (again only when the
        operator's `start` creates a property).
    :param context: the task's Airflow context (empty outside a task run).
    :param dry_run: the run writes nothing.
    :param facts: what the operator's own `start` learned (its own type, e.g. an id map).
    :param duplicates: the input's repeated keys under the ``on_duplicate_keys`` policy.
    :param source: the input this run reads (rows, a reference, a query, or its copy).
    :param reads: requests this run sent to compare rows with HubSpot's records (counted in ``requests``).
    """

    client: AppointmentsClient
    schema: PropertySchema
    context: Context
    dry_run: bool = False
    facts: Any = None
    duplicates: DuplicateKeys = field(default_factory=lambda: DuplicateKeys(()))
    source: Any = None
    reads: int = 0


def retry_run_start(context: Context) -> int | None:
    """On a retry, the DAG run's start (epoch ms): a record created since by one of this task's rows was
    most likely created by an earlier try of it. None on a first try."""
    ti = context.get("ti")
    dag_run = context.get("dag_run")
    start = getattr(dag_run, "start_date", None)
    if ti is None or int(getattr(ti, "try_number", 1) or 1) <= 1 or start is None:
        return None
    return to_epoch_ms(start)


def is_data(records: Any) -> bool:
    """Inline rows (never rendered as a template) rather than a reference: a path, URI or XCom."""
    return isinstance(records, (list, tuple, pd.DataFrame))
