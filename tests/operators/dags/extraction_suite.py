"""A DAG whose extract defers while HubSpot's search index catches up; run by tests/operators/test_extraction.py."""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsExtractOperator


@dag(dag_id="deferred_extract", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
     params={"out": Param("", type="string"), "after": Param("", type="string"), "before": Param("", type="string")})
def deferred_extract():
    HubSpotAppointmentsExtractOperator(
        task_id="extract", output_path="{{ params.out }}/deferred.parquet", modified_after="{{ params.after }}",
        modified_before="{{ params.before }}", search_lag=1.0, deferrable=True)


deferred_extract()
