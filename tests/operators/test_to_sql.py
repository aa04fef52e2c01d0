"""The extract-and-load operator against the simulator over HTTP, into SQLite through Airflow's sqlite
provider, DuckDB through the duckdb provider and (when its binaries are installed) a throwaway PostgreSQL
through the postgres provider."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsToSqlOperator
from tests.operators.test_operators import _TI

START = datetime(2020, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def sim(hubspot_simulator_factory, monkeypatch):
    simulator = hubspot_simulator_factory(seed_appointments=60)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", simulator.airflow_connection_json())
    return simulator


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> Path:
    """An empty SQLite database as the connection `warehouse`."""
    path = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


def load(after: datetime = START, before: datetime | None = None, **arguments) -> dict:
    """Load the window [after, before) (default: up to now) into `appointments` on `warehouse`."""
    settings = {"sql_conn_id": "warehouse", "table": "appointments", "search_lag": 0,
                "modified_after": after.isoformat(),
                "modified_before": (before or datetime.now(timezone.utc)).isoformat(), **arguments}
    return HubSpotAppointmentsToSqlOperator(task_id="load", **settings).execute({"ti": _TI()})


def rows(path: Path, table: str = "appointments") -> list[tuple]:
    with sqlite3.connect(path) as connection:
        return connection.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


def by_id(path: Path, *columns: str) -> dict[str, tuple]:
    with sqlite3.connect(path) as connection:
        found = connection.execute(f"SELECT id, {', '.join(columns)} FROM appointments").fetchall()
    return {row[0]: row[1:] for row in found}


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def active_ids(sim) -> set[str]:
    return {str(record.id) for record in sim.store.appointments(include_archived=False)}


def later() -> datetime:
    """A window end past every write so far (the store's clock has millisecond steps)."""
    time.sleep(0.005)
    return datetime.now(timezone.utc)


def test_a_missing_table_is_created_typed_from_the_property_schema_and_every_record_loaded(sim, warehouse):
    result = load()
    expected = active_ids(sim) | {str(r.id) for r in sim.store.appointments() if r.archived}
    with sqlite3.connect(warehouse) as connection:
        types = {row[1]: (row[2], row[5]) for row in connection.execute("PRAGMA table_info(appointments)")}
    assert types["id"] == ("TEXT", 1)  # the primary key
    assert {name: kind for name, (kind, _) in types.items() if name != "id"} == {
        "hs_appointment_name": "TEXT", "hs_appointment_status": "TEXT", "hs_appointment_services": "TEXT",
        "hs_appointment_type": "TEXT", "hs_appointment_location": "TEXT", "hs_appointment_notes": "TEXT",
        "external_appointment_id": "TEXT", "hs_object_id": "TEXT",  # a number, but an id: exact text
        "hs_appointment_start": "TIMESTAMP", "hs_appointment_end": "TIMESTAMP", "hs_createdate": "TIMESTAMP",
        "hs_lastmodifieddate": "TIMESTAMP", "hs_duration": "REAL", "hs_appointment_price": "REAL",
        "hs_appointment_date": "DATE", "hs_is_first_visit": "BOOLEAN",
        "archived": "BOOLEAN", "archived_at": "TIMESTAMP", "loaded_at": "TIMESTAMP"}
    assert set(by_id(warehouse, "archived")) == expected and len(rows(warehouse)) == len(expected)
    assert (result["inserted"], result["updated"], result["unchanged"]) == (len(expected), 0, 0)
    assert result["records"] == len(expected) and result["table"] == "appointments" and result["path"] is None
    record = sim.store.appointments(include_archived=False)[0]
    name, start, duration, first = by_id(warehouse, "hs_appointment_name", "hs_appointment_start", "hs_duration",
                                         "hs_is_first_visit")[str(record.id)]
    assert name == record.properties["hs_appointment_name"]
    assert start == record.properties["hs_appointment_start"].replace("T", " ").replace("Z", "")  # UTC ISO text
    assert duration == float(record.properties["hs_duration"])
    assert first == (record.properties["hs_is_first_visit"] == "true")


def test_a_second_run_of_the_same_window_changes_nothing(sim, warehouse):
    before = datetime.now(timezone.utc)
    load(before=before)
    first = rows(warehouse)
    again = load(before=before)
    assert rows(warehouse) == first  # loaded_at included: rows equal to HubSpot's are not rewritten
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, len(first))


