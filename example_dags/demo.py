"""The one-command demo (``make demo``): the example DAGs, for real, against the embedded simulator.

It creates a project-local ``AIRFLOW_HOME`` (``.airflow-demo/``, SQLite), starts the HubSpot simulator
in its own process seeded with realistic appointments and contacts, points ``hubspot_default`` at it,
writes a legacy export and a bookings file, runs the warehouse load for the last three days, the bulk
backfill, the lifecycle DAG and the reverse sync (twice: the second night sends only what changed in
the table) with ``dag.test()``, loads the interval the writes landed in, prints what happened and saves
a chart of appointments per day. Exits non-zero if any DAG run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
HOME = REPO / ".airflow-demo"
DATA = HOME / "data"
SEARCH_LAG_MS = 3000


def _quiet_third_parties() -> None:
    """The demo shows what this provider does: other libraries' deprecation notices are not ours to show."""
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=".*GitWildMatchPattern.*")
    os.environ["PYTHONWARNINGS"] = "ignore::DeprecationWarning,ignore::FutureWarning"  # the airflow CLI calls


def _prepare_environment() -> None:
    """Airflow reads its configuration on first import: set everything before importing it."""
    _quiet_third_parties()
    shutil.rmtree(HOME, ignore_errors=True)
    DATA.mkdir(parents=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "HUBSPOT_APPOINTMENTS_DATA_DIR": str(DATA),
            # The simulator's search index lags writes by SEARCH_LAG_MS, as HubSpot's does; the
            # extract waits this long after a window's end before searching it.
            "HUBSPOT_APPOINTMENTS_SEARCH_LAG_S": str(SEARCH_LAG_MS / 1000 + 2),
        }
    )
    _airflow("db", "migrate")


def _airflow(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "airflow", *args], check=True, capture_output=True, env=os.environ.copy())


def _run(dag_id: str, **test_kwargs: Any) -> tuple[str, dict[str, Any]]:
    """Run one DAG with dag.test(); return its state and each task's XCom return value."""
    from airflow.dag_processing.dagbag import DagBag

    _quiet_third_parties()  # again: importing Airflow resets the warning filters
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag = DagBag(dag_folder=str(REPO / "example_dags")).dags[dag_id]
    dag_run = dag.test(**test_kwargs)
    results: dict[str, Any] = {}
    with create_session() as session:
        rows = session.execute(
            XComModel.get_many(key="return_value", run_id=dag_run.run_id, dag_ids=dag_id).with_only_columns(
                XComModel.task_id, XComModel.map_index, XComModel.value
            )
        ).all()
    for row in rows:
        value = XComModel.deserialize_value(row)
        if row.map_index >= 0:
            results.setdefault(row.task_id, []).append(value)
        else:
            results[row.task_id] = value
    return str(dag_run.state), results


def write_legacy_export(path: Path, sim: Any, rows: int) -> Path:
    """A CSV export from "another system": half updates of seeded appointments, half new ones, a few bad rows."""
    import pandas as pd

    start = datetime(2026, 12, 1, 9, tzinfo=timezone.utc)
    statuses = ["SCHEDULED", "CONFIRMED", "COMPLETED", "CANCELED", "NO_SHOW"]
    records = []
    for row in range(rows):
        begins = start + timedelta(hours=row % 2000)
        key = f"EXT-{row + 1:06d}" if row % 2 == 0 else f"LEGACY-{row:06d}"
        records.append(
            {
                "external_appointment_id": key,
                "hs_appointment_name": f"Legacy appointment {row:05d}",
                "hs_appointment_start": begins.isoformat(),
                "hs_appointment_end": (begins + timedelta(minutes=30)).isoformat(),
                "hs_appointment_status": statuses[row % len(statuses)],
                "hs_duration": 30,
                "hs_appointment_price": round(40 + (row % 7) * 12.5, 2),
            }
        )
    # What real exports carry: a status the CRM does not know and a number that is text.
    for row in range(0, rows, 250):
        records[row]["hs_appointment_status"] = "MAYBE_LATER"
    for row in range(125, rows, 500):
        records[row]["hs_duration"] = "half an hour"
    pd.DataFrame.from_records(records).to_csv(path, index=False)
    return path


