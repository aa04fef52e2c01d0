"""Bulk backfill: a large CSV or Parquet export from another system → upsert into HubSpot by a unique key.

The input is split into shards (streamed, never loaded whole) and each shard is upserted by a mapped
task instance; at most ``MAX_PARALLEL_SHARDS`` of them run at once (``max_active_tis_per_dagrun``).
Every task paces itself on HubSpot's rate-limit headers, so the tasks sharing one account slow down
together, but each also keeps ``concurrency`` requests in flight: ``shards in parallel × concurrency``
around 10–20 keeps an account with 190 requests / 10 s busy without queueing. To share the budget
with other DAGs, put the task in a pool (``pool="hubspot_api"``) after creating it, e.g.
``airflow pools set hubspot_api 4 "HubSpot API budget"``: a task whose pool does not exist never starts.

Each shard writes its failure report and id map next to the input; its checkpoint is the default one
(one per mapped task instance under ``[hubspot] checkpoint_base``). A shard task that is killed and
retried resumes where it stopped instead of starting over; upserts by ``external_appointment_id`` are
idempotent, so nothing is written twice.

Trigger with ``{"input_path": "/data/legacy_appointments.csv"}`` (CSV, Parquet or JSON Lines).
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, task

from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsUpsertOperator

AIRFLOW_HOME = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser()
DATA_DIR = Path(os.environ.get("HUBSPOT_APPOINTMENTS_DATA_DIR", AIRFLOW_HOME / "hubspot_appointments"))
MAX_PARALLEL_SHARDS = 4


@dag(
    dag_id="hubspot_appointments_bulk_backfill",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    params={
        "input_path": Param(str(DATA_DIR / "legacy_appointments.csv"), type="string"),
        "shards": Param(4, type="integer", minimum=1, maximum=64),
    },
    default_args={"retries": 3, "retry_delay": pendulum.duration(seconds=30)},
    tags=["hubspot", "appointments", "backfill"],
)
def hubspot_appointments_bulk_backfill() -> None:
    @task
    def split_input(params: dict | None = None) -> list[dict]:
        """Stream the input into Parquet shards of whole batches; one mapped upsert per shard."""
        from airflow_provider_appointments.records.shards import split_into_shards

        source = Path(params["input_path"])
        # A key in two shards would be written by two tasks at once: refused here, naming both rows.
        shards = split_into_shards(source, int(params["shards"]), source.parent / f"{source.stem}.shards",
                                   key_column="external_appointment_id")
        return [
            {
                "records": shard.path,
                # Reports and id maps number rows as in the original file, not as in the shard.
                "row_offset": shard.row_offset,
                "failures_path": str(source.parent / f"{source.stem}.shard-{index:03d}.failures.parquet"),
                "id_map_path": str(source.parent / f"{source.stem}.shard-{index:03d}.id_map.parquet"),
            }
            for index, shard in enumerate(shards)
        ]

    upserts = HubSpotAppointmentsUpsertOperator.partial(
        task_id="upsert_shard",
        id_property="external_appointment_id",
        max_active_tis_per_dagrun=MAX_PARALLEL_SHARDS,
        max_failed_ratio=0.05,  # past 5 % bad rows in a shard, fail that shard (after writing its report)
    ).expand_kwargs(split_input())

    @task
    def summarize(results: list[dict]) -> dict:
        """One line per shard in the log and the totals in XCom."""
        # Index by position: iterating a mapped task's XComs probes one past the end (and logs an error).
        results = [results[index] for index in range(len(results))]
        counted = ("records", "succeeded", "failed", "created", "updated", "requests")
        totals = {key: sum(result[key] for result in results) for key in counted}
        totals["failures_paths"] = [result["failures_path"] for result in results]
        totals["id_map_paths"] = [result["id_map_path"] for result in results]
        return totals

    summarize(upserts.output)


hubspot_appointments_bulk_backfill()