def test_an_appointment_modified_after_the_load_is_updated_by_the_next_window(sim, warehouse):
    first_end = datetime.now(timezone.utc)
    load(before=first_end)
    before = by_id(warehouse, "hs_appointment_name", "loaded_at")
    record = sim.store.appointments(include_archived=False)[3]
    sim.store.update(record, {"hs_appointment_name": "Renamed {{ ds }}"}, sim.store.now_ms(), "test")
    result = load(after=first_end, before=later())
    assert (result["modified"], result["inserted"], result["updated"]) == (1, 0, 1)
    after = by_id(warehouse, "hs_appointment_name", "loaded_at")
    assert after[str(record.id)][0] == "Renamed {{ ds }}" and after[str(record.id)][1] > before[str(record.id)][1]
    assert {k: v for k, v in after.items() if k != str(record.id)} == \
        {k: v for k, v in before.items() if k != str(record.id)}


def test_archived_appointments_of_the_window_are_marked_and_inserted_when_missing(sim, warehouse):
    first_end = datetime.now(timezone.utc)
    load(before=first_end)
    loaded, unseen = sim.store.appointments(include_archived=False)[:2]
    with sqlite3.connect(warehouse) as connection:  # an appointment the table never held
        connection.execute("DELETE FROM appointments WHERE id = ?", (str(unseen.id),))
    count = len(rows(warehouse))
    for record in (loaded, unseen):
        sim.store.archive(record, sim.store.now_ms())
    end = later()
    result = load(after=first_end, before=end)
    assert (result["archived"], result["inserted"], result["updated"]) == (2, 1, 1)
    marked = by_id(warehouse, "archived", "archived_at")
    for record in (loaded, unseen):
        archived, archived_at = marked[str(record.id)]
        assert archived == 1 and first_end.replace(tzinfo=None).isoformat(" ") <= archived_at
    assert len(rows(warehouse)) == count + 1
    assert load(after=first_end, before=end)["updated"] == 0  # and that too is idempotent
    without = load(after=first_end, before=end, include_archived=False)
    assert (without["records"], without["archived"]) == (0, 0)


def test_missing_and_empty_values_become_null_and_big_numbers_quotes_and_braces_survive(sim, warehouse):
    now = sim.store.now_ms()
    odd = sim.store.create("appointments", {
        "hs_appointment_name": 'say "hi" {x} {{ ds }} \'quoted\' ; DROP TABLE appointments; --',
        "external_appointment_id": "12345678901234567890", "hs_appointment_notes": "{\"json\": [1, 2]}",
        "hs_appointment_status": "SCHEDULED"}, now, "test")
    blank = sim.store.materialize(sim.store.appointments(include_archived=False)[0])
    blank.properties.update({"hs_appointment_location": "", "hs_duration": ""})  # as HubSpot sends cleared values
    load(before=later())
    values = by_id(warehouse, "hs_appointment_name", "external_appointment_id", "hs_appointment_notes",
                   "hs_duration", "hs_appointment_date", "hs_appointment_start", "hs_appointment_location")
    assert values[str(odd.id)] == ('say "hi" {x} {{ ds }} \'quoted\' ; DROP TABLE appointments; --',
                                   "12345678901234567890", "{\"json\": [1, 2]}", None, None, None, None)
    assert values[str(blank.id)][3] is None and values[str(blank.id)][6] is None
    with sqlite3.connect(warehouse) as connection:
        assert connection.execute("SELECT typeof(hs_duration), typeof(hs_appointment_location) FROM appointments "
                                  "WHERE id = ?", (str(blank.id),)).fetchone() == ("null", "null")  # not 'nan'


def test_a_table_missing_columns_fails_naming_them_before_reading_hubspot(sim, warehouse):
    with sqlite3.connect(warehouse) as connection:
        connection.execute("CREATE TABLE appointments (id TEXT PRIMARY KEY, hs_appointment_name TEXT, archived "
                           "BOOLEAN, archived_at TIMESTAMP, loaded_at TIMESTAMP)")
    requests = sim.stats()["requests"]
    with pytest.raises(HubSpotInputError, match=r"table appointments has no column\(s\) hs_duration, "
                                                r"hs_appointment_date.*ALTER TABLE appointments ADD COLUMN "
                                                r"hs_duration REAL"):
        load(properties=["hs_appointment_name", "hs_duration", "hs_appointment_date"])
    assert sim.stats()["requests"] - requests <= 1  # the properties lookup, no search or list
    assert rows(warehouse) == []