def write_bookings(path: Path, sim: Any) -> Path:
    """New bookings from a booking system, each for an existing contact; one has an unknown contact."""
    import pandas as pd
    import requests

    response = requests.get(
        f"{sim.url}/crm/objects/2026-03/contacts", params={"limit": 20},
        headers={"Authorization": f"Bearer {sim.token}"}, timeout=30,
    )
    response.raise_for_status()
    contact_ids = [contact["id"] for contact in response.json()["results"]]
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
    records = [
        {
            "external_appointment_id": f"BOOKING-{number:04d}",
            "hs_appointment_name": f"New patient consultation #{number}",
            "hs_appointment_start": (start + timedelta(hours=number)).isoformat(),
            "hs_appointment_end": (start + timedelta(hours=number, minutes=45)).isoformat(),
            "hs_appointment_status": "SCHEDULED",
            "hs_appointment_type": "IN_PERSON" if number % 3 else "VIDEO",
            "contact_id": contact_ids[number % len(contact_ids)],
        }
        for number in range(1, 21)
    ]
    records[6]["hs_appointment_type"] = "CARRIER_PIGEON"
    records[11]["contact_id"] = "999999999"
    pd.DataFrame.from_records(records).to_csv(path, index=False)
    return path


def write_clinic_bookings(warehouse: Path, rows: int = 400) -> None:
    """The clinic's own bookings table in the warehouse, which the reverse sync mirrors into HubSpot."""
    import duckdb

    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE OR REPLACE TABLE clinic_bookings (external_appointment_id VARCHAR PRIMARY KEY, "
                    "hs_appointment_name VARCHAR, hs_appointment_start TIMESTAMPTZ, hs_appointment_end TIMESTAMPTZ, "
                    "hs_appointment_status VARCHAR, hs_duration INTEGER)")
        con.executemany("INSERT INTO clinic_bookings VALUES (?, ?, ?, ?, ?, ?)", [
            (f"CLINIC-{number:05d}", f"Clinic visit #{number}", start + timedelta(hours=number),
             start + timedelta(hours=number, minutes=30), "SCHEDULED", 30) for number in range(rows)])


def change_clinic_bookings(warehouse: Path) -> str:
    """A day at the clinic: 5 visits rescheduled, 2 bookings deleted, 3 walk-ins added."""
    import duckdb

    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE clinic_bookings SET hs_appointment_start = hs_appointment_start + INTERVAL 1 DAY, "
                    "hs_appointment_end = hs_appointment_end + INTERVAL 1 DAY "
                    "WHERE external_appointment_id IN (SELECT external_appointment_id FROM clinic_bookings "
                    "ORDER BY external_appointment_id LIMIT 5)")
        con.execute("DELETE FROM clinic_bookings WHERE external_appointment_id IN ('CLINIC-00100', 'CLINIC-00101')")
        con.execute("INSERT INTO clinic_bookings SELECT 'CLINIC-WALKIN-' || i, 'Walk-in #' || i, NULL, NULL, "
                    "'SCHEDULED', 15 FROM range(3) t(i)")
    return "5 rescheduled, 2 deleted, 3 walk-ins added"


def _chart(warehouse: Path, target: Path) -> Path:
    """Appointments per day (by start time) from the warehouse table, as a small bar chart."""
    import duckdb
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "SELECT CAST(hs_appointment_start AS DATE) AS day, count(*) FILTER (WHERE NOT archived), "
            "count(*) FILTER (WHERE archived) FROM appointments WHERE hs_appointment_start IS NOT NULL "
            "GROUP BY day ORDER BY day"
        ).fetchall()
    days = [row[0] for row in rows]
    figure, axes = plt.subplots(figsize=(10, 3.5))
    axes.bar(days, [row[1] for row in rows], color="#ff7a59", label="active")
    axes.bar(days, [row[2] for row in rows], bottom=[row[1] for row in rows], color="#7c98b6", label="archived")
    axes.set_title("HubSpot appointments per day (warehouse table)")
    axes.set_ylabel("appointments")
    axes.legend()
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(target, dpi=110)
    return target


