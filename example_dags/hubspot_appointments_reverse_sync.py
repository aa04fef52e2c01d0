"""Reverse sync: a warehouse table of bookings mirrored into HubSpot's appointments every night.

The table (``clinic_bookings`` by default: one row per booking, keyed by ``external_appointment_id``)
is read through an Airflow SQL connection (``hubspot_warehouse``: PostgreSQL, Snowflake, BigQuery,
DuckDB, SQLite …). Each run first previews what it would do (a dry run: ``create``, ``update`` with the
changed properties, ``unchanged``, ``archive``, ``refused``, in a Parquet report), then syncs:

- rows equal to what the last run wrote cost no request (the sync's state file says what that was);
- changed rows send only their changed properties, so edits made in HubSpot to other properties stay;
- bookings that left the table are archived, but only those this sync wrote, and a run that would
  archive more than 10 % of them (an empty staging table, a broken join) fails before writing anything.

On Sundays the sync compares with HubSpot's current values instead of its state (a batch read per 100
rows), so edits made in HubSpot to the synced properties are put back.

Settings (environment): ``HUBSPOT_APPOINTMENTS_SYNC_CONN`` (the connection id), ``..._SYNC_TABLE`` (the
table), ``HUBSPOT_APPOINTMENTS_DATA_DIR`` (where the state and reports go).
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.sdk import dag

from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsSyncOperator

AIRFLOW_HOME = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser()
DATA_DIR = Path(os.environ.get("HUBSPOT_APPOINTMENTS_DATA_DIR", AIRFLOW_HOME / "hubspot_appointments"))
CONN_ID = os.environ.get("HUBSPOT_APPOINTMENTS_SYNC_CONN", "hubspot_warehouse")
TABLE = os.environ.get("HUBSPOT_APPOINTMENTS_SYNC_TABLE", "clinic_bookings")
STATE = f"{DATA_DIR}/sync/{TABLE}.state.parquet"
REPORTS = f"{DATA_DIR}/sync/reports/{{{{ run_id | replace(':', '_') | replace('+', '_') }}}}"

# The columns the booking system owns in HubSpot; any other property of an appointment is left alone.
SOURCE_SQL = f"""
SELECT external_appointment_id,
       hs_appointment_name,
       hs_appointment_start,
       hs_appointment_end,
       hs_appointment_status,
       hs_duration
FROM {TABLE}
ORDER BY external_appointment_id
"""

common = {
    "sql": SOURCE_SQL,
    "sql_conn_id": CONN_ID,
    "id_property": "external_appointment_id",
    "mode": "mirror",
    "state_path": STATE,
    # Sundays: compare with HubSpot itself, catching edits made there since the last run.
    # (run_after: a manual run in Airflow 3 has no logical date.)
    "compare": "{{ 'hubspot' if dag_run.run_after.weekday() == 6 else 'state' }}",
}


@dag(
    dag_id="hubspot_appointments_reverse_sync",
    schedule="0 2 * * *",  # nightly, after the warehouse's own loads
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,  # each run syncs the table as it is now: there is nothing to catch up
    max_active_runs=1,  # one sync at a time owns the state file
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=1)},
    tags=["hubspot", "appointments", "warehouse", "sync"],
)
def hubspot_appointments_reverse_sync() -> None:
    preview = HubSpotAppointmentsSyncOperator(
        task_id="preview",
        dry_run=True,
        dry_run_path=f"{REPORTS}/plan.parquet",
        **common,
    )
    sync = HubSpotAppointmentsSyncOperator(
        task_id="sync",
        failures_path=f"{REPORTS}/failures.parquet",
        id_map_path=f"{REPORTS}/ids.parquet",
        max_failed_ratio=0.01,
        **common,
    )
    preview >> sync


hubspot_appointments_reverse_sync()
