"""Warehouse load: appointments modified in each data interval → Parquet → merged into a table keyed by ``id``.

Each scheduled run extracts exactly its data interval, half-open ``[data_interval_start, data_interval_end)`` on
``hs_lastmodifieddate``, searched only once the interval's end is ``search_lag`` old (HubSpot's search
index lags writes; the wait is deferred to the triggerer), so consecutive runs neither miss nor repeat
a record and ``catchup`` loads history interval by interval. A manual run (Airflow 3 triggers those
without a logical date, so without a data interval) loads the timetable's last complete interval up
to now, or, with ``{"until": "<ISO 8601 moment>"}``, from the start of the interval holding that
moment up to it. A second extract picks up appointments
archived in the interval, so deletions in HubSpot are reflected (``archived = true``). The merge
deletes then inserts by ``id`` in one transaction: re-running an interval replaces rows, never
duplicates them.

The embedded warehouse is a local DuckDB file. With a real warehouse the merge step is one SQL
statement through Airflow's common-sql provider, for example on Postgres / Snowflake:

    from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

    SQLExecuteQueryOperator(
        task_id="merge_into_warehouse",
        conn_id="warehouse",
        sql='''
            MERGE INTO analytics.hubspot_appointments AS t
            USING staging.hubspot_appointments_{{ ts_nodash }} AS s ON t.id = s.id
            WHEN MATCHED THEN UPDATE SET ...
            WHEN NOT MATCHED THEN INSERT ...
        ''',
    )

after loading the Parquet file into the staging table (e.g. ``COPY INTO`` / ``S3ToSnowflakeOperator``).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsExtractOperator

AIRFLOW_HOME = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser()
DATA_DIR = Path(os.environ.get("HUBSPOT_APPOINTMENTS_DATA_DIR", AIRFLOW_HOME / "hubspot_appointments"))
# HubSpot's search index lags writes; an interval is searched once its end is this old (seconds).
SEARCH_LAG_S = float(os.environ.get("HUBSPOT_APPOINTMENTS_SEARCH_LAG_S", 120))
WAREHOUSE = os.environ.get("HUBSPOT_APPOINTMENTS_WAREHOUSE", str(DATA_DIR / "warehouse.duckdb"))

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
        return {"start": start.isoformat(), "end": end.isoformat(), "modified_path": f"{folder}/modified.parquet",
                "archived_path": f"{folder}/archived.parquet"}

    window = interval()
    modified = HubSpotAppointmentsExtractOperator(
        task_id="extract_modified",
        modified_after=window["start"],
        modified_before=window["end"],
        search_lag=SEARCH_LAG_S,
        deferrable=True,  # the wait for the search index holds no worker slot
        properties=PROPERTIES,
        associations=["contacts"],
        output_path=window["modified_path"],
    )
    archived = HubSpotAppointmentsExtractOperator(
        task_id="extract_archived",
        archived=True,
        modified_after=window["start"],
        modified_before=window["end"],
        properties=PROPERTIES,
        associations=["contacts"],
        output_path=window["archived_path"],
    )

    @task
    def merge_into_warehouse(modified: dict, archived: dict) -> dict:
        """Delete-then-insert by id, modified rows first and archived rows last, in one transaction."""
        import duckdb

        Path(WAREHOUSE).parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(WAREHOUSE) as con:
            con.execute("BEGIN")
            for extract in (modified, archived):
                if not extract["records"]:
                    continue
                source = f"read_parquet('{extract['path']}')"
                con.execute(f"CREATE TABLE IF NOT EXISTS appointments AS SELECT * FROM {source} LIMIT 0")
                con.execute(f"DELETE FROM appointments WHERE id IN (SELECT id FROM {source})")
                con.execute(f"INSERT INTO appointments BY NAME SELECT * FROM {source}")
            con.execute("COMMIT")
            tables = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
            rows = con.execute("SELECT count(*) FROM appointments").fetchone()[0] if "appointments" in tables else 0
        return {
            "warehouse": WAREHOUSE,
            "modified": modified["records"],
            "archived": archived["records"],
            "table_rows": rows,
        }

    merge_into_warehouse(modified.output, archived.output)


hubspot_appointments_warehouse_load()