def main(argv: list[str] | None = None) -> int:
    global HOME, DATA
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=3000, help="appointments seeded in the simulator")
    parser.add_argument("--backfill-rows", type=int, default=5000, help="rows in the legacy export to upsert")
    parser.add_argument("--home", type=Path, default=REPO / ".airflow-demo",
                        help="AIRFLOW_HOME for the demo (recreated)")
    args = parser.parse_args(argv)
    HOME, DATA = args.home.resolve(), args.home.resolve() / "data"

    _prepare_environment()
    from airflow_provider_appointments.simulator import SimulatorConfig, SimulatorProcess

    failed: list[str] = []
    config = SimulatorConfig(seed=2026, seed_appointments=args.appointments, latency_ms=15, requests_per_10s=190,
                             search_lag_ms=SEARCH_LAG_MS)
    with SimulatorProcess(config) as sim:
        os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = sim.airflow_connection_json()
        _airflow("pools", "set", "hubspot_api", "4", "HubSpot API budget")
        print(f"HubSpot simulator on {sim.url}: {args.appointments} appointments seeded")

        legacy = write_legacy_export(DATA / "legacy_appointments.csv", sim, rows=args.backfill_rows)
        bookings = write_bookings(DATA / "new_bookings.csv", sim)
        today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)

        print("\n== Warehouse load, one run per daily interval ==")
        for days_ago in (2, 1, 0):
            logical_date = today - timedelta(days=days_ago)
            state, xcom = _run("hubspot_appointments_warehouse_load", logical_date=logical_date)
            merged = xcom.get("merge_into_warehouse") or {}
            print(
                f"  interval ending {logical_date:%Y-%m-%d}: {state}; modified {merged.get('modified', '?')}, "
                f"archived {merged.get('archived', '?')}: {merged.get('inserted', '?')} rows inserted, "
                f"{merged.get('updated', '?')} updated"
            )
            if state != "success":
                failed.append(f"warehouse load {logical_date:%Y-%m-%d}")
        print("\n== Bulk backfill: legacy export upserted by external_appointment_id, 4 mapped shards ==")
        state, xcom = _run("hubspot_appointments_bulk_backfill", run_conf={"input_path": str(legacy), "shards": 4})
        totals = xcom.get("summarize") or {}
        print(f"  {state}: {totals.get('records', '?')} rows → {totals.get('created', '?')} created, "
              f"{totals.get('updated', '?')} updated, {totals.get('failed', '?')} failed "
              f"in {totals.get('requests', '?')} requests")
        for path in totals.get("failures_paths", [])[:1]:
            print(f"  failure reports next to the input, e.g. {path}")
        if state != "success":
            failed.append("bulk backfill")

        print("\n== Lifecycle: create bookings, associate with contacts, archive cancelled ones that started ==")
        state, xcom = _run("hubspot_appointments_lifecycle", run_conf={"bookings_path": str(bookings),
                                                                        "older_than_days": 0})
        for task_id in ("create_bookings", "associate_contacts", "archive_cancelled"):
            result = xcom.get(task_id) or {}
            print(f"  {task_id}: {result.get('succeeded', '?')} succeeded, {result.get('failed', '?')} failed"
                  + (f"  (report: {result['failures_path']})" if result.get("failed") else ""))
        if state != "success":
            failed.append("lifecycle")

        print("\n== Reverse sync: the clinic's bookings table in the warehouse, mirrored into HubSpot ==")
        warehouse = DATA / "warehouse.duckdb"
        write_clinic_bookings(warehouse)
        os.environ["AIRFLOW_CONN_HUBSPOT_WAREHOUSE"] = json.dumps({"conn_type": "duckdb", "host": str(warehouse)})
        for label in ("first run", "next night"):
            if label == "next night":
                print(f"  the table changes: {change_clinic_bookings(warehouse)}")
            before = sim.stats()["requests"]
            state, xcom = _run("hubspot_appointments_reverse_sync")
            preview, synced = xcom.get("preview") or {}, xcom.get("sync") or {}
            print(f"  {label}: {state}; preview {preview.get('actions', '?')}; synced: {synced.get('created', '?')} "
                  f"created, {synced.get('updated', '?')} updated, {synced.get('unchanged', '?')} unchanged, "
                  f"{synced.get('archived', '?')} archived in {sim.stats()['requests'] - before} requests "
                  "(preview included)")
            if state != "success":
                failed.append(f"reverse sync ({label})")

        print("\n== Warehouse load of today's interval so far: picks up the writes above ==")
        until = datetime.now(timezone.utc)
        print(f"  waits {os.environ['HUBSPOT_APPOINTMENTS_SEARCH_LAG_S']} s for HubSpot's search index to catch up "
              f"with writes before {until:%H:%M:%S}")
        state, xcom = _run("hubspot_appointments_warehouse_load", logical_date=today + timedelta(days=1),
                           run_conf={"until": until.isoformat()})
        merged = xcom.get("merge_into_warehouse") or {}
        print(f"  {state}; modified {merged.get('modified', '?')}, archived {merged.get('archived', '?')}, "
              f"{merged.get('inserted', '?')} rows inserted, {merged.get('updated', '?')} updated")
        if state != "success":
            failed.append("warehouse load (today)")

        stats = sim.stats()
        print(f"\nSimulator saw {stats['requests']} requests, {stats['rate_limited']} answered 429.")
    chart = _chart(DATA / "warehouse.duckdb", HOME / "appointments_per_day.png")
    print(f"Warehouse: {DATA / 'warehouse.duckdb'} (table appointments); chart: {chart}")
    print("All DAG runs succeeded." if not failed else f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
