"""Streaming extract writer: pages of HubSpot records → typed Parquet, CSV or JSON Lines, flat memory.

The schema is fixed up front from the property definitions, so every row group agrees and a
warehouse gets real types: timestamps for datetimes, floats for numbers, booleans, dates, list
columns for association ids and nested history columns. Ids are text, never floats: ``id``,
``hs_object_id`` and number properties named ``*_id`` are string columns with every digit (a float64
keeps 15-17 significant digits; other number properties with more digits are logged as lossy).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from airflow_provider_appointments.api.timestamps import parse_moments
from airflow_provider_appointments.records.formats import FORMATS, format_of
from airflow_provider_appointments.records.properties import PropertySchema
from airflow_provider_appointments.records.storage import Publication, open_path

log = logging.getLogger(__name__)
TIMESTAMP = pa.timestamp("ms", tz="UTC")
HISTORY_ENTRY = pa.struct([("value", pa.string()), ("timestamp", TIMESTAMP), ("sourceType", pa.string()),
                           ("sourceId", pa.string())])
_BEYOND_FLOAT = r"\s*[+-]?0*[1-9]\d{15,}(?:\.\d*)?\s*"  # integers a float64 cannot hold digit for digit


def is_id_column(name: str) -> bool:
    """Ids (the record id, hs_object_id, *_id numbers) and input keys stay text: exact, joinable, never 1.2e+19."""
    return name in ("id", "hs_object_id", "hubspot_id", "input_key") or name.endswith("_id")


def _ids(values: list[Any]) -> pa.Array:
    """Id text as HubSpot sent it; a missing id is null, not 'None'; a number that came as 7.0 is '7'."""
    texts: list[str | None] = []
    for value in values:
        if value is None or (isinstance(value, float) and value != value):
            texts.append(None)
        elif isinstance(value, float) and value.is_integer():
            texts.append(str(int(value)))
        else:
            texts.append(str(value))
    return pa.array(texts, type=pa.string())


def _timestamps(values: list[Any]) -> pa.Array:
    """ISO 8601 strings (what HubSpot returns) or epoch-millisecond strings → UTC timestamps."""
    return pa.array(parse_moments(values).dt.as_unit("ms"), type=TIMESTAMP, from_pandas=True)


def _column(values: list[Any], arrow_type: pa.DataType) -> pa.Array:
    if arrow_type == TIMESTAMP:
        return _timestamps(values)
    if arrow_type == pa.float64():
        return pa.array(pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce").astype("float64"),
                        type=pa.float64(), from_pandas=True)
    if arrow_type == pa.date32():
        parsed = parse_moments(values)
        return pa.array(parsed.dt.date.where(parsed.notna(), None), type=pa.date32(), from_pandas=True)
    if arrow_type == pa.bool_():
        return pa.array([None if v is None else str(v).lower() == "true" for v in values], type=pa.bool_())
    return pa.array(values, type=pa.string())


class ExtractWriter:
    """Append pages of HubSpot records to one file; `close()` publishes it and returns a summary.

    The file is written under a temporary name beside `path` and moved there by `close()`; `abort()`
    (or an extract that fails) leaves `path` as it was: absent, or the previous complete extract.

    :param path: local path or URI.
    :param file_format: ``parquet``, ``csv`` or ``jsonl``.
    :param schema: property definitions (types of the property columns).
    :param properties: property columns, in order.
    :param associations: object types whose associated ids become ``associations_<type>`` list columns.
    :param properties_with_history: properties whose history becomes ``history_<property>`` columns.
    :param buffer_records: records converted per row group (bounded memory, amortised conversion cost).
    """

    def __init__(
        self,
        path: str,
        file_format: str,
        schema: PropertySchema,
        properties: Sequence[str],
        associations: Sequence[str] = (),
        properties_with_history: Sequence[str] = (),
        buffer_records: int = 5000,
    ) -> None:
        if file_format not in FORMATS:
            raise ValueError(f"file_format must be one of {FORMATS}, got {file_format!r}")
        self.path = str(path)
        self.file_format = file_format
        self.properties = list(properties)
        self.associations = list(associations)
        self.history = list(properties_with_history)
        self.buffer_records = buffer_records
        fields = [pa.field("id", pa.string()), pa.field("createdAt", TIMESTAMP), pa.field("updatedAt", TIMESTAMP),
                  pa.field("archived", pa.bool_()), pa.field("archivedAt", TIMESTAMP)]
        fields += [pa.field(name, pa.string() if is_id_column(name) else schema.arrow_type(name))
                   for name in self.properties]
        fields += [pa.field(f"associations_{kind}", pa.list_(pa.string())) for kind in self.associations]
        fields += [pa.field(f"history_{name}", pa.list_(HISTORY_ENTRY)) for name in self.history]
        self.schema = pa.schema(fields)
        self.records = 0
        self.max_updated_at: str | None = None
        self._buffer: list[dict] = []
        self._publication = Publication(self.path)
        self._handle = self._publication.handle
        self._writer: Any = None
        self._warned_lossy: set[str] = set()

    @property
    def columns(self) -> list[str]:
        """The extract's column names, in order."""
        return self.schema.names

    @property
    def written(self) -> int:
        """Records written so far, buffered ones included."""
        return self.records + len(self._buffer)

    def write_page(self, records: list[dict]) -> None:
        """Buffer a page of ``SimplePublicObject`` records; a row group is written when the buffer is full."""
        self._buffer.extend(records)
        for record in records:
            updated = record.get("updatedAt")
            if updated and (self.max_updated_at is None or updated > self.max_updated_at):
                self.max_updated_at = updated
        if len(self._buffer) >= self.buffer_records:
            self._flush()

    def _table(self, records: list[dict]) -> pa.Table:
        arrays: list[pa.Array] = [
            _ids([r.get("id") for r in records]),
            _timestamps([r.get("createdAt") for r in records]),
            _timestamps([r.get("updatedAt") for r in records]),
            pa.array([bool(r.get("archived", False)) for r in records], type=pa.bool_()),
            _timestamps([r.get("archivedAt") for r in records]),
        ]
        values = [r.get("properties") or {} for r in records]
        for name in self.properties:
            column = [properties.get(name) for properties in values]
            arrow_type = self.schema.field(name).type
            if is_id_column(name):
                arrays.append(_ids(column))
                continue
            if arrow_type == pa.float64():
                self._warn_if_lossy(name, column)
            arrays.append(_column(column, arrow_type))
        for kind in self.associations:
            linked = [((r.get("associations") or {}).get(kind) or {}).get("results", []) for r in records]
            arrays.append(pa.array([[str(item["id"]) for item in items] for items in linked],
                                   type=pa.list_(pa.string())))
        for name in self.history:
            entries = [((r.get("propertiesWithHistory") or {}).get(name) or []) for r in records]
            flat = [entry for row in entries for entry in row]
            stamps = _timestamps([entry.get("timestamp") for entry in flat])
            structs = pa.StructArray.from_arrays(
                [pa.array([e.get("value") for e in flat], type=pa.string()), stamps,
                 pa.array([e.get("sourceType") for e in flat], type=pa.string()),
                 pa.array([e.get("sourceId") for e in flat], type=pa.string())],
                fields=list(HISTORY_ENTRY))
            offsets = [0]
            for row in entries:
                offsets.append(offsets[-1] + len(row))
            arrays.append(pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), structs))
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _warn_if_lossy(self, name: str, values: list[Any]) -> None:
        """Say so (once per column) when a number has more digits than the float64 column can keep."""
        if name in self._warned_lossy:
            return
        text = pd.Series(values, dtype="object").astype("string")
        lossy = text.str.fullmatch(_BEYOND_FLOAT).fillna(False)
        if lossy.any():
            self._warned_lossy.add(name)
            log.warning("number property %s has values such as %s with more digits than a float64 column keeps; "
                        "the extract holds them rounded to about 16 significant digits", name, text[lossy].iloc[0])

    def _flush(self) -> None:
        if not self._buffer:
            return
        table = self._table(self._buffer)
        self.records += len(self._buffer)
        self._buffer = []
        self._append(table)

    def _append(self, table: pa.Table) -> None:
        if self.file_format == "parquet":
            if self._writer is None:
                self._writer = pq.ParquetWriter(self._handle, self.schema)
            self._writer.write_table(table)
        elif self.file_format == "csv":
            table = _flatten_for_csv(table)
            if self._writer is None:
                self._writer = pa_csv.CSVWriter(self._handle, table.schema)
            self._writer.write_table(table)
        else:
            lines = [json.dumps(row, default=_json_default, ensure_ascii=False) for row in table.to_pylist()]
            self._handle.write(("\n".join(lines) + "\n").encode())

    def close(self) -> dict:
        """Flush, close the file and return ``{"path", "records", "columns", "max_updated_at"}``."""
        self._flush()
        if self._writer is None and self.file_format != "jsonl":
            self._append(self.schema.empty_table())  # an empty extract still has its columns
        if self._writer is not None:
            self._writer.close()
        self._publication.commit()
        return {"path": self.path, "records": self.records, "columns": self.columns,
                "max_updated_at": self.max_updated_at}


    def abort(self) -> None:
        """Drop what was written: the final path is left untouched."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        self._publication.abort()

    def __enter__(self) -> ExtractWriter:
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is not None:
            self.abort()


def _flatten_for_csv(table: pa.Table) -> pa.Table:
    """CSV has no list columns: they travel as JSON text."""
    for index, column in enumerate(table.schema):
        if pa.types.is_list(column.type):
            texts = [None if v is None else json.dumps(v, default=_json_default)
                     for v in table.column(index).to_pylist()]
            table = table.set_column(index, pa.field(column.name, pa.string()), pa.array(texts, type=pa.string()))
    return table


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def read_extract(path: str) -> pd.DataFrame:
    """Read a (small) extract back into a DataFrame."""
    kind = format_of(path, default="parquet")
    with open_path(path) as handle:
        if kind == "csv":  # ids as text: pandas would read 7 as int and a column with a gap as float
            header = pd.read_csv(handle, nrows=0).columns
            handle.seek(0)
            # Only an empty cell is NULL (the writer's), not a text value "NA" or "null".
            return pd.read_csv(handle, dtype={name: str for name in header if is_id_column(name)},
                               keep_default_na=False, na_values=[""])
        if kind == "jsonl":
            return pd.read_json(handle, lines=True, dtype=False)  # JSON has its types; "7" stays text
        return pq.read_table(handle).to_pandas()
