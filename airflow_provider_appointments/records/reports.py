"""The failure report and the id map: Parquet or CSV, local or any URI, with a fixed schema."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from airflow_provider_appointments.records.formats import format_of
from airflow_provider_appointments.records.storage import published

FAILURE_SCHEMA = pa.schema([
    ("input_row", pa.int64()), ("input_key", pa.string()), ("status", pa.int64()), ("category", pa.string()),
    ("message", pa.string()), ("context", pa.string()), ("correlation_id", pa.string()),
])
ID_MAP_SCHEMA = pa.schema([
    ("input_row", pa.int64()), ("input_key", pa.string()), ("hubspot_id", pa.string()), ("new", pa.bool_()),
])


@dataclass(frozen=True)
class FailureRow:
    """One input row that did not succeed, and why."""

    input_row: int
    input_key: str | None
    status: int | None
    category: str | None
    message: str | None
    context: dict | None = None
    correlation_id: str | None = None


def _write(path: str, table: pa.Table) -> None:
    """Publish the report whole: a reader sees the previous one or this one, never part of one."""
    with published(path) as handle:
        if format_of(path, default="parquet") == "csv":
            pa_csv.write_csv(table, handle)
        else:
            pq.write_table(table, handle)


def write_failure_report(path: str, rows: Iterable[FailureRow]) -> int:
    """Write (overwrite) the failure report; returns the number of rows."""
    records = [{**asdict(row), "context": json.dumps(row.context, default=str) if row.context else None}
               for row in rows]
    _write(path, pa.Table.from_pylist(records, schema=FAILURE_SCHEMA))
    return len(records)


def write_id_map(path: str, rows: Iterable[tuple[int, str | None, str | None, bool | None]]) -> int:
    """Write (overwrite) the id map: input row → HubSpot id."""
    records = [dict(zip(ID_MAP_SCHEMA.names, row)) for row in rows]
    _write(path, pa.Table.from_pylist(records, schema=ID_MAP_SCHEMA))
    return len(records)


PLAN_SCHEMA = pa.schema([
    ("input_row", pa.int64()), ("input_key", pa.string()), ("action", pa.string()), ("changes", pa.string()),
    ("reason", pa.string()),
])


@dataclass(frozen=True)
class PlannedRow:
    """What a real run would do with one input row (a dry run's report).

    :param action: ``create``, ``update``, ``unchanged``, ``archive``, ``associate``, ``superseded`` or ``refused``.
    :param changes: for ``update``: property → ``{"from": HubSpot's value, "to": the row's}``.
    :param reason: for ``refused`` (and ``superseded``): why.
    """

    input_row: int
    input_key: str | None
    action: str
    changes: dict | None = None
    reason: str | None = None


def write_plan(path: str, rows: Iterable[PlannedRow]) -> int:
    """Write (overwrite) a dry run's report; returns the number of rows."""
    records = [{**asdict(row), "changes": json.dumps(row.changes, default=str) if row.changes else None}
               for row in rows]
    _write(path, pa.Table.from_pylist(records, schema=PLAN_SCHEMA))
    return len(records)
