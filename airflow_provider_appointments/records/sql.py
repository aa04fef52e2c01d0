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

import contextlib
import hashlib
import io
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
            if cursor.description is None:
                raise HubSpotInputError(f"{self}: the statement returns no rows (is it a SELECT?)")
            names = [str(column[0]) for column in cursor.description]
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise HubSpotInputError(f"{self}: the query returns the column(s) {', '.join(repeated)} more than "
                                        "once; give each an alias")
            start = 0
            while True:
                rows = cursor.fetchmany(chunk_rows)
                if not rows:
                    break
                yield start, frame_from_rows(names, rows)
                start += len(rows)
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
    """A copy of a `SqlSource`'s answer in a folder: its chunks, read back in order."""

    source: SqlSource
    folder: str
    chunks: int
    rows: int

    def __str__(self) -> str:
        return str(self.source)

    def iter_frames(self, columns: list[str] | None = None) -> Iterator[tuple[int, pd.DataFrame]]:
        start = 0
        for number in range(self.chunks):
            with open_path(_chunk_path(self.folder, number)) as handle:
                table = pq.read_table(io.BytesIO(handle.read()))
            if columns:
                present = [name for name in columns if name in table.column_names]
                table = table.select(present) if present else table
            frame = _from_arrow(table)
            yield start, frame
            start += len(frame)


def _chunk_path(folder: str, number: int) -> str:
    return f"{folder}/{CHUNK_PREFIX}{number:06d}.parquet"


def materialize(source: SqlSource, folder: str, chunk_rows: int) -> MaterializedSource:
    """Copy the query's answer into `folder`, or reuse the copy an earlier try of the task made."""
    marker = f"{folder}/{COMPLETE}"
    identity = source.identity()
    with contextlib.suppress(HubSpotInputError, FileNotFoundError, ValueError):
        with open_path(marker) as handle:
            saved = json.loads(handle.read())
        if saved.get("identity") == identity:
            return MaterializedSource(source, folder, int(saved["chunks"]), int(saved["rows"]))
    chunks = rows = 0
    for _, frame in source.iter_frames(chunk_rows):
        with published(_chunk_path(folder, chunks)) as handle:
            buffer = io.BytesIO()
            pq.write_table(_to_arrow(frame), buffer)
            handle.write(buffer.getvalue())
        chunks, rows = chunks + 1, rows + len(frame)
    with published(marker) as handle:  # last: chunks without a marker are an unfinished copy
        handle.write(json.dumps({"identity": identity, "chunks": chunks, "rows": rows}).encode())
    return MaterializedSource(source, folder, chunks, rows)


def clear_materialized(folder: str) -> None:
    """Remove a copy (the task succeeded): the marker first, so a half-removed copy is never reused."""
    remove(f"{folder}/{COMPLETE}")
    target = location(folder)
    if target.exists():
        for item in target.iterdir():
            if item.name.startswith((CHUNK_PREFIX, f".{CHUNK_PREFIX}", f".{COMPLETE}")):
                remove(f"{folder}/{item.name}")


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    """A chunk as Arrow, each column with the type pandas gave it; a column Arrow cannot hold as is
    (integers beyond 64 bits, mixed types) is kept as the text of each value, which serializes alike."""
    columns = {}
    for name in frame.columns:
        series = frame[name]
        try:
            columns[str(name)] = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            columns[str(name)] = pa.array([None if _missing(value) else str(value) for value in series.tolist()],
                                          type=pa.string())
    return pa.table(columns)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and value != value


def _from_arrow(table: pa.Table) -> pd.DataFrame:
    """Integers come back as nullable Int64 (not float64, where large ids would lose digits)."""
    integers = {pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32()}
    return table.to_pandas(types_mapper=lambda kind: pd.Int64Dtype() if kind in integers else None)
