"""Loading extracts into a SQL table over one DB-API connection: ensure the table, stage the extracts
in chunks, merge the staged rows by ``id`` in one transaction, drop the staging table.

The target changes only in the merge's transaction: a load killed before its commit leaves the table
as it was (the database rolls back), one killed after leaves it fully merged. The staging table is
dropped at the end and before staging (a killed try's leftover goes with the retry).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow.parquet as pq

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.sql_tables import LoadStatements, missing_columns, rows_of
from airflow_provider_appointments.records.storage import open_path


@dataclass(frozen=True)
class MergeCounts:
    """What a merge did: distinct ids staged, of which new (inserted) and changed (updated); the others
    were equal to the table's rows and left alone."""

    staged: int
    inserted: int
    updated: int

    @property
    def unchanged(self) -> int:
        return self.staged - self.inserted - self.updated


class SqlLoad:
    """One load into `statements.table` through `statements.staging` on `connection`.

    :param insert_sql: the staging insert (one row of placeholders), as common-sql generates it.
    :param chunk_rows: rows read from an extract and inserted per ``executemany``.
    """

    def __init__(self, connection: Any, statements: LoadStatements, insert_sql: str, chunk_rows: int) -> None:
        self.connection = connection
        self.statements = statements
        self.dialect = statements.dialect
        self.insert_sql = insert_sql
        self.chunk_rows = chunk_rows
        self.cursor = connection.cursor()

    def execute(self, sql: str, rows: Sequence[tuple] | None = None) -> Any:
        if rows is None:
            self.cursor.execute(sql)
        else:
            self.cursor.executemany(sql, rows)
        return self.cursor

    def scalar(self, sql: str) -> int:
        return int(self.execute(sql).fetchone()[0])

    def ensure_table(self) -> bool:
        """Create the table when missing; refuse one that lacks columns, naming them. True if it was created."""
        existing = self.existing_columns()
        created = existing is None
        if existing is None:
            self.execute(self.statements.create_table())
            self.connection.commit()
            existing = self.existing_columns()  # read back: a table we may not read is not "missing"
            if existing is None:
                raise HubSpotInputError(f"table {self.statements.table} cannot be read after creating it")
        missing = missing_columns(self.statements.columns, existing)
        loaded = {column.name.casefold() for column in self.statements.columns}
        others = [name for name in existing if name.casefold() not in loaded]
        if others and not self.statements.dialect.upsert:  # delete-then-insert would empty those columns
            raise HubSpotInputError(
                f"table {self.statements.table} has columns the load does not write ({', '.join(others)}); on this "
                f"database ({self.statements.dialect.name}) the merge deletes and re-inserts changed rows, which "
                "would empty them. Load into a table of its own and join, or add the properties to `properties`")
        if missing:
            names = ", ".join(column.name for column in missing)
            fixes = "; ".join(self.statements.add_column(column) for column in missing)
            raise HubSpotInputError(
                f"table {self.statements.table} has no column(s) {names}, which the load writes. Add them "
                f"({fixes}), or leave the properties out of `properties`")
        return created

    def existing_columns(self) -> list[str] | None:
        """The table's column names, None when there is no such table."""
        try:
            cursor = self.execute(self.statements.probe())
            names = [str(column[0]) for column in cursor.description or ()]
            cursor.fetchall()
        except Exception:  # the table is missing (each driver has its own error type for it)
            self.rollback()
            return None
        self.connection.commit()
        return names

    def stage(self, paths: Sequence[str], loaded_at: datetime) -> int:
        """(Re)create the staging table and insert the extracts' rows, in files' order; the rows staged."""
        self.execute(self.statements.drop_staging())
        self.execute(self.statements.create_staging())
        self.connection.commit()
        staged = 0
        for path in paths:
            with open_path(path) as handle:
                sources = [column.source for column in self.statements.columns if column.source]
                for batch in pq.ParquetFile(handle).iter_batches(batch_size=self.chunk_rows, columns=sources):
                    rows = rows_of(batch, self.statements.columns, self.dialect, loaded_at, staged)
                    if rows:
                        self.execute(self.insert_sql, rows)
                        self.connection.commit()
                    staged += len(rows)
        return staged

    def merge(self) -> MergeCounts:
        """Merge the staged rows into the table in one transaction (counted in it, before the merge)."""
        try:
            if self.dialect.begin:
                self.execute(self.dialect.begin)
            counts = MergeCounts(self.scalar(self.statements.count_staged()),
                                 self.scalar(self.statements.count_new()),
                                 self.scalar(self.statements.count_changed()))
            for statement in self.statements.merge():
                self.execute(statement)
            self.commit()
        except BaseException:
            self.rollback()
            raise
        return counts

    def commit(self) -> None:
        # Where the load opened the transaction with a statement, it ends it with one: DuckDB's cursor
        # is a connection of its own, whose transaction the connection's commit() would not end.
        if self.dialect.begin:
            self.execute("COMMIT")
        else:
            self.connection.commit()

    def rollback(self) -> None:
        with contextlib.suppress(Exception):
            if self.dialect.begin:
                self.execute("ROLLBACK")
            else:
                self.connection.rollback()

    def drop_staging(self) -> None:
        with contextlib.suppress(Exception):
            self.execute(self.statements.drop_staging())
            self.connection.commit()

    def close(self) -> None:
        for closable in (self.cursor, self.connection):
            with contextlib.suppress(Exception):
                closable.close()
