"""DAGs the operator tests run with dag.test(); paths arrive through params."""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from airflow_provider_appointments.operators.appointments import (
    HubSpotAppointmentsArchiveOperator,
    HubSpotAppointmentsBatchCreateOperator,
    HubSpotAppointmentsExtractOperator,
    HubSpotAppointmentsUpsertOperator,
)

START = pendulum.datetime(2026, 1, 1, tz="UTC")


@dag(dag_id="operator_extracts", schedule=None, start_date=START, catchup=False,
     params={"out": Param("", type="string"), "after": Param("", type="string"), "middle": Param("", type="string"),
             "before": Param("", type="string")})
def operator_extracts():
    HubSpotAppointmentsExtractOperator(task_id="full_csv", output_path="{{ params.out }}/full.csv",
                                       properties=["hs_appointment_name", "hs_duration"])
    HubSpotAppointmentsExtractOperator(task_id="full_jsonl", output_path="{{ params.out }}/full.jsonl",
                                       properties=["hs_appointment_name"], associations=["contacts"])
    HubSpotAppointmentsExtractOperator(task_id="first_half", output_path="{{ params.out }}/first.parquet",
                                       modified_after="{{ params.after }}", modified_before="{{ params.middle }}",
                                       search_lag=0,
                                       associations=["contacts"], properties_with_history=["hs_appointment_name"])
    HubSpotAppointmentsExtractOperator(task_id="second_half", output_path="{{ params.out }}/second.parquet",
                                       modified_after="{{ params.middle }}", modified_before="{{ params.before }}",
                                       search_lag=0)


@dag(dag_id="operator_create", schedule=None, start_date=START, catchup=False,
     params={"dir": Param("", type="string")})
def operator_create():
    HubSpotAppointmentsBatchCreateOperator(
        task_id="create", records="{{ params.dir }}/create.csv", dedupe_property="external_appointment_id",
        association_columns={"contact_id": "contacts"}, id_map_path="{{ params.dir }}/create_ids.parquet",
        failures_path="{{ params.dir }}/create_failures.csv", max_failed_records=2)


@dag(dag_id="operator_upsert", schedule=None, start_date=START, catchup=False,
     params={"dir": Param("", type="string")})
def operator_upsert():
    HubSpotAppointmentsUpsertOperator(
        task_id="upsert_reject", records="{{ params.dir }}/upsert.parquet", id_property="external_appointment_id",
        failures_path="{{ params.dir }}/upsert_failures.parquet", id_map_path="{{ params.dir }}/upsert_ids.parquet",
        max_failed_ratio=0.5)
    HubSpotAppointmentsUpsertOperator(
        task_id="upsert_last", records="{{ params.dir }}/upsert_last.jsonl", id_property="external_appointment_id",
        on_duplicate_keys="last", failures_path="{{ params.dir }}/upsert_last_failures.parquet")


@dag(dag_id="operator_archive", schedule=None, start_date=START, catchup=False,
     params={"dir": Param("", type="string")})
def operator_archive():
    HubSpotAppointmentsArchiveOperator(
        task_id="archive", records="{{ params.dir }}/archive.csv", verify_exists=True,
        failures_path="{{ params.dir }}/archive_failures.parquet", max_failed_records=10)


@dag(dag_id="operator_mapped", schedule=None, start_date=START, catchup=False)
def operator_mapped():
    @task
    def shards() -> list[list[dict]]:
        return [[{"external_appointment_id": f"MAP-{shard}-{i}", "hs_appointment_name": f"m{i}"} for i in range(120)]
                for shard in range(3)]

    HubSpotAppointmentsUpsertOperator.partial(task_id="upsert", id_property="external_appointment_id").expand(
        records=shards())


@dag(dag_id="operator_policy", schedule=None, start_date=START, catchup=False,
     params={"dir": Param("", type="string")}, default_args={"retries": 0})
def operator_policy():
    HubSpotAppointmentsBatchCreateOperator(task_id="create", records="{{ params.dir }}/bad.csv",
                                           failures_path="{{ params.dir }}/bad_failures.parquet")


operator_extracts()
operator_create()
operator_upsert()
operator_archive()
operator_mapped()
operator_policy()
