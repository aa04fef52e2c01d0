"""Warehouse load: appointments modified in each data interval merged into a table keyed by ``id``, in one task.

Each scheduled run loads exactly its data interval, half-open ``[data_interval_start, data_interval_end)`` on
``hs_lastmodifieddate``, searched only once the interval's end is ``search_lag`` old (HubSpot's search
index lags writes; the wait is deferred to the triggerer), so consecutive runs neither miss nor repeat
a record and ``catchup`` loads history interval by interval. A manual run (Airflow 3 triggers those
without a logical date, so without a data interval) loads the timetable's last complete interval up
to now, or, with ``{"until": "<ISO 8601 moment>"}``, from the start of the interval holding that
moment up to it.

`HubSpotAppointmentsToSqlOperator` extracts the interval and the appointments archived in it (so
deletions in HubSpot are reflected: ``archived = true``), keeps both Parquet extracts, and merges them
into the table by ``id`` in one transaction: re-running an interval changes nothing twice and never
duplicates a row. The first run creates the table, typed from HubSpot's property schema.

The embedded warehouse is a local DuckDB file (connection ``hubspot_appointments_duckdb``, defined here
when you choose no other). To load into your own warehouse, set ``HUBSPOT_APPOINTMENTS_WAREHOUSE_CONN``
to any common-sql connection (PostgreSQL, Snowflake, SQLite, DuckDB …).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, task

from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsToSqlOperator

AIRFLOW_HOME = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser()
# The load's asset: `hubspot_appointments_on_new_extract` is scheduled on it. Each run's event carries
# the table, the counts, the window and the kept extract's path in its extra.
NEW_APPOINTMENTS = Asset("hubspot_appointments_extract")
DATA_DIR = Path(os.environ.get("HUBSPOT_APPOINTMENTS_DATA_DIR", AIRFLOW_HOME / "hubspot_appointments"))
# HubSpot's search index lags writes; an interval is searched once its end is this old (seconds).
SEARCH_LAG_S = float(os.environ.get("HUBSPOT_APPOINTMENTS_SEARCH_LAG_S", 120))
WAREHOUSE = os.environ.get("HUBSPOT_APPOINTMENTS_WAREHOUSE", str(DATA_DIR / "warehouse.duckdb"))
EMBEDDED_CONN = "hubspot_appointments_duckdb"
WAREHOUSE_CONN = os.environ.get("HUBSPOT_APPOINTMENTS_WAREHOUSE_CONN", EMBEDDED_CONN)
if WAREHOUSE_CONN == EMBEDDED_CONN:  # the embedded DuckDB file, through Airflow's duckdb provider
    os.environ[f"AIRFLOW_CONN_{EMBEDDED_CONN.upper()}"] = json.dumps({"conn_type": "duckdb", "host": WAREHOUSE})

SCHEDULE = "0 0 * * *"  # daily intervals, midnight to midnight UTC
# A fixed column list keeps the warehouse schema stable when someone adds a property in HubSpot.
PROPERTIES = [
    "hs_appointment_name",
    "hs_appointment_start",
    "hs_appointment_end",
    "hs_appointment_status",
    "hs_appointment_type",
    "hs_appointment_location",
    "hs_duration",
    "hs_appointment_price",
    "external_appointment_id",
    "hs_lastmodifieddate",
]


@dag(
    dag_id="hubspot_appointments_warehouse_load",
    # A data-interval timetable: each run covers [data_interval_start, data_interval_end), the day before it.
    schedule=CronDataIntervalTimetable(SCHEDULE, timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=True,
    max_active_runs=1,  # merges into one table: one interval at a time
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=1)},
    # A manual run of the current interval can load up to a moment instead of the interval's end.
    params={"until": Param(None, type=["null", "string"], description="load up to this ISO 8601 moment")},
    tags=["hubspot", "appointments", "warehouse"],
)
def hubspot_appointments_warehouse_load() -> None:
    @task(multiple_outputs=True)
    def interval(params: dict | None = None, data_interval_start: Any = None, data_interval_end: Any = None) -> dict:
        """The window this run loads: its data interval, or for a manual run the last one up to now / `until`."""
        from croniter import croniter

        # In UTC: the cron is evaluated in a moment's own zone, and folders are named in UTC.
        until = pendulum.parse(params["until"]).in_timezone("UTC") if params and params.get("until") else None
        if data_interval_start is not None and data_interval_end is not None:
            start, end = pendulum.instance(data_interval_start), until or pendulum.instance(data_interval_end)
        elif until is not None:  # a manual run without a logical date: from the interval's start up to `until`
            start, end = pendulum.instance(croniter(SCHEDULE, until).get_prev(datetime)), until
        else:  # the last complete interval
            boundaries = croniter(SCHEDULE, pendulum.now("UTC"))
            end = pendulum.instance(boundaries.get_prev(datetime))
            start = pendulum.instance(boundaries.get_prev(datetime))
        folder = f"{DATA_DIR}/extracts/{start.strftime('%Y%m%dT%H%M%S')}"
        if WAREHOUSE_CONN == EMBEDDED_CONN:  # DuckDB creates its file, not the folder
            Path(WAREHOUSE).parent.mkdir(parents=True, exist_ok=True)
        return {"start": start.isoformat(), "end": end.isoformat(), "modified_path": f"{folder}/modified.parquet",
                "archived_path": f"{folder}/archived.parquet"}

    window = interval()
    HubSpotAppointmentsToSqlOperator(
        task_id="merge_into_warehouse",
        sql_conn_id=WAREHOUSE_CONN,
        table="appointments",
        modified_after=window["start"],
        modified_before=window["end"],
        search_lag=SEARCH_LAG_S,
        deferrable=True,  # the wait for the search index holds no worker slot
        properties=PROPERTIES,
        include_archived=True,  # and the appointments archived in the interval: archived = true
        output_path=window["modified_path"],  # the extracts are kept; the modified one is reported as an asset
        archived_output_path=window["archived_path"],
        outlets=[NEW_APPOINTMENTS],
    )


hubspot_appointments_warehouse_load()
