"""Runs whenever an appointments extract lands: scheduled on the warehouse load's asset.

The warehouse load declares ``Asset("hubspot_appointments_extract")`` as its outlet; each run's event
carries the kept extract's ``path`` (and the counts and window) in its extra. This DAG is scheduled on
that asset, so it runs after each load and reads exactly the files that triggered it. Here it counts
appointments per status; in real life it might refresh a dashboard or notify a team.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, task

EXTRACTS = Asset("hubspot_appointments_extract")  # the warehouse load's outlet


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
        # An event may be listed under more than one key (an asset and an alias it came through): count it once.
        for events in (triggering_asset_events or {}).values():
            for event in events:
                path = (event.extra or {}).get("path")
                if not path:
                    continue  # a load that kept no extract file
                identity = (path, event.source_dag_id, event.source_run_id, event.source_task_id,
                            event.source_map_index, str(event.timestamp))
                if identity in seen:
                    continue
                seen.add(identity)
                files.append(path)
                if event.extra.get("records"):
                    statuses = pd.read_parquet(path, columns=["hs_appointment_status"])["hs_appointment_status"]
                    for status, number in statuses.fillna("(none)").value_counts().items():
                        counts[str(status)] = counts.get(str(status), 0) + int(number)
        return {"extracts": files, "by_status": counts}

    count_by_status()


hubspot_appointments_on_new_extract()