def test_an_existing_table_with_the_columns_is_used_and_a_schema_qualified_name_works(sim, warehouse):
    with sqlite3.connect(warehouse) as connection:
        connection.execute("CREATE TABLE appointments (id TEXT PRIMARY KEY, hs_appointment_name TEXT, "
                           "hs_appointment_start TIMESTAMP, archived BOOLEAN, archived_at TIMESTAMP, "
                           "loaded_at TIMESTAMP, note TEXT DEFAULT 'mine')")
    result = load(properties=["hs_appointment_name", "hs_appointment_start"], table="main.appointments")
    assert result["inserted"] == len(active_ids(sim) | {str(r.id) for r in sim.store.appointments() if r.archived})
    assert {row[-1] for row in rows(warehouse)} == {"mine"}  # the user's own column is left alone


def test_the_extract_is_kept_at_output_path_or_removed(sim, warehouse, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    load()
    assert list(scratch.iterdir()) == []  # the temporary extracts went with the task
    kept = tmp_path / "kept" / "modified.parquet"
    result = load(output_path=str(kept), archived_output_path=str(tmp_path / "kept" / "archived.parquet"))
    assert result["path"] == str(kept) and pq.read_table(kept).num_rows == result["modified"]
    assert (tmp_path / "kept" / "archived.parquet").exists()


def test_a_failed_merge_leaves_the_table_as_it_was_and_no_staging_table(sim, warehouse):
    first_end = datetime.now(timezone.utc)
    load(before=first_end)
    first = rows(warehouse)
    renamed, refused = sim.store.appointments(include_archived=False)[:2]
    for record in (renamed, refused):
        sim.store.update(record, {"hs_appointment_name": "Changed"}, sim.store.now_ms(), "test")
    with sqlite3.connect(warehouse) as connection:
        connection.execute(f"CREATE TRIGGER refuse BEFORE UPDATE ON appointments WHEN NEW.id = '{refused.id}' "
                           "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    end = later()
    with pytest.raises(sqlite3.IntegrityError, match="refused by the test"):
        load(after=first_end, before=end)
    assert rows(warehouse) == first
    with sqlite3.connect(warehouse) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        connection.execute("DROP TRIGGER refuse")
    assert tables == ["appointments"]
    assert load(after=first_end, before=end)["updated"] == 2


def test_unloadable_arguments_are_refused_at_once():
    for arguments, message in [({"associations": ["contacts"]}, "associations"),
                               ({"properties_with_history": ["hs_appointment_status"]}, "properties_with_history"),
                               ({"file_format": "csv"}, "file_format must be parquet"),
                               ({"archived": True}, "use include_archived")]:
        with pytest.raises(HubSpotInputError, match=message):
            HubSpotAppointmentsToSqlOperator(task_id="t", sql_conn_id="w", table="t", **arguments)
    with pytest.raises(HubSpotInputError, match="is not a table name"):
        HubSpotAppointmentsToSqlOperator(task_id="t", sql_conn_id="warehouse", table="a; DROP TABLE b",
                                         modified_after=START.isoformat()).execute({"ti": _TI()})


def test_lineage_reads_hubspot_and_writes_the_table(sim, warehouse):
    operator = HubSpotAppointmentsToSqlOperator(task_id="load", sql_conn_id="warehouse", table="appointments",
                                                search_lag=0, modified_after=START.isoformat(),
                                                modified_before=datetime.now(timezone.utc).isoformat(),
                                                properties=["hs_appointment_name", "hs_duration"])
    result = operator.execute({"ti": _TI()})
    lineage = operator.get_openlineage_facets_on_complete(None)
    (source,), (target,) = lineage.inputs, lineage.outputs
    assert source.namespace == f"hubspot://{sim.url.split('://')[1]}" and source.name == "appointments"
    assert source.inputFacets["inputStatistics"].rowCount == result["records"]
    assert (target.namespace, target.name) == (f"sqlite://{warehouse}", "appointments")
    assert [(f.name, f.type) for f in target.facets["schema"].fields] == [
        ("id", "TEXT"), ("hs_appointment_name", "TEXT"), ("hs_duration", "REAL"), ("archived", "BOOLEAN"),
        ("archived_at", "TIMESTAMP"), ("loaded_at", "TIMESTAMP")]
    assert target.outputFacets["outputStatistics"].rowCount == result["inserted"]


# -- DuckDB, PostgreSQL ------------------------------------------------------------------------
def test_duckdb_through_its_provider(sim, tmp_path, monkeypatch):
    import duckdb

    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "duckdb", "host": str(path)}))
    first_end = datetime.now(timezone.utc)
    assert load(before=first_end)["updated"] == 0
    record = sim.store.appointments(include_archived=False)[5]
    sim.store.archive(record, sim.store.now_ms())
    result = load(after=first_end, before=later())
    assert (result["archived"], result["updated"]) == (1, 1)
    with duckdb.connect(str(path), read_only=True) as connection:
        types = dict(connection.execute("SELECT column_name, data_type FROM information_schema.columns "
                                        "WHERE table_name = 'appointments'").fetchall())
        archived = connection.execute("SELECT archived FROM appointments WHERE id = ?", [str(record.id)]).fetchall()
        total, distinct = connection.execute("SELECT count(*), count(DISTINCT id) FROM appointments").fetchone()
        tables = {name for (name,) in connection.execute("SHOW TABLES").fetchall()}
    assert (types["hs_appointment_start"], types["hs_duration"], types["hs_appointment_date"],
            types["hs_is_first_visit"], types["id"]) == ("TIMESTAMP WITH TIME ZONE", "DOUBLE", "DATE", "BOOLEAN",
                                                         "VARCHAR")
    assert archived == [(True,)] and total == distinct and tables == {"appointments"}


