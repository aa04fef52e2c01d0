"""Lifecycle: create new bookings, associate them with their contacts, archive cancelled appointments.

1. ``create_bookings`` batch-creates the bookings file's appointments. ``external_appointment_id`` is a
   unique property, so a create whose response was lost is reconciled instead of replayed: no
   appointment is created twice. The id map (input row → new HubSpot id) is written for step 2.
2. ``associate_contacts`` links each new appointment to its contact, resolving the appointment id
   from the booking's key through the id map.
3. ``archive_cancelled`` archives the cancelled appointments that started more than
   ``older_than_days`` (default 90) before the run: the archive operator searches for them itself,
   keyset-paged past search's 10,000-result cap, so the ids never pass through XCom.
4. ``report`` prints the per-record results: what succeeded and, for every failure, HubSpot's reason.

Trigger with ``{"bookings_path": "/data/new_bookings.csv", "older_than_days": 90}``: one row per booking
with the appointment properties as columns plus ``contact_id``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.sdk import Asset, Param, dag, task

from airflow_provider_appointments.operators.appointments import (
    HubSpotAppointmentsArchiveOperator,
    HubSpotAppointmentsAssociateOperator,
    HubSpotAppointmentsBatchCreateOperator,
)

AIRFLOW_HOME = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser()
DATA_DIR = Path(os.environ.get("HUBSPOT_APPOINTMENTS_DATA_DIR", AIRFLOW_HOME / "hubspot_appointments"))
# Declared here, so Airflow registers it when it parses this file: no per-file assets, no warnings.
REPORTS = Asset("hubspot_appointments_reports")
RUN_DIR = f"{DATA_DIR}/lifecycle/{{{{ run_id | replace(':', '_') | replace('+', '_') }}}}"


@dag(
    dag_id="hubspot_appointments_lifecycle",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    params={"bookings_path": Param(str(DATA_DIR / "new_bookings.csv"), type="string"),
            "older_than_days": Param(90, type="integer",
                                     description="archive cancelled appointments that started this many days "
                                                 "before the run")},
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=30)},
    tags=["hubspot", "appointments"],
)
def hubspot_appointments_lifecycle() -> None:
    create = HubSpotAppointmentsBatchCreateOperator(
        task_id="create_bookings",
        records="{{ params.bookings_path }}",
        ignore_columns=["contact_id"],
        dedupe_property="external_appointment_id",
        id_map_path=f"{RUN_DIR}/created_id_map.parquet",
        failures_path=f"{RUN_DIR}/create_failures.parquet",
        outlets=[REPORTS],  # an asset event per run, its extra holding the counts and the report paths
        max_failed_ratio=0.2,
    )
    associate = HubSpotAppointmentsAssociateOperator(
        task_id="associate_contacts",
        records="{{ params.bookings_path }}",
        id_map=f"{RUN_DIR}/created_id_map.parquet",
        appointment_key="external_appointment_id",
        to_object_type="contacts",
        to_object_id_column="contact_id",
        failures_path=f"{RUN_DIR}/associate_failures.parquet",
        outlets=[REPORTS],  # an asset event per run, its extra holding the counts and the report paths
        max_failed_ratio=0.2,
    )

    # Cancelled appointments that started more than `older_than_days` before the run (epoch ms),
    # found by a search keyset-paged past its 10,000-result cap and archived in batches of 100.
    archive = HubSpotAppointmentsArchiveOperator(
        task_id="archive_cancelled",
        filter_groups=[{"filters": [
            {"propertyName": "hs_appointment_status", "operator": "EQ", "value": "CANCELED"},
            {"propertyName": "hs_appointment_start", "operator": "LT",
             "value": "{{ ((dag_run.run_after - macros.timedelta(days=params.older_than_days)).timestamp() * 1000)"
                      " | int }}"},
        ]}],
        failures_path=f"{RUN_DIR}/archive_failures.parquet",
        outlets=[REPORTS],  # an asset event per run, its extra holding the counts and the report paths
    )

    @task
    def report(created: dict, associated: dict, archived: dict) -> dict:
        """Per-record results: the id map and every failure with HubSpot's reason."""
        import pandas as pd

        id_map = pd.read_parquet(created["id_map_path"])
        print(f"created {created['created']} appointments:")
        print(id_map.to_string(index=False, max_rows=50))
        for summary in (created, associated, archived):
            print(f"{summary['operation']}: {summary['succeeded']} succeeded, {summary['failed']} failed")
            if summary["failed"]:
                failures = pd.read_parquet(summary["failures_path"])
                print(failures[["input_row", "input_key", "category", "message"]].to_string(index=False, max_rows=50))
        return {summary["operation"]: {"succeeded": summary["succeeded"], "failed": summary["failed"]}
                for summary in (created, associated, archived)}

    create >> associate
    report(create.output, associate.output, archive.output)


hubspot_appointments_lifecycle()
