"""The example DAGs in a real Airflow 3 deployment, driven as a user drives one: through the REST API.

PostgreSQL metadata DB, LocalExecutor, the scheduler, dag-processor, triggerer and api-server as
separate processes, and the HubSpot simulator from its command line (see `harness`). Each DAG is
unpaused and triggered with ``POST /api/v2/dags/{dag_id}/dagRuns`` without a logical date (Airflow
3's manual run), polled to its end, and its effect checked in the simulator: every appointment once,
none duplicated, none missing. One test SIGKILLs a write task mid-run and lets Airflow retry it; the
last greps every log for the HubSpot token. The module shares one deployment (about 20 s to start).
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from airflow_provider_appointments.errors import HubSpotInputError
from tests.deployment.harness import Deployment, processes_matching, wait_for

pytestmark = [pytest.mark.deployment, pytest.mark.slow]

LIFECYCLE = "hubspot_appointments_lifecycle"
BACKFILL = "hubspot_appointments_bulk_backfill"
WAREHOUSE = "hubspot_appointments_warehouse_load"
ON_NEW_EXTRACT = "hubspot_appointments_on_new_extract"
# The simulator's route name for batch creates of objects (not of associations).
OBJECT_CREATES = "POST /crm/objects/{version}/{object_type}/batch/create"


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def run_to_end(deployment: Deployment, dag_id: str, conf: dict, timeout: float) -> tuple[str, dict]:
    """Unpause `dag_id`, trigger a manual run with `conf`, wait for it to finish; return (run_id, run)."""
    api = deployment.api
    api.set_paused(dag_id, False)
    run_id = api.trigger(dag_id, conf)
    run = api.wait_for_run(dag_id, run_id, timeout=timeout, diagnose=deployment.diagnose)
    return run_id, run


def assert_success(deployment: Deployment, dag_id: str, run_id: str, run: dict) -> None:
    assert run["state"] == "success", deployment.api.describe_run(dag_id, run_id)


def contact_ids(deployment: Deployment, limit: int = 100) -> list[str]:
    answer = deployment.hubspot("GET", "/crm/objects/2026-03/contacts", params={"limit": limit})
    return [contact["id"] for contact in answer["results"]]


def by_key(appointments: list[dict]) -> dict[str, list[dict]]:
    """Active appointments by external_appointment_id (each list should hold exactly one)."""
    found: dict[str, list[dict]] = collections.defaultdict(list)
    for appointment in appointments:
        key = appointment["properties"].get("external_appointment_id")
        if key:
            found[key].append(appointment)
    return found


def write_bookings(path: Path, contacts: list[str], prefix: str, count: int,
                   bad_type_row: int | None = None, unknown_contact_row: int | None = None) -> pd.DataFrame:
    """A bookings file as the lifecycle DAG takes it (as in demo.py): properties plus ``contact_id``."""
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
    records = [
        {
            "external_appointment_id": f"{prefix}-{number:05d}",
            "hs_appointment_name": f"New patient consultation {prefix} #{number}",
            "hs_appointment_start": (start + timedelta(minutes=15 * number)).isoformat(),
            "hs_appointment_end": (start + timedelta(minutes=15 * number + 45)).isoformat(),
            "hs_appointment_status": "SCHEDULED",
            "hs_appointment_type": "IN_PERSON" if number % 3 else "VIDEO",
            "contact_id": contacts[number % len(contacts)],
        }
        for number in range(1, count + 1)
    ]
    if bad_type_row is not None:
        records[bad_type_row]["hs_appointment_type"] = "CARRIER_PIGEON"
    if unknown_contact_row is not None:
        records[unknown_contact_row]["contact_id"] = "999999999"
    frame = pd.DataFrame.from_records(records)
    frame.to_csv(path, index=False)
    return frame


def write_legacy_export(path: Path, rows: int) -> tuple[pd.DataFrame, set[int]]:
    """A legacy export (as in demo.py): half updates of seeded appointments (EXT-…), half new (LEGACY-…),
    some rows bad (a status HubSpot does not know, a duration that is text). Returns it and the bad rows."""
    start = datetime(2026, 12, 1, 9, tzinfo=timezone.utc)
    statuses = ["SCHEDULED", "CONFIRMED", "COMPLETED", "CANCELED", "NO_SHOW"]
    records = []
    for row in range(rows):
        begins = start + timedelta(hours=row % 2000)
        records.append({
            "external_appointment_id": f"EXT-{row + 1:06d}" if row % 2 == 0 else f"LEGACY-{row:06d}",
            "hs_appointment_name": f"Legacy appointment {row:05d}",
            "hs_appointment_start": begins.isoformat(),
            "hs_appointment_end": (begins + timedelta(minutes=30)).isoformat(),
            "hs_appointment_status": statuses[row % len(statuses)],
            "hs_duration": 30,
            "hs_appointment_price": round(40 + (row % 7) * 12.5, 2),
        })
    bad: set[int] = set()
    for row in range(0, rows, 250):
        records[row]["hs_appointment_status"] = "MAYBE_LATER"
        bad.add(row)
    for row in range(125, rows, 500):
        records[row]["hs_duration"] = "half an hour"
        bad.add(row)
    frame = pd.DataFrame.from_records(records)
    frame.to_csv(path, index=False)
    return frame, bad


def route_count(deployment: Deployment, fragment: str) -> int:
    """Requests the simulator answered on routes whose name contains `fragment`."""
    routes = deployment.simulator("GET", "stats")["by_route"]
    return sum(count for route, count in routes.items() if fragment in route)


# --------------------------------------------------------------------------------------------------
# Tests (in order: the warehouse load runs after the writes, so its interval has fresh modifications)
# --------------------------------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_deployment_is_up(deployment: Deployment) -> None:
    """All four components report healthy, every example DAG parsed without import errors."""
    health = deployment.api.health()
    for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[part]["status"] == "healthy", health
    assert deployment.api.import_errors() == []
    assert {LIFECYCLE, BACKFILL, WAREHOUSE} <= deployment.api.dag_ids()


@pytest.mark.timeout(240)
def _moment(value: str) -> datetime:
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_lifecycle_creates_each_booking_once(deployment: Deployment) -> None:
    contacts = contact_ids(deployment, limit=20)
    bookings_path = deployment.data / "new_bookings.csv"
    bookings = write_bookings(bookings_path, contacts, "DEPLOY", 20, bad_type_row=6, unknown_contact_row=11)

    run_id, run = run_to_end(deployment, LIFECYCLE, {"bookings_path": str(bookings_path), "older_than_days": 0},
                             timeout=180)
    assert_success(deployment, LIFECYCLE, run_id, run)

    created = deployment.api.xcom(LIFECYCLE, run_id, "create_bookings")
    associated = deployment.api.xcom(LIFECYCLE, run_id, "associate_contacts")
    assert (created["succeeded"], created["failed"]) == (19, 1), created
    assert (associated["succeeded"], associated["failed"]) == (18, 2), associated

    appointments = deployment.appointments()
    found = by_key(appointments)
    invalid = bookings.iloc[6]["external_appointment_id"]
    for _, booking in bookings.iterrows():
        key = booking["external_appointment_id"]
        if key == invalid:
            assert key not in found, f"{key} (unknown appointment type) should have been refused"
            continue
        assert len(found.get(key, [])) == 1, f"{key}: {len(found.get(key, []))} appointments, expected 1"
        record = found[key][0]
        assert record["properties"]["hs_appointment_name"] == booking["hs_appointment_name"]
        if booking["contact_id"] != "999999999":
            assert record["associations"].get("contacts") == [booking["contact_id"]], (key, record["associations"])
    # older_than_days=0: every cancelled appointment that started before the run is archived, later ones stay.
    started = deployment.api.dag_run(LIFECYCLE, run_id).get("run_after")
    cutoff = datetime.fromisoformat(str(started).replace("Z", "+00:00"))
    cancelled = [a for a in appointments if a["properties"].get("hs_appointment_status") == "CANCELED"]
    assert not [a for a in cancelled if _moment(a["properties"]["hs_appointment_start"]) < cutoff], \
        "archive_cancelled left cancelled appointments that had started active"
    assert deployment.api.xcom(LIFECYCLE, run_id, "archive_cancelled")["succeeded"] > 0
    duplicated = {key: len(records) for key, records in found.items() if len(records) > 1}
    assert not duplicated, duplicated

    # Each write reached Airflow as an event of the declared reports asset, with its report paths.
    events = deployment.api.request("GET", "/assets/events", params={"source_dag_id": LIFECYCLE,
                                                                      "source_run_id": run_id}).json()
    reported = {event["source_task_id"]: event["extra"] for event in events["asset_events"]}
    assert reported["create_bookings"]["failures_path"] and reported["create_bookings"]["id_map_path"], events
    assert reported["associate_contacts"]["failures_path"], events
    assert {event["name"] for event in events["asset_events"]} == {"hubspot_appointments_reports"}, events


@pytest.mark.timeout(300)
def test_bulk_backfill_upserts_each_row_once(deployment: Deployment) -> None:
    # No pool is created first: the DAG needs none (a task in a pool that does not exist never starts).
    assert all(pool["name"] != "hubspot_api" for pool in deployment.api.request("GET", "/pools").json()["pools"])
    export_path = deployment.data / "legacy_appointments.csv"
    export, bad = write_legacy_export(export_path, rows=3000)

    run_id, run = run_to_end(deployment, BACKFILL, {"input_path": str(export_path), "shards": 4}, timeout=240)
    assert_success(deployment, BACKFILL, run_id, run)

    shards = [ti for ti in deployment.api.task_instances(BACKFILL, run_id) if ti["task_id"] == "upsert_shard"]
    assert len(shards) == 4 and all(ti["state"] == "success" for ti in shards), shards
    totals = deployment.api.xcom(BACKFILL, run_id, "summarize")
    assert totals["records"] == len(export), totals
    assert totals["failed"] == len(bad), totals
    assert totals["succeeded"] == len(export) - len(bad), totals
    assert totals["created"] + totals["updated"] == totals["succeeded"], totals

    found = by_key(deployment.appointments())
    duplicated = {key: len(records) for key, records in found.items() if len(records) > 1}
    assert not duplicated, duplicated
    missing, stale = [], []
    for row, record in export.iterrows():
        key = record["external_appointment_id"]
        if row in bad:
            if key.startswith("LEGACY-"):
                assert key not in found, f"bad row {row} ({key}) was created"
            continue
        if key not in found:
            missing.append(key)
        elif found[key][0]["properties"]["hs_appointment_name"] != record["hs_appointment_name"]:
            stale.append(key)
    assert not missing, f"{len(missing)} rows not in HubSpot, e.g. {missing[:5]}"
    assert not stale, f"{len(stale)} rows not updated, e.g. {stale[:5]}"


@pytest.mark.timeout(420)
def test_warehouse_load_manual_run_defers_and_loads(deployment: Deployment) -> None:
    """A manual run without a logical date (the UI's Trigger button, Airflow 3's default) of the
    interval so far, up to now: the extract waits out the search lag in the triggerer, then loads."""
    api = deployment.api
    api.set_paused(ON_NEW_EXTRACT, False)  # scheduled on the load's asset: the scheduler must start it
    api.set_paused(WAREHOUSE, False)
    until = datetime.now(timezone.utc)
    run_id = api.trigger(WAREHOUSE, {"until": until.isoformat()})

    def finished_or_retrying() -> dict | None:
        run = api.dag_run(WAREHOUSE, run_id)
        if run["state"] in ("success", "failed"):
            return run
        # A manual run's failure repeats on each retry (retry_delay is 1 minute): report the first.
        if any(ti["state"] == "up_for_retry" for ti in api.task_instances(WAREHOUSE, run_id)):
            return run
        return None

    run = wait_for(f"{WAREHOUSE} run {run_id} to finish", finished_or_retrying, timeout=180, interval=1.0,
                   diagnose=lambda: api.describe_run(WAREHOUSE, run_id))
    if run["state"] != "success":
        description = api.describe_run(WAREHOUSE, run_id)
        if run["state"] not in ("success", "failed"):
            # Stop the retries so they do not run on beside the next tests.
            api.request("PATCH", f"/dags/{WAREHOUSE}/dagRuns/{run_id}", json={"state": "failed"})
        pytest.fail(f"the manual warehouse load did not succeed:\n{description}")

    loaded = api.xcom(WAREHOUSE, run_id, "merge_into_warehouse")
    assert loaded["waited_for_search_s"] > 0, loaded
    assert api.xcom(WAREHOUSE, run_id, "merge_into_warehouse", key="search_wait_started_at"), \
        "merge_into_warehouse never deferred"
    ti = api.task_instance(WAREHOUSE, run_id, "merge_into_warehouse")
    log = api.task_log(WAREHOUSE, run_id, "merge_into_warehouse", ti["try_number"])
    assert "search index lags writes" in log, log[-3000:]
    # The triggerer ran the task's DateTimeTrigger and it fired: the wait held no worker slot. Airflow 3's
    # triggerer writes each trigger's log next to the task's (attempt=N.log.trigger.<id>.log).
    trigger_logs = [path for path in deployment.task_log_files()
                    if f"dag_id={WAREHOUSE}" in str(path) and "task_id=merge_into_warehouse" in str(path)
                    and ".log.trigger." in path.name]
    trigger_text = "\n".join(path.read_text(errors="replace") for path in trigger_logs)
    assert f"{WAREHOUSE}/{run_id}/merge_into_warehouse/-1/" in trigger_text, trigger_logs
    assert "Trigger fired event" in trigger_text, trigger_text[-3000:]

    assert loaded["modified"] > 0 and loaded["inserted"] > 0, loaded
    # Merged into the PostgreSQL warehouse (HUBSPOT_APPOINTMENTS_WAREHOUSE_CONN=hubspot_warehouse), typed.
    postgres, database = deployment.postgres, deployment.postgres.warehouse
    (rows, distinct), = postgres.execute(database, "SELECT count(*), count(DISTINCT id) FROM appointments")
    assert rows == distinct >= loaded["inserted"] + loaded["updated"], (rows, distinct, loaded)
    types = dict(postgres.execute(database, "SELECT column_name, data_type FROM information_schema.columns "
                                            "WHERE table_name = 'appointments'"))
    assert types["hs_appointment_start"] == "timestamp with time zone" and types["archived"] == "boolean", types
    assert types["id"] == "text", types

    # The load's asset event started the DAG scheduled on it (dag.test() never does this), which read
    # the extract the event names. The event queued that DAG (it was unpaused); only a scheduler that
    # creates scheduled runs starts it: the load is paused first, so it does not catch up on November.
    api.set_paused(WAREHOUSE, True)
    deployment.restart_scheduler(job_schedule=True)

    def asset_triggered() -> dict | None:
        runs = api.get(f"/dags/{ON_NEW_EXTRACT}/dagRuns", params={"run_type": "asset_triggered"})["dag_runs"]
        return next((run for run in runs if run["state"] in ("success", "failed")), None)

    try:
        downstream = wait_for(f"{ON_NEW_EXTRACT} to be triggered by the load's asset", asset_triggered,
                              timeout=120, interval=1.0, diagnose=lambda: api.get(f"/dags/{ON_NEW_EXTRACT}/dagRuns"))
    finally:
        api.set_paused(ON_NEW_EXTRACT, True)
        deployment.restart_scheduler(job_schedule=False)  # the next tests' runs are manual ones only
    assert downstream["state"] == "success", api.describe_run(ON_NEW_EXTRACT, downstream["dag_run_id"])
    counted = api.xcom(ON_NEW_EXTRACT, downstream["dag_run_id"], "count_by_status")
    assert loaded["path"] in counted["extracts"] and sum(counted["by_status"].values()) >= loaded["modified"], counted


@pytest.mark.timeout(300)
def test_killed_create_is_retried_without_duplicates(deployment: Deployment) -> None:
    """SIGKILL create_bookings' task process after some of its batch creates, as the OOM killer or a
    lost node would; Airflow retries it (retries=2, the DAG's retry_delay of 30 s) and the run ends in
    success with every booking created exactly once."""
    contacts = contact_ids(deployment)
    bookings_path = deployment.data / "many_bookings.csv"
    bookings = write_bookings(bookings_path, contacts, "KILL", 4000)
    api = deployment.api
    # Slow answers so the kill lands mid-task (40 batches, 8 in flight: about 5 rounds of 1 s).
    deployment.simulator("PATCH", "config", {"latency_ms": 1000})
    try:
        creates_before = route_count(deployment, OBJECT_CREATES)
        api.set_paused(LIFECYCLE, False)
        run_id = api.trigger(LIFECYCLE, {"bookings_path": str(bookings_path)})

        def running_create() -> dict | None:
            ti = api.task_instance(LIFECYCLE, run_id, "create_bookings")
            if ti["state"] in ("success", "failed"):
                raise AssertionError(f"create_bookings ended ({ti['state']}) before it could be killed")
            return ti if ti["state"] == "running" and ti.get("id") else None

        ti = wait_for("create_bookings to run", running_create, timeout=120, interval=0.5,
                      diagnose=deployment.diagnose)
        # The task runner (the supervisor's child) titles itself "airflow worker -- <task instance id>".
        task_process = wait_for("create_bookings' task process",
                                lambda: processes_matching(f"airflow worker -- {ti['id']}") or None,
                                timeout=60, interval=0.2)
        wait_for("create_bookings to have sent some batch creates",
                 lambda: route_count(deployment, OBJECT_CREATES) - creates_before >= 3, timeout=60, interval=0.1)
        sent_before_kill = route_count(deployment, OBJECT_CREATES) - creates_before
        for process in task_process:
            os.kill(process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
    finally:
        deployment.simulator("PATCH", "config", {"latency_ms": 0})

    run = api.wait_for_run(LIFECYCLE, run_id, timeout=200, diagnose=deployment.diagnose)
    assert_success(deployment, LIFECYCLE, run_id, run)
    tries = api.tries(LIFECYCLE, run_id, "create_bookings")
    states = {t["try_number"]: t["state"] for t in tries}
    print(f"\nkilled create_bookings (pid {[p.pid for p in task_process]}) after {sent_before_kill} batch creates; "
          f"tries: {states}; run ended {time.monotonic() - killed_at:.0f} s after the kill", file=sys.stderr)
    assert len(tries) >= 2 and states.get(1) in ("failed", "up_for_retry"), tries
    assert states[max(states)] == "success", tries
    assert 0 < sent_before_kill < 40, f"the kill should land mid-task; {sent_before_kill} of 40 batches were sent"
    assert time.monotonic() - killed_at >= 25, "the retry should have waited out the DAG's retry_delay"

    found = by_key(deployment.appointments())
    keys = list(bookings["external_appointment_id"])
    duplicated = {key: len(found[key]) for key in keys if len(found.get(key, [])) > 1}
    missing = [key for key in keys if key not in found]
    assert not duplicated, f"{len(duplicated)} bookings created more than once, e.g. {list(duplicated.items())[:5]}"
    assert not missing, f"{len(missing)} bookings missing, e.g. {missing[:5]}"
    created = api.xcom(LIFECYCLE, run_id, "create_bookings")
    assert (created["succeeded"], created["failed"]) == (len(keys), 0), created



@pytest.mark.parametrize("driver", ["psycopg2", "psycopg2-dict-rows", "psycopg"])
def test_a_sql_source_streams_from_postgres_with_each_driver(deployment: Deployment, monkeypatch, driver) -> None:
    """A named (server-side) cursor describes its columns only after its first fetch (psycopg2), and a
    driver may answer rows as dicts: both read as a plain cursor's rows do."""
    from airflow_provider_appointments.records.sql import SqlSource

    postgres = deployment.postgres
    table = f"driver_rows_{driver.replace('-', '_')}"
    postgres.execute(postgres.warehouse, f"CREATE TABLE {table} (k text, n bigint, d numeric)")
    postgres.execute(postgres.warehouse, f"INSERT INTO {table} VALUES (%s, %s, %s)",
                     [(f"R{i:04d}", 10**15 + i if i % 7 else None, "1.50") for i in range(2500)])

    class Hook:
        def get_conn(self):
            if driver == "psycopg":
                import psycopg

                return psycopg.connect(host="127.0.0.1", port=postgres.port, user=postgres.user,
                                       dbname=postgres.warehouse)
            import psycopg2
            import psycopg2.extras

            factory = psycopg2.extras.RealDictCursor if driver.endswith("dict-rows") else None
            return psycopg2.connect(host="127.0.0.1", port=postgres.port, user=postgres.user,
                                    dbname=postgres.warehouse, cursor_factory=factory)

    monkeypatch.setattr(SqlSource, "hook", lambda self: Hook())
    frames = list(SqlSource(f"SELECT * FROM {table} ORDER BY k", "unused").iter_frames(1000))
    assert [(start, len(frame)) for start, frame in frames] == [(0, 1000), (1000, 1000), (2000, 500)]
    whole = pd.concat([frame for _, frame in frames], ignore_index=True)
    assert list(whole.columns) == ["k", "n", "d"] and whole["k"].tolist() == [f"R{i:04d}" for i in range(2500)]
    numbers = [None if pd.isna(value) else int(value) for value in whole["n"].tolist()]
    assert numbers[:8] == [None, *(10**15 + i for i in range(1, 7)), None]  # NULL missing, every digit kept
    assert str(whole["d"].iloc[0]) == "1.50"
    # A server-side cursor takes only a query: a statement is refused by PostgreSQL, before it runs.
    with pytest.raises(HubSpotInputError, match="the query failed: SyntaxError"):
        list(SqlSource(f"UPDATE {table} SET d = 2", "unused").iter_frames(10))
    assert postgres.execute(postgres.warehouse, f"SELECT count(*) FROM {table} WHERE d = 2") == [(0,)]


REVERSE_SYNC = "hubspot_appointments_reverse_sync"


def batch_writes(deployment: Deployment) -> dict[str, int]:
    return {route: count for route, count in deployment.simulator("GET", "stats")["by_route"].items()
            if "/batch/" in route and not route.endswith("/batch/read")}


@pytest.mark.timeout(300)
def test_reverse_sync_mirrors_a_postgres_table_and_then_sends_only_the_changes(deployment: Deployment) -> None:
    """The reverse-sync example on a PostgreSQL warehouse (psycopg2's server-side cursor), triggered twice
    through the REST API: the second run writes only the rows that changed and archives the removed one."""
    database = deployment.postgres.warehouse
    deployment.postgres.execute(database, "CREATE TABLE clinic_bookings (external_appointment_id text PRIMARY KEY, "
                                "hs_appointment_name text, hs_appointment_start timestamptz, "
                                "hs_appointment_end timestamptz, hs_appointment_status text, hs_duration integer)")
    start = datetime(2026, 12, 10, 8, tzinfo=timezone.utc)
    deployment.postgres.execute(database, "INSERT INTO clinic_bookings VALUES (%s, %s, %s, %s, %s, %s)", [
        (f"PG-{i:05d}", f"Visit {i}", start + timedelta(hours=i), start + timedelta(hours=i, minutes=30),
         "SCHEDULED", 30) for i in range(500)])
    run_id, run = run_to_end(deployment, REVERSE_SYNC, {}, timeout=180)
    assert_success(deployment, REVERSE_SYNC, run_id, run)
    first = deployment.api.xcom(REVERSE_SYNC, run_id, "sync")
    assert (first["created"], first["failed"], first["compare"]) == (500, 0, "hubspot"), first

    deployment.postgres.execute(database, "UPDATE clinic_bookings SET hs_appointment_status = 'CANCELED' "
                                "WHERE external_appointment_id IN ('PG-00001', 'PG-00002', 'PG-00003')")
    deployment.postgres.execute(database, "DELETE FROM clinic_bookings WHERE external_appointment_id = 'PG-00004'")
    deployment.postgres.execute(database, "INSERT INTO clinic_bookings VALUES ('PG-NEW', 'New', NULL, NULL, "
                                "'SCHEDULED', 20)")
    before = batch_writes(deployment)
    run_id, run = run_to_end(deployment, REVERSE_SYNC, {}, timeout=180)
    assert_success(deployment, REVERSE_SYNC, run_id, run)
    preview = deployment.api.xcom(REVERSE_SYNC, run_id, "preview")
    assert preview["actions"] == {"unchanged": 496, "update": 3, "create": 1, "archive": 1}, preview
    second = deployment.api.xcom(REVERSE_SYNC, run_id, "sync")
    assert (second["created"], second["updated"], second["unchanged"], second["archived"]) == (1, 3, 496, 1), second
    sent = {route: count - before.get(route, 0) for route, count in batch_writes(deployment).items()
            if count != before.get(route, 0)}
    assert sent == {"POST /crm/objects/{version}/{object_type}/batch/upsert": 1,
                    "POST /crm/objects/{version}/{object_type}/batch/archive": 1}, sent
    found = by_key(deployment.appointments())
    synced = {key: records for key, records in found.items() if key.startswith("PG-")}
    assert len(synced) == 500 and all(len(records) == 1 for records in synced.values())
    assert "PG-00004" not in synced and synced["PG-00001"][0]["properties"]["hs_appointment_status"] == "CANCELED"


@pytest.mark.timeout(120)
def test_no_token_in_any_log(deployment: Deployment) -> None:
    """The HubSpot token reaches every Airflow process (AIRFLOW_CONN_HUBSPOT_DEFAULT) and every task
    sends it: no process log and no task log may contain it."""
    token = deployment.hubspot_token
    process_logs = {name: path for name, path in deployment.process_logs().items()
                    # The simulator is HubSpot's side: it prints the token it accepts by design.
                    if name != "simulator.log"}
    task_logs = deployment.task_log_files()
    assert {"scheduler.log", "triggerer.log", "dag-processor.log", "api-server.log"} <= set(process_logs)
    assert task_logs, f"no task log files under {deployment.home / 'logs'}"
    # A capture that saw nothing could pass blindly: the summary line every create task logs must be there,
    # and the requests that carried the token must have happened.
    create_logs = [path for path in task_logs if "task_id=create_bookings" in str(path)]
    assert any("create: " in path.read_text(errors="replace") for path in create_logs), create_logs
    assert deployment.simulator("GET", "stats")["requests"] > 0
    leaked = [str(path) for path in [*process_logs.values(), *task_logs]
              if token in path.read_text(errors="replace")]
    assert not leaked, f"the HubSpot token appears in: {leaked}"
    assert token in (deployment.logs / "simulator.log").read_text(), "the grep would not see the token"