@pytest.fixture(scope="module")
def postgres():
    from tests.deployment.harness import Postgres, postgres_unavailable_reason

    reason = postgres_unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = Postgres(Path(tempfile.mkdtemp(prefix="hubspot-to-sql-pg-")))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


def test_postgresql_through_its_provider(sim, postgres, monkeypatch, captured_logs):
    password = "pg-password-never-logged-7f3a"
    connection = {**json.loads(postgres.connection_json(postgres.warehouse)), "password": password}
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps(connection))
    postgres.execute(postgres.warehouse, "DROP SCHEMA IF EXISTS analytics CASCADE")
    postgres.execute(postgres.warehouse, "CREATE SCHEMA analytics")
    table = "analytics.hubspot_appointments"
    first_end = datetime.now(timezone.utc)
    first = load(before=first_end, table=table)
    again = load(before=first_end, table=table)
    assert again["inserted"] == again["updated"] == 0 and again["unchanged"] == first["inserted"]
    renamed, archived = sim.store.appointments(include_archived=False)[:2]
    sim.store.update(renamed, {"hs_appointment_name": "O'Brien {x}", "hs_duration": "12345678901234567890"},
                     sim.store.now_ms(), "test")
    sim.store.archive(archived, sim.store.now_ms())
    result = load(after=first_end, before=later(), table=table)
    assert (result["modified"], result["archived"], result["updated"], result["inserted"]) == (1, 1, 2, 0)

    def query(sql: str) -> list[tuple]:
        return postgres.execute(postgres.warehouse, sql)

    types = dict(query("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = 'analytics' AND table_name = 'hubspot_appointments'"))
    assert (types["id"], types["hs_appointment_start"], types["hs_duration"], types["hs_appointment_date"],
            types["hs_is_first_visit"], types["hs_appointment_status"]) == (
        "text", "timestamp with time zone", "double precision", "date", "boolean", "text")
    assert query(f"SELECT hs_appointment_name, hs_duration FROM {table} WHERE id = '{renamed.id}'") == \
        [("O'Brien {x}", 1.2345678901234567e19)]  # a number property: a double, as the extract holds it
    assert query(f"SELECT archived, archived_at IS NOT NULL FROM {table} WHERE id = '{archived.id}'") == [(True, True)]
    total, distinct = query(f"SELECT count(*), count(DISTINCT id) FROM {table}")[0]
    assert total == distinct == first["inserted"]
    assert query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'analytics'") == \
        [("hubspot_appointments",)]  # the staging table went
    assert password not in captured_logs.text and sim.token not in captured_logs.text
    assert "merged into analytics.hubspot_appointments: 0 inserted, 2 updated" in captured_logs.text
