"""DAGs that feed the operators what users' data really holds; run by tests/operators/test_user_data.py."""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_appointments.operators.appointments import (
    HubSpotAppointmentsBatchCreateOperator,
    HubSpotAppointmentsExtractOperator,
)

START = pendulum.datetime(2026, 1, 1, tz="UTC")
NAN = float("nan")

# Text that looks like Jinja, quotes, braces, a NaN, a 20-digit number, a day-first date.
ROWS = [
    {"external_appointment_id": "T-1", "hs_appointment_name": "Checkup {{ ds }}", "hs_duration": 30},
    {"external_appointment_id": "T-2", "hs_appointment_name": "{% raw %}kept{% endraw %}", "hs_duration": NAN},
    {"external_appointment_id": "T-3", "hs_appointment_name": "{{ broken", "hs_appointment_notes": 'say "hi" {x}'},
    {"external_appointment_id": "T-4", "hs_appointment_name": "big", "hs_duration": 12345678901234567890},
    {"external_appointment_id": "T-5", "hs_appointment_name": "day first", "hs_appointment_date": "13/01/2026"},
    {"external_appointment_id": "T-6", "hs_appointment_name": "bool", "hs_duration": True},
]


@dag(dag_id="inline_user_data", schedule=None, start_date=START, catchup=False,
     params={"dir": Param("", type="string")})
def inline_user_data():
    HubSpotAppointmentsBatchCreateOperator(
        task_id="create", records=ROWS, dedupe_property="external_appointment_id", max_failed_records=2,
        failures_path="{{ params.dir }}/failures.parquet", id_map_path="{{ params.dir }}/ids.parquet")
    HubSpotAppointmentsBatchCreateOperator(
        task_id="create_with_format", records=[{"external_appointment_id": "F-1", "hs_appointment_name": "f",
                                                "hs_appointment_date": "13/01/2026"}],
        dedupe_property="external_appointment_id", date_format={"hs_appointment_date": "%d/%m/%Y"})


@dag(dag_id="daily_default_timetable", schedule="@daily", start_date=START, catchup=False,
     params={"dir": Param("", type="string")})
def daily_default_timetable():
    HubSpotAppointmentsExtractOperator(task_id="extract", output_path="{{ params.dir }}/default.parquet",
                                       modified_after="{{ data_interval_start }}",
                                       modified_before="{{ data_interval_end }}", search_lag=0)


@dag(dag_id="daily_interval_timetable", schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
     start_date=START, catchup=False, params={"dir": Param("", type="string")})
def daily_interval_timetable():
    HubSpotAppointmentsExtractOperator(task_id="extract", output_path="{{ params.dir }}/interval.parquet",
                                       modified_after="{{ data_interval_start }}",
                                       modified_before="{{ data_interval_end }}", search_lag=0)


inline_user_data()
daily_default_timetable()
daily_interval_timetable()


@dag(dag_id="rerun_creates", schedule=None, start_date=START, catchup=False, params={"dir": Param("", type="string")})
def rerun_creates():
    HubSpotAppointmentsBatchCreateOperator(
        task_id="natural_key", records="{{ params.dir }}/bookings.csv", dedupe_property="external_appointment_id",
        checkpoint_path="{{ params.dir }}/ckpt-natural")
    HubSpotAppointmentsBatchCreateOperator(
        task_id="derived_key", records="{{ params.dir }}/walk_ins.csv", idempotency_property="airflow_idempotency_key",
        checkpoint_path="{{ params.dir }}/ckpt-derived")


rerun_creates()
