"""The example DAGs, run for real with dag.test() against the simulator, checked against the warehouse and the
simulator."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.conftest import REPO_ROOT

DAGS = REPO_ROOT / "example_dags"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HUBSPOT_APPOINTMENTS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HUBSPOT_APPOINTMENTS_SEARCH_LAG_S", "0")  # these simulators have no search lag
    return tmp_path


def test_warehouse_load_loads_each_interval_once_and_reflects_archives(run_dag, hubspot_simulator_factory, data_dir,
                                                                       monkeypatch):
    sim = hubspot_simulator_factory(seed_appointments=400)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json())
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    dag_file = DAGS / "hubspot_appointments_warehouse_load.py"

    loaded = 0
    for days_ago in (2, 1):
        result = run_dag(dag_file, "hubspot_appointments_warehouse_load", logical_date=today - timedelta(days=days_ago))
        assert result.state == "success", result.task_states()
        loaded += result.xcom("merge_into_warehouse")["modified"]

    # Expected: every seeded appointment modified in [today-3d, today-1d).
    start, end = today - timedelta(days=3), today - timedelta(days=1)
    low, high = start.timestamp() * 1000, end.timestamp() * 1000
    expected = {str(r.id) for r in sim.store.appointments() if low <= r.updated_ms < high}
    warehouse = data_dir / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        ids = {row[0] for row in con.execute("SELECT id FROM appointments").fetchall()}
        assert con.execute("SELECT count(*) = count(DISTINCT id) FROM appointments").fetchone()[0]
    assert ids == expected and loaded == len(expected)

    # Re-running an interval replaces rows, never duplicates them.
    rerun = run_dag(dag_file, "hubspot_appointments_warehouse_load", logical_date=today - timedelta(days=1))
    assert rerun.state == "success"
    with duckdb.connect(str(warehouse)) as con:
        assert con.execute("SELECT count(*) FROM appointments").fetchone()[0] == len(expected)

    # Archive one loaded appointment in yesterday's interval; re-running that interval reflects it.
    victim = sorted(ids)[0]
    archived_at = int((today - timedelta(hours=1)).timestamp() * 1000)
    sim.store.archive(sim.store.get("appointments", int(victim)), archived_at)
    again = run_dag(dag_file, "hubspot_appointments_warehouse_load", logical_date=today)
    assert again.state == "success"
    assert again.xcom("merge_into_warehouse")["archived"] == 1
    with duckdb.connect(str(warehouse)) as con:
        archived = con.execute("SELECT archived FROM appointments WHERE id = ?", [victim]).fetchall()
        assert archived == [(True,)]
        assert con.execute("SELECT count(*) = count(DISTINCT id) FROM appointments").fetchone()[0]


def test_bulk_backfill_upserts_every_row_once_across_mapped_shards(run_dag, hubspot_simulator_factory, data_dir,
                                                                   monkeypatch):
    sim = hubspot_simulator_factory(seed_appointments=300)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json())
    rows = []
    for number in range(1, 651):
        # Odd rows update seeded appointments (EXT-000001..), even rows are new; every 100th is bad.
        key = f"EXT-{number:06d}" if number % 2 else f"LEGACY-{number:05d}"
        rows.append({"external_appointment_id": key, "hs_appointment_name": f"Legacy {number}",
                     "hs_appointment_status": "NOT_A_STATUS" if number % 100 == 0 else "COMPLETED",
                     "hs_duration": 30})
    source = data_dir / "legacy.csv"
    pd.DataFrame(rows).to_csv(source, index=False)

    result = run_dag(DAGS / "hubspot_appointments_bulk_backfill.py", "hubspot_appointments_bulk_backfill",
                     run_conf={"input_path": str(source), "shards": 3})
    assert result.state == "success", result.task_states()
    totals = result.xcom("summarize")
    assert totals["records"] == 650 and totals["failed"] == 6 and totals["succeeded"] == 644
    # Odd rows up to 299 update the 300 seeded appointments; every other good row creates one.
    assert totals["updated"] == 150 and totals["created"] == 494
    failures = pd.concat([pd.read_parquet(path) for path in totals["failures_paths"]])
    assert sorted(failures["input_key"]) == [f"LEGACY-{n:05d}" for n in range(100, 601, 100)]
    # Row numbers are the original file's (0-based: number N is row N - 1), not the shard's.
    assert sorted(failures["input_row"]) == [n - 1 for n in range(100, 601, 100)]
    id_maps = pd.concat([pd.read_parquet(path) for path in totals["id_map_paths"]])
    assert sorted(id_maps["input_row"]) == sorted(set(range(650)) - {n - 1 for n in range(100, 601, 100)})
    assert set(failures["category"]) == {"INVALID_INPUT"} and failures["message"].str.contains("NOT_A_STATUS").all()
    assert all(Path(path).exists() for path in totals["id_map_paths"])

    by_key = {r.properties.get("external_appointment_id"): r for r in sim.store.appointments()}
    assert by_key["EXT-000001"].properties["hs_appointment_name"] == "Legacy 1"
    assert by_key["LEGACY-00002"].properties["hs_appointment_name"] == "Legacy 2"
    assert "LEGACY-00100" not in by_key
    keys = [r.properties.get("external_appointment_id") for r in sim.store.appointments()]
    assert len(keys) == len(set(keys)), "an appointment was written twice"


def _start_ms(record) -> int:
    value = str(record.properties["hs_appointment_start"])
    return int(value) if value.isdigit() else int(pd.Timestamp(value).value // 1_000_000)


def test_lifecycle_creates_associates_archives_and_reports(run_dag, hubspot_simulator_factory, data_dir, monkeypatch):
    sim = hubspot_simulator_factory(seed_appointments=120)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json())
    contact_ids = [str(record.id) for record in sim.store.iter_records("contacts")][:9]
    types = ["IN_PERSON", "VIDEO", "CARRIER_PIGEON", "PHONE", "VIDEO",
             "IN_PERSON", "PHONE", "VIDEO", "IN_PERSON", "PHONE"]
    bookings = pd.DataFrame({
        "external_appointment_id": [f"BOOKING-{n}" for n in range(10)],
        "hs_appointment_name": [f"Consultation {n}" for n in range(10)],
        "hs_appointment_status": ["SCHEDULED"] * 10,
        "hs_appointment_type": types,  # row 2 has a type HubSpot does not know
        "contact_id": contact_ids + ["999999999"],  # row 9's contact does not exist
    })
    path = data_dir / "bookings.csv"
    bookings.to_csv(path, index=False)
    now_ms = int(time.time() * 1000)
    cancelled = [r for r in sim.store.appointments(include_archived=False)
                 if r.properties.get("hs_appointment_status") == "CANCELED"]
    # Two days back: cancelled appointments that started before that are archived, later ones stay.
    cancelled_before = {r.id for r in cancelled if _start_ms(r) < now_ms - 2 * 86_400_000}
    later = {r.id for r in cancelled} - cancelled_before
    assert cancelled_before and later

    result = run_dag(DAGS / "hubspot_appointments_lifecycle.py", "hubspot_appointments_lifecycle",
                     run_conf={"bookings_path": str(path), "older_than_days": 2})
    assert result.state == "success", result.task_states()
    report = result.xcom("report")
    assert report["create"] == {"succeeded": 9, "failed": 1}
    assert report["associate"] == {"succeeded": 8, "failed": 2}  # the failed create and the unknown contact
    assert report["archive"] == {"succeeded": len(cancelled_before), "failed": 0}

    created = {r.properties["external_appointment_id"]: r for r in sim.store.appointments()
               if r.properties.get("external_appointment_id", "").startswith("BOOKING-")}
    assert sorted(created) == [f"BOOKING-{n}" for n in range(10) if n != 2]
    linked = sim.store.associations_of("appointments", created["BOOKING-0"].id)["contacts"]
    assert int(contact_ids[0]) in linked
    assert all(sim.store.get("appointments", i).archived for i in cancelled_before)
    assert not any(sim.store.get("appointments", i).archived for i in later)


def test_warehouse_load_run_manually_without_a_logical_date_loads_the_last_interval(
        run_dag, hubspot_simulator_factory, data_dir, monkeypatch):
    """Airflow 3 triggers manual runs without a logical date (so without a data interval)."""
    sim = hubspot_simulator_factory(seed_appointments=400)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json())
    result = run_dag(DAGS / "hubspot_appointments_warehouse_load.py", "hubspot_appointments_warehouse_load",
                     logical_date=None)
    assert result.dag_run.logical_date is None
    assert result.state == "success", result.task_states()
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    window = result.xcom("merge_into_warehouse")
    assert (window["modified_after"], window["modified_before"]) == (
        (today - timedelta(days=1)).isoformat(), today.isoformat())
    low, high = (today - timedelta(days=1)).timestamp() * 1000, today.timestamp() * 1000
    expected = {str(r.id) for r in sim.store.appointments() if low <= r.updated_ms < high}
    assert expected and result.xcom("merge_into_warehouse")["modified"] == len(expected)


def test_on_new_extract_counts_an_event_listed_under_two_keys_once():
    from types import SimpleNamespace

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "hubspot_appointments_on_new_extract.py"))
    task = bag.dags["hubspot_appointments_on_new_extract"].get_task("count_by_status")
    event = SimpleNamespace(asset=SimpleNamespace(uri="hubspot_appointments_extract"),
                            extra={"records": 0, "path": "/nowhere/empty.parquet"},
                            source_dag_id="load", source_run_id="r1", source_task_id="extract", source_map_index=-1,
                            timestamp=datetime(2026, 12, 1, tzinfo=timezone.utc))
    other = SimpleNamespace(**{**vars(event), "source_run_id": "r2"})
    result = task.python_callable(triggering_asset_events={"asset": [event, other], "alias": [event, other]})
    assert result["extracts"] == ["/nowhere/empty.parquet", "/nowhere/empty.parquet"]  # two events, each once


def test_bulk_backfill_needs_no_pool_that_nobody_created():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "hubspot_appointments_bulk_backfill.py"))
    upsert = bag.dags["hubspot_appointments_bulk_backfill"].get_task("upsert_shard")
    assert upsert.pool == "default_pool"  # a task in a pool that does not exist waits for ever
    assert upsert.max_active_tis_per_dagrun == 4


def _bookings_table(path: Path, rows: int) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE OR REPLACE TABLE clinic_bookings (external_appointment_id VARCHAR, "
                    "hs_appointment_name VARCHAR, hs_appointment_start TIMESTAMPTZ, hs_appointment_end TIMESTAMPTZ, "
                    "hs_appointment_status VARCHAR, hs_duration INTEGER)")
        con.executemany("INSERT INTO clinic_bookings VALUES (?, ?, ?, ?, ?, ?)", [
            (f"CLINIC-{i:05d}", f"Visit {i}", datetime(2026, 12, 1, 9, tzinfo=timezone.utc) + timedelta(hours=i),
             datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc) + timedelta(hours=i), "SCHEDULED", 30)
            for i in range(rows)])


def test_reverse_sync_mirrors_a_table_and_a_second_run_sends_only_the_changes(run_dag, hubspot_simulator_factory,
                                                                               data_dir, monkeypatch):
    import json

    sim = hubspot_simulator_factory(seed_appointments=50)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json())
    warehouse = data_dir / "warehouse.duckdb"
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_WAREHOUSE", json.dumps({"conn_type": "duckdb", "host": str(warehouse)}))
    _bookings_table(warehouse, 300)
    dag_file = DAGS / "hubspot_appointments_reverse_sync.py"
    first = run_dag(dag_file, "hubspot_appointments_reverse_sync")
    assert first.state == "success", first.task_states()
    assert first.xcom("preview")["actions"] == {"create": 300}
    assert (first.xcom("sync")["created"], first.xcom("sync")["failed"]) == (300, 0)

    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE clinic_bookings SET hs_appointment_status = 'CANCELED' WHERE external_appointment_id "
                    "IN ('CLINIC-00001', 'CLINIC-00002')")
        con.execute("DELETE FROM clinic_bookings WHERE external_appointment_id = 'CLINIC-00003'")
        con.execute("INSERT INTO clinic_bookings SELECT 'CLINIC-99999', 'Walk-in', NULL, NULL, 'SCHEDULED', 15")
    before = sim.stats()["by_route"]
    second = run_dag(dag_file, "hubspot_appointments_reverse_sync")
    assert second.state == "success", second.task_states()
    assert second.xcom("preview")["actions"] == {"unchanged": 297, "update": 2, "create": 1, "archive": 1}
    summary = second.xcom("sync")
    assert (summary["created"], summary["updated"], summary["unchanged"], summary["archived"]) == (1, 2, 297, 1)
    sent = {route: count - before.get(route, 0) for route, count in sim.stats()["by_route"].items()
            if "/batch/" in route and count != before.get(route, 0)}
    # The preview reads the one key its state does not know; the sync writes once and archives once.
    assert sent == {"POST /crm/objects/{version}/{object_type}/batch/read": 1,
                    "POST /crm/objects/{version}/{object_type}/batch/upsert": 1,
                    "POST /crm/objects/{version}/{object_type}/batch/archive": 1}
    held = {r.properties["external_appointment_id"]: r for r in sim.store.appointments()
            if r.properties.get("external_appointment_id", "").startswith("CLINIC-")}
    assert held["CLINIC-00003"].archived and held["CLINIC-00001"].properties["hs_appointment_status"] == "CANCELED"
    assert sum(not r.archived for r in held.values()) == 300
    seeded = [r for r in sim.store.appointments() if not r.properties.get("external_appointment_id", "")
              .startswith("CLINIC-")]
    assert seeded and not any(r.archived for r in seeded)  # records the sync did not write are never archived
