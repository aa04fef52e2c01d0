"""The SQL load without Airflow or HubSpot: value conversion per dialect, and the merge on a plain
sqlite3 connection, upsert and delete-then-insert (the generic dialect), failed and killed midway."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_appointments.records.properties import PropertyDefinition, PropertySchema
from airflow_provider_appointments.records.sql_load import SqlLoad
from airflow_provider_appointments.records.sql_tables import (
    DIALECTS,
    GENERIC,
    LoadStatements,
    appointment_columns,
    dialect_for,
    rows_of,
)
from airflow_provider_appointments.records.writers import ExtractWriter
from tests.conftest import REPO_ROOT

SCHEMA = PropertySchema([PropertyDefinition("name", "Name", "string", "text"),
                         PropertyDefinition("minutes", "Minutes", "number", "number"),
                         PropertyDefinition("start", "Start", "datetime", "date"),
                         PropertyDefinition("day", "Day", "date", "date")])
PROPERTIES = ["name", "minutes", "start", "day"]
COLUMNS = appointment_columns(SCHEMA, PROPERTIES)
LOADED_AT = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
# SQLite as the generic dialect sees a database: delete-then-insert, no statement to begin with.
SQLITE_GENERIC = replace(GENERIC, moments="text", dates_as_text=True)


def record(record_id: str, name: str | None, *, archived: bool = False) -> dict:
    return {"id": record_id, "archived": archived, "archivedAt": "2026-11-30T08:00:00Z" if archived else None,
            "properties": {"name": name, "minutes": "30", "start": "2026-12-03T09:30:00.000Z", "day": "2026-12-03"}}


def extract(path: Path, records: list[dict]) -> str:
    writer = ExtractWriter(str(path), "parquet", SCHEMA, PROPERTIES)
    writer.write_page(records)
    return writer.close()["path"]


def statements(dialect) -> LoadStatements:
    return LoadStatements("appointments", "appointments_staging", COLUMNS, dialect, lambda word: word)


def insert_sql(load_statements: LoadStatements) -> str:
    fields = load_statements.staged_fields
    return f"INSERT INTO {load_statements.staging} ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})"


def run_load(database: Path, dialect, paths: list[str]):
    sql = statements(dialect)
    load = SqlLoad(sqlite3.connect(database), sql, insert_sql(sql), chunk_rows=2)
    try:
        load.ensure_table()
        load.stage(paths, LOADED_AT)
        counts = load.merge()
        return counts.staged, counts.inserted, counts.updated
    finally:
        load.drop_staging()
        load.close()


def table(database: Path) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT id, name, archived, archived_at FROM appointments ORDER BY id").fetchall()


def test_values_take_each_databases_form():
    batch = pa.record_batch({"id": ["1", "2"], "name": ["", 'a "b" {c}'], "minutes": [math.nan, 20.5],
                             "start": pa.array([datetime(2026, 12, 3, 9, 30, tzinfo=timezone.utc), None],
                                               pa.timestamp("ms", tz="UTC")),
                             "day": [date(2026, 12, 3), None], "archived": [False, True],
                             "archivedAt": pa.array([None, 0], pa.timestamp("ms", tz="UTC"))})
    sqlite_rows = rows_of(batch, COLUMNS, dialect_for("sqlite"), LOADED_AT, first=7)
    assert sqlite_rows[0] == ("1", None, None, "2026-12-03 09:30:00.000", "2026-12-03", False, None,
                              "2026-12-01 12:00:00.000", 7)
    assert sqlite_rows[1][1:3] == ('a "b" {c}', 20.5) and sqlite_rows[1][-1] == 8
    postgres = rows_of(batch, COLUMNS, dialect_for("postgresql"), LOADED_AT, first=0)[0]
    assert postgres[3] == datetime(2026, 12, 3, 9, 30, tzinfo=timezone.utc) and postgres[4] == date(2026, 12, 3)
    generic = rows_of(batch, COLUMNS, dialect_for("mssql"), LOADED_AT, first=0)[0]
    assert generic[3] == datetime(2026, 12, 3, 9, 30) and generic[3].tzinfo is None  # naive UTC
    assert dialect_for("mssql") is GENERIC and dialect_for("DuckDB") is DIALECTS["duckdb"]


@pytest.mark.parametrize("dialect", [DIALECTS["sqlite"], SQLITE_GENERIC], ids=["upsert", "delete-then-insert"])
def test_the_merge_inserts_updates_and_leaves_equal_rows_alone_and_the_last_staged_row_wins(tmp_path, dialect):
    database = tmp_path / "w.db"
    first = extract(tmp_path / "a.parquet", [record("1", "one"), record("2", "two"), record("3", "three")])
    assert run_load(database, dialect, [first]) == (3, 3, 0)
    modified = extract(tmp_path / "b.parquet", [record("1", "one"), record("2", "TWO"), record("4", "four")])
    archived = extract(tmp_path / "c.parquet", [record("4", "four", archived=True)])  # staged after: it wins
    assert run_load(database, dialect, [modified, archived]) == (3, 1, 1)  # 1 unchanged
    assert table(database) == [("1", "one", 0, None), ("2", "TWO", 0, None), ("3", "three", 0, None),
                               ("4", "four", 1, "2026-11-30 08:00:00.000")]
    assert run_load(database, dialect, [modified, archived]) == (3, 0, 0)


def test_a_failing_insert_after_the_delete_rolls_the_delete_back(tmp_path):
    database = tmp_path / "w.db"
    run_load(database, SQLITE_GENERIC, [extract(tmp_path / "a.parquet", [record("1", "one"), record("2", "two")])])
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TRIGGER refuse BEFORE INSERT ON appointments WHEN NEW.id = '2' "
                           "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    changed = extract(tmp_path / "b.parquet", [record("1", "ONE"), record("2", "TWO")])
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        run_load(database, SQLITE_GENERIC, [changed])  # deletes both changed rows, then fails re-inserting
    assert table(database) == [("1", "one", 0, None), ("2", "two", 0, None)]


KILLED_MERGE = """
import os, sqlite3, sys
from tests.records.test_sql_load import DIALECTS, SQLITE_GENERIC, SqlLoad, LOADED_AT, insert_sql, statements
database, path, kind = sys.argv[1:]
sql = statements(DIALECTS["sqlite"] if kind == "upsert" else SQLITE_GENERIC)
connection = sqlite3.connect(database)
connection.create_function("die", 0, lambda: os.kill(os.getpid(), 9))
load = SqlLoad(connection, sql, insert_sql(sql), chunk_rows=2)
load.stage([path], LOADED_AT)
load.merge()
"""


@pytest.mark.parametrize("kind, trigger", [
    ("upsert", "BEFORE UPDATE ON appointments WHEN NEW.id = '3'"),  # after rows 1 and 2 were rewritten
    ("delete-then-insert", "BEFORE INSERT ON appointments WHEN NEW.id = '1'"),  # after the delete
])
def test_a_merge_killed_midway_leaves_the_table_as_it_was(tmp_path, kind, trigger):
    database = tmp_path / "w.db"
    run_load(database, SQLITE_GENERIC, [extract(tmp_path / "a.parquet",
                                                [record(str(n), f"old {n}") for n in (1, 2, 3)])])
    before = table(database)
    with sqlite3.connect(database) as connection:
        connection.execute(f"CREATE TRIGGER kill {trigger} BEGIN SELECT die(); END")
    changed = extract(tmp_path / "b.parquet", [record(str(n), f"new {n}") for n in (1, 2, 3)])
    done = subprocess.run([sys.executable, "-c", KILLED_MERGE, str(database), changed, kind], cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    assert table(database) == before
