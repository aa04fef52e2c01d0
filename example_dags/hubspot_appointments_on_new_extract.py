"""Runs whenever an appointments extract lands: scheduled on the extract operator's asset alias.

Each extract (for example the warehouse load's) reports its output file as an Airflow asset through
the alias ``hubspot_appointments_extract``; this DAG is scheduled on that alias, so it runs after each
one and reads exactly the files that triggered it. Here it counts appointments per status; in real
life it might refresh a dashboard or notify a team.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import AssetAlias, dag, task

EXTRACTS = AssetAlias("hubspot_appointments_extract")


@dag(
    dag_id="hubspot_appointments_on_new_extract",
    schedule=EXTRACTS,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    tags=["hubspot", "appointments", "assets"],
)
def hubspot_appointments_on_new_extract() -> None:
    @task
    def count_by_status(triggering_asset_events=None) -> dict:  # noqa: ANN001 - Airflow's context value
        """Appointments per status in each extract that triggered this run."""
        import pandas as pd

        counts: dict[str, int] = {}
        files = []
        seen = set()
        # Airflow lists each event under its asset and again under the alias it came through: count it once.
        for events in (triggering_asset_events or {}).values():
            for event in events:
                identity = (event.asset.uri, event.source_dag_id, event.source_run_id, event.source_task_id,
                            event.source_map_index, str(event.timestamp))
                if identity in seen:
                    continue
                seen.add(identity)
                path = event.asset.uri.removeprefix("file://")
                files.append(path)
                if event.extra.get("records"):
                    statuses = pd.read_parquet(path, columns=["hs_appointment_status"])["hs_appointment_status"]
                    for status, number in statuses.fillna("(none)").value_counts().items():
                        counts[str(status)] = counts.get(str(status), 0) + int(number)
        return {"extracts": files, "by_status": counts}

    count_by_status()


hubspot_appointments_on_new_extract()
