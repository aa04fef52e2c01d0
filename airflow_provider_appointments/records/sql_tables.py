"""A SQL table of appointments: its columns typed from HubSpot's property schema, the SQL types and
value forms per database, and the statements a load runs (create, stage, merge by ``id``).

Pure: no connection, no Airflow. Identifiers are quoted by the caller's common-sql ``Dialect``
(``escape_word``), so reserved words are handled the way common-sql handles them elsewhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import pyarrow as pa

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.properties import PropertySchema
from airflow_provider_appointments.records.writers import TIMESTAMP, is_id_column

# The load's own columns; a property of the same name would be ambiguous.
KEY, ARCHIVED, ARCHIVED_AT, LOADED_AT = "id", "archived", "archived_at", "loaded_at"
# Staging rows are numbered in load order: for an id staged twice (modified, then archived) the last wins.
SEQUENCE = "hubspot_load_seq"
_KINDS = {pa.float64(): "number", TIMESTAMP: "datetime", pa.date32(): "date", pa.bool_(): "bool"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


@dataclass(frozen=True)
class Column:
    """A table column: its `kind` (text, number, datetime, date, bool) and the extract column it is
    read from (`source`; None for ``loaded_at``, which the load sets)."""

    name: str
    kind: str
    source: str | None


def appointment_columns(schema: PropertySchema, properties: Sequence[str]) -> list[Column]:
    """``id``, one column per property (typed as the extract types it), ``archived``, ``archived_at``, ``loaded_at``."""
    clashing = sorted({KEY, ARCHIVED, ARCHIVED_AT, LOADED_AT, SEQUENCE} & set(properties))
    if clashing:
        raise HubSpotInputError(f"properties {clashing} have the names of columns the load writes itself")
    columns = [Column(KEY, "text", "id")]
    for name in properties:
        # The extract's rule: ids and *_id numbers are exact text, other properties typed by definition.
        arrow_type = pa.string() if is_id_column(name) else schema.arrow_type(name)
        columns.append(Column(name, _KINDS.get(arrow_type, "text"), name))
    return [*columns, Column(ARCHIVED, "bool", "archived"), Column(ARCHIVED_AT, "datetime", "archivedAt"),
            Column(LOADED_AT, "datetime", None)]


def check_table_name(table: str, parameter: str) -> str:
    """A table name as ``table``, ``schema.table`` or ``database.schema.table`` of plain identifiers."""
    parts = table.split(".")
    if not 1 <= len(parts) <= 3 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise HubSpotInputError(f"{parameter} {table!r} is not a table name: use table, schema.table or "
                                "database.schema.table of letters, digits, _ and $ (not starting with a digit)")
    return table


@dataclass(frozen=True)
class SqlDialect:
    """What a load needs to know of a database beyond what common-sql's ``Dialect`` knows.

    :param types: SQL type per column kind.
    :param key_type: the type of ``id``, a primary key (some databases refuse ``TEXT`` keys).
    :param moments: datetimes are sent ``aware`` (UTC), ``naive`` (UTC wall time) or as ``text``.
    :param dates_as_text: dates are sent as ISO 8601 text (SQLite has no date type).
    :param differs: a null-safe "{a} differs from {b}".
    :param upsert: ``INSERT … ON CONFLICT (id) DO UPDATE``; otherwise delete-then-insert.
    :param begin: opens the merge's transaction; None: the driver opens one (DB-API, autocommit off).
    """

    name: str
    types: Mapping[str, str]
    key_type: str
    moments: str
    dates_as_text: bool
    differs: str
    upsert: bool
    begin: str | None


_STANDARD_TYPES = {"text": "TEXT", "number": "DOUBLE PRECISION", "datetime": "TIMESTAMP", "date": "DATE",
                   "bool": "BOOLEAN"}
GENERIC = SqlDialect("generic", _STANDARD_TYPES, "VARCHAR(64)", "naive", False,
                     "({a} <> {b} OR ({a} IS NULL AND {b} IS NOT NULL) OR ({a} IS NOT NULL AND {b} IS NULL))",
                     upsert=False, begin=None)
DIALECTS = {
    "postgresql": SqlDialect("postgresql", {**_STANDARD_TYPES, "datetime": "TIMESTAMP WITH TIME ZONE"}, "TEXT",
                             "aware", False, "{a} IS DISTINCT FROM {b}", upsert=True, begin=None),
    "duckdb": SqlDialect("duckdb", {**_STANDARD_TYPES, "text": "VARCHAR", "number": "DOUBLE",
                                    "datetime": "TIMESTAMPTZ"}, "VARCHAR", "aware", False,
                         "{a} IS DISTINCT FROM {b}", upsert=True, begin="BEGIN TRANSACTION"),
    # Declared types give SQLite's affinities; moments are ISO 8601 UTC text, which its date functions read.
    "sqlite": SqlDialect("sqlite", {**_STANDARD_TYPES, "number": "REAL"}, "TEXT", "text", True,
                         "{a} IS NOT {b}", upsert=True, begin="BEGIN IMMEDIATE"),
}
DIALECTS["postgres"] = DIALECTS["postgresql"]


def dialect_for(name: str) -> SqlDialect:
    """The dialect of a common-sql hook's ``dialect_name``; others get the generic one (ANSI types,
    delete-then-insert)."""
    return DIALECTS.get(name.lower(), GENERIC)


class LoadStatements:
    """The SQL of one load of `columns` into `table` through `staging`.

    :param quote: quotes an identifier where needed (common-sql's ``Dialect.escape_word``).
    """

    def __init__(self, table: str, staging: str, columns: Sequence[Column], dialect: SqlDialect,
                 quote: Callable[[str], str]) -> None:
        self.table, self.staging, self.columns, self.dialect = table, staging, list(columns), dialect
        self.quote = quote
        self.names = [quote(column.name) for column in self.columns]
        self.key, self.sequence = quote(KEY), quote(SEQUENCE)
        # A row that differs only in loaded_at has not changed: re-running a window changes nothing.
        self.compared = [quote(column.name) for column in self.columns if column.name not in (KEY, LOADED_AT)]

    def sql_type(self, column: Column) -> str:
        return self.dialect.key_type if column.name == KEY else self.dialect.types[column.kind]

    def create_table(self) -> str:
        body = ", ".join(f"{name} {self.sql_type(column)}" + (" PRIMARY KEY" if column.name == KEY else "")
                         for name, column in zip(self.names, self.columns))
        return f"CREATE TABLE IF NOT EXISTS {self.table} ({body})"

    def probe(self) -> str:
        """Selects no row: its cursor's description names the table's columns."""
        return f"SELECT * FROM {self.table} WHERE 1 = 0"

    def add_column(self, column: Column) -> str:
        return f"ALTER TABLE {self.table} ADD COLUMN {self.quote(column.name)} {self.sql_type(column)}"

    def create_staging(self) -> str:
        body = ", ".join(f"{name} {self.sql_type(column)}" for name, column in zip(self.names, self.columns))
        return f"CREATE TABLE {self.staging} ({body}, {self.sequence} BIGINT)"

    def drop_staging(self) -> str:
        return f"DROP TABLE IF EXISTS {self.staging}"

    @property
    def staged_fields(self) -> list[str]:
        """The staging table's column names, unquoted, in the order `rows_of` gives values."""
        return [*(column.name for column in self.columns), SEQUENCE]

    def _latest(self, alias: str) -> str:
        """Only the last staged row of each id."""
        return f"{alias}.{self.sequence} IN (SELECT MAX({self.sequence}) FROM {self.staging} GROUP BY {self.key})"

    def _differs(self, left: str, right: str) -> str:
        return " OR ".join(self.dialect.differs.format(a=f"{left}.{name}", b=f"{right}.{name}")
                           for name in self.compared)

    def count_staged(self) -> str:
        return f"SELECT COUNT(DISTINCT {self.key}) FROM {self.staging}"

    def count_new(self) -> str:
        return (f"SELECT COUNT(*) FROM {self.staging} staged WHERE {self._latest('staged')} AND NOT EXISTS "
                f"(SELECT 1 FROM {self.table} target_row WHERE target_row.{self.key} = staged.{self.key})")

    def count_changed(self) -> str:
        return (f"SELECT COUNT(*) FROM {self.staging} staged JOIN {self.table} target_row "
                f"ON target_row.{self.key} = staged.{self.key} "
                f"WHERE {self._latest('staged')} AND ({self._differs('target_row', 'staged')})")

    def merge(self) -> list[str]:
        """The merge, to run in one transaction: an upsert that rewrites only changed rows, or (generic)
        deleting the changed rows, then inserting every staged row the table lacks."""
        names = ", ".join(self.names)
        selected = ", ".join(f"staged.{name}" for name in self.names)
        if self.dialect.upsert:
            updates = ", ".join(f"{name} = excluded.{name}" for name in self.names if name != self.key)
            return [f"INSERT INTO {self.table} AS target_row ({names}) SELECT {selected} FROM {self.staging} staged "
                    f"WHERE {self._latest('staged')} ON CONFLICT ({self.key}) DO UPDATE SET {updates} "
                    f"WHERE {self._differs('target_row', 'excluded')}"]
        return [f"DELETE FROM {self.table} WHERE EXISTS (SELECT 1 FROM {self.staging} staged "
                f"WHERE staged.{self.key} = {self.table}.{self.key} AND {self._latest('staged')} "
                f"AND ({self._differs(self.table, 'staged')}))",
                f"INSERT INTO {self.table} ({names}) SELECT {selected} FROM {self.staging} staged "
                f"WHERE {self._latest('staged')} AND NOT EXISTS "
                f"(SELECT 1 FROM {self.table} target_row WHERE target_row.{self.key} = staged.{self.key})"]


def missing_columns(columns: Sequence[Column], existing: Sequence[str]) -> list[Column]:
    """The columns a table lacks (names compared case-insensitively: databases fold unquoted names)."""
    present = {name.casefold() for name in existing}
    return [column for column in columns if column.name.casefold() not in present]


def rows_of(batch: pa.RecordBatch, columns: Sequence[Column], dialect: SqlDialect, loaded_at: datetime,
            first: int) -> list[tuple]:
    """An extract's record batch as staging rows: NaN, NaT and empty text are NULL, moments UTC in the
    database's form, and each row ends with its load sequence number (`first`, `first` + 1, …)."""
    values = []
    for column in columns:
        if column.source is None:
            values.append([_moment(loaded_at, dialect)] * batch.num_rows)
        else:
            values.append([_value(item, column.kind, dialect) for item in batch.column(column.source).to_pylist()])
    values.append(list(range(first, first + batch.num_rows)))
    return list(zip(*values))


def _value(item: Any, kind: str, dialect: SqlDialect) -> Any:
    if item is None:
        return None
    if kind == "number":
        return None if math.isnan(item) else float(item)
    if kind == "datetime":
        return _moment(item, dialect)
    if kind == "date" and isinstance(item, date):
        return item.isoformat() if dialect.dates_as_text else item
    if kind == "text" and item == "":
        return None
    return item


def _moment(moment: datetime, dialect: SqlDialect) -> Any:
    utc = moment.astimezone(timezone.utc)
    if dialect.moments == "aware":
        return utc
    naive = utc.replace(tzinfo=None)
    return naive.isoformat(sep=" ", timespec="milliseconds") if dialect.moments == "text" else naive
