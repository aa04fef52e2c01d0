"""SQL sources for the write operators: ``sql=`` read through any Airflow connection whose hook is a
common-sql `DbApiHook` (PostgreSQL, Snowflake, BigQuery, SQLite, DuckDB …), in chunks, never whole.

Rows are fetched with the cursor's ``fetchmany`` and become DataFrames by the same rules as a list of
dicts (``readers._frame_from_dicts``): an integer column with NULLs keeps its digits, NaN stays missing.
On PostgreSQL (psycopg 2 or 3) the cursor is a named, server-side one, so the database streams too.

A query read twice may answer differently (rows inserted in between, no ``ORDER BY``), while a
checkpoint remembers rows by their number. So a run with a checkpoint first copies the answer into the
checkpoint's folder (`materialize`: one Parquet file per chunk, then a marker naming them), and every
pass and every retry of the task reads that copy: a retry resumes on exactly the rows the killed try saw.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import decimal
import hashlib
import io
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.storage import location, open_path, published, remove

COMPLETE = "source.complete.json"
CHUNK_PREFIX = "source-"


@dataclass(frozen=True)
class SqlSource:
    """A query on an Airflow connection, as the input of a write operator.

    :param sql: the query (rendered; a single statement).
    :param conn_id: an Airflow connection whose hook is a common-sql ``DbApiHook``.
    :param parameters: bind parameters for the query, as the database's driver takes them.
    """

    sql: str
    conn_id: str
    parameters: Mapping[str, Any] | Sequence[Any] | None = None

    def __str__(self) -> str:
        return f"sql on {self.conn_id}: {' '.join(self.sql.split())[:200]}"

    def identity(self) -> str:
        """What a copy of this source's answer is valid for (the same query, parameters and connection)."""
        text = json.dumps([self.sql, self.conn_id, self.parameters], default=str, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def hook(self) -> Any:
        from airflow.providers.common.sql.hooks.sql import DbApiHook
        from airflow.sdk import BaseHook

        hook = BaseHook.get_connection(self.conn_id).get_hook()
        if not isinstance(hook, DbApiHook):
            raise HubSpotInputError(f"sql_conn_id {self.conn_id!r}: its hook ({type(hook).__name__}) is not a "
                                    "common-sql DbApiHook, so it cannot run a query")
        return hook

    def lineage_tables(self) -> list[tuple[str, str]]:
        """(namespace, name) of each table the query reads, by OpenLineage's naming (the connection's
        ``scheme://authority``); empty when the query cannot be parsed."""
        names = self.tables()
        if not names:
            return []
        hook = self.hook()
        connection = hook.get_connection(self.conn_id)
        info = None
        with contextlib.suppress(Exception):
            info = hook.get_openlineage_database_info(connection)
        if info is not None and getattr(info, "scheme", None):
            namespace = f"{info.scheme}://{info.authority}" if getattr(info, "authority", None) else info.scheme
        else:
            namespace = f"{connection.conn_type}://{connection.host or self.conn_id}"
        return [(namespace, name) for name in names]

    def tables(self) -> list[str]:
        """The tables the query reads, for lineage (empty when the OpenLineage SQL parser is absent)."""
        try:
            from openlineage_sql import parse
        except ImportError:
            return []
        try:
            parsed = parse([self.sql])
        except Exception:  # lineage is a courtesy; a query the parser cannot read still runs
            return []
        return [".".join(part for part in (table.database, table.schema, table.name) if part)
                for table in parsed.in_tables]

    def iter_frames(self, chunk_rows: int) -> Iterator[tuple[int, pd.DataFrame]]:
        """``(first row, chunk)`` of the query's answer, `chunk_rows` rows at a time."""
        from airflow_provider_appointments.records.readers import frame_from_rows

        connection = self.hook().get_conn()
        try:
            cursor = _cursor(connection)
            try:
                cursor.execute(self.sql, self.parameters) if self.parameters is not None else cursor.execute(self.sql)
            except Exception as exc:
                raise HubSpotInputError(f"{self}: the query failed: {type(exc).__name__}: {exc}") from exc
            try:  # a named (server-side) cursor describes its columns only once it has fetched
                rows = cursor.fetchmany(chunk_rows)
            except Exception as exc:
                raise HubSpotInputError(f"{self}: the statement returns no rows to read (is it a SELECT?): "
                                        f"{type(exc).__name__}: {exc}") from exc
            if cursor.description is None:
                raise HubSpotInputError(f"{self}: the statement returns no rows (is it a SELECT?)")
            names = [str(column[0]) for column in cursor.description]
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise HubSpotInputError(f"{self}: the query returns the column(s) {', '.join(repeated)} more than "
                                        "once; give each an alias")
            start = 0
            while rows:
                yield start, frame_from_rows(names, rows)
                start += len(rows)
                rows = cursor.fetchmany(chunk_rows)
            with contextlib.suppress(Exception):
                cursor.close()
        finally:
            with contextlib.suppress(Exception):
                connection.close()


def _cursor(connection: Any) -> Any:
    """A server-side cursor where the driver has one (psycopg 2 and 3), else the plain cursor."""
    if type(connection).__module__.split(".")[0] in ("psycopg2", "psycopg"):
        return connection.cursor(name=f"hubspot_source_{uuid.uuid4().hex[:8]}")
    return connection.cursor()


@dataclass(frozen=True)
class MaterializedSource:
    """A copy of a `SqlSource`'s answer in a folder: its chunks, read back in order.

    :param generation: names this copy's chunk files (a new copy never overwrites the one in use).
    :param digest: of the copy's content: equal answers have equal digests.
    """

    source: SqlSource
    folder: str
    chunks: int
    rows: int
    generation: str = ""
    digest: str = ""

    def __str__(self) -> str:
        return str(self.source)

    def iter_frames(self, columns: list[str] | None = None) -> Iterator[tuple[int, pd.DataFrame]]:
        start = 0
        for number in range(self.chunks):
            with open_path(_chunk_path(self.folder, self.generation, number)) as handle:
                table = pq.read_table(io.BytesIO(handle.read()))
            if columns:
                present = [name for name in columns if name in table.column_names]
                table = table.select(present) if present else table
            frame = _from_arrow(table)
            yield start, frame
            start += len(frame)


def _chunk_path(folder: str, generation: str, number: int) -> str:
    return f"{folder}/{CHUNK_PREFIX}{generation}-{number:06d}.parquet"


def _saved_copy(source: SqlSource, folder: str) -> MaterializedSource | None:
    with contextlib.suppress(HubSpotInputError, FileNotFoundError, ValueError, KeyError):
        with open_path(f"{folder}/{COMPLETE}") as handle:
            saved = json.loads(handle.read())
        if saved.get("identity") == source.identity():
            return MaterializedSource(source, folder, int(saved["chunks"]), int(saved["rows"]),
                                      str(saved["generation"]), str(saved["digest"]))
    return None


def materialize(source: SqlSource, folder: str, chunk_rows: int, *, reuse: bool = False) -> MaterializedSource:
    """Copy the query's answer into `folder`.

    :param reuse: keep the copy an earlier try made, without running the query (a try was killed
        with requests in flight: its retry must see exactly those rows). Otherwise the query runs;
        an answer equal to the earlier copy keeps that copy (and its digest, so the checkpoint's windows
        stay valid), a different one replaces it.
    """
    previous = _saved_copy(source, folder)
    if reuse and previous is not None:
        return previous
    generation = uuid.uuid4().hex[:8]
    digest = hashlib.sha256()
    chunks = rows = 0
    for _, frame in source.iter_frames(chunk_rows):
        buffer = io.BytesIO()
        pq.write_table(_to_arrow(frame), buffer)
        content = buffer.getvalue()
        digest.update(content)
        with published(_chunk_path(folder, generation, chunks)) as handle:
            handle.write(content)
        chunks, rows = chunks + 1, rows + len(frame)
    copy = MaterializedSource(source, folder, chunks, rows, generation, digest.hexdigest()[:32])
    if previous is not None and previous.digest == copy.digest and previous.chunks == copy.chunks:
        _remove_generation(folder, generation)  # the same answer: the copy in use stays
        return previous
    with published(f"{folder}/{COMPLETE}") as handle:  # last: chunks without a marker are an unfinished copy
        handle.write(json.dumps({"identity": source.identity(), "chunks": chunks, "rows": rows,
                                 "generation": generation, "digest": copy.digest}).encode())
    if previous is not None:
        _remove_generation(folder, previous.generation)
    return copy


def _remove_generation(folder: str, generation: str) -> None:
    target = location(folder)
    if target.exists():
        for item in target.iterdir():
            if item.name.startswith(f"{CHUNK_PREFIX}{generation}-"):
                remove(f"{folder}/{item.name}")


def clear_materialized(folder: str) -> None:
    """Remove a copy (the task succeeded): the marker first, so a half-removed copy is never reused."""
    remove(f"{folder}/{COMPLETE}")
    target = location(folder)
    if target.exists():
        for item in target.iterdir():
            if item.name.startswith((CHUNK_PREFIX, f".{CHUNK_PREFIX}", f".{COMPLETE}")):
                remove(f"{folder}/{item.name}")


# A copied column whose values Arrow cannot hold as they are: each value as tagged JSON (`_tag`).
TAGGED = b"hubspot_tagged"


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    """A chunk as Arrow, exactly: typed columns (integers, floats, booleans, datetimes) as they are, text
    as text, and any other column of Python objects (decimals, integers beyond 64 bits, JSON documents,
    arrays, mixed values) value by value as tagged JSON, so reading the copy gives back the same values
    the query gave (`_from_arrow`) and they serialize, and hash, as they would have without a copy."""
    fields, arrays = [], []
    for name in frame.columns:
        series = frame[name]
        kind = pd.api.types.infer_dtype(series, skipna=True) if series.dtype == object else None
        if series.dtype != object or kind in ("string", "empty"):
            try:
                array = pa.array(series, from_pandas=True) if kind is None else \
                    pa.array([value if isinstance(value, str) else None for value in series.tolist()], pa.string())
                fields.append(pa.field(str(name), array.type))
                arrays.append(array)
                continue
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                pass
        arrays.append(pa.array([json.dumps(_tag(value)) for value in series.tolist()], pa.string()))
        fields.append(pa.field(str(name), pa.string(), metadata={TAGGED: b"1"}))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _from_arrow(table: pa.Table) -> pd.DataFrame:
    """Integers come back as nullable Int64 (not float64, where large ids would lose digits)."""
    integers = {pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32()}
    tagged = [field.name for field in table.schema if field.metadata and field.metadata.get(TAGGED)]
    plain = table.drop_columns(tagged) if tagged else table
    frame = plain.to_pandas(types_mapper=lambda kind: pd.Int64Dtype() if kind in integers else None)
    for name in tagged:
        values = [_untag(json.loads(text)) for text in table.column(name).to_pylist()]
        frame[name] = pd.Series(values, dtype=object, index=frame.index)
    return frame[table.column_names]


def _tag(value: Any) -> Any:
    """A Python value a database driver gives, as JSON that `_untag` turns back into an equal value."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, datetime.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"date": value.isoformat()}
    if isinstance(value, datetime.time):
        return {"time": value.isoformat()}
    if isinstance(value, datetime.timedelta):
        return {"timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if isinstance(value, (list, tuple)):
        return {"list" if isinstance(value, list) else "tuple": [_tag(item) for item in value]}
    if isinstance(value, dict):
        return {"dict": [[_tag(key), _tag(item)] for key, item in value.items()]}
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return _tag(value.item())
    return {"text": str(value)}  # anything else serializes as its text in any case


def _untag(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    (kind, body), = value.items()
    readers: dict[str, Any] = {
        "int": int, "float": float, "decimal": decimal.Decimal, "datetime": datetime.datetime.fromisoformat,
        "date": datetime.date.fromisoformat, "time": datetime.time.fromisoformat, "uuid": uuid.UUID,
        "text": str, "bytes": base64.b64decode,
        "timedelta": lambda parts: datetime.timedelta(days=parts[0], seconds=parts[1], microseconds=parts[2]),
        "list": lambda items: [_untag(item) for item in items],
        "tuple": lambda items: tuple(_untag(item) for item in items),
        "dict": lambda pairs: {_untag(key): _untag(item) for key, item in pairs},
    }
    return readers[kind](body)
