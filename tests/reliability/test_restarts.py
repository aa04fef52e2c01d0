"""What users do to a running task: kill it (SIGKILL) midway and let Airflow retry it, re-run the whole
DAG run, lose answers. Every row ends exactly once, in HubSpot or in the failure report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from airflow_provider_appointments.operators.appointments import (
    HubSpotAppointmentsBatchCreateOperator,
    HubSpotAppointmentsUpsertOperator,
)
from tests.conftest import REPO_ROOT

ROWS = 3000
IDEMPOTENCY = "airflow_idempotency_key"

# The task as an Airflow worker runs it: one process per try, the same task instance each time.
TASK_SCRIPT = """
import json, sys
from datetime import datetime
from airflow_provider_appointments.operators import appointments

settings = json.loads(sys.argv[1])

class TI:
    dag_id, task_id, run_id, map_index = "restarts", "write", "manual__2026-11-01T00:00:00+00:00", -1
    try_number = settings.pop("try_number", 1)

class DagRun:
    start_date = datetime.fromisoformat(settings.pop("run_started", "2026-11-01T00:00:00+00:00"))

operator = getattr(appointments, settings.pop("operator"))(task_id="write", **settings)
print("SUMMARY " + json.dumps(operator.execute({"ti": TI(), "dag_run": DagRun()})), flush=True)
"""


class TI:
    dag_id, task_id, run_id, map_index = "restarts", "write", "manual__2026-11-01T00:00:00+00:00", -1


@pytest.fixture
def sim(hubspot_simulator_factory, monkeypatch):
    # Latency makes the run long enough to be killed in the middle of it.
    simulator = hubspot_simulator_factory(seed_appointments=0, latency_ms=30)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", simulator.airflow_connection_json())
    return simulator


def input_file(tmp_path: Path, prefix: str, rows: int = ROWS) -> str:
    path = tmp_path / "in.parquet"
    pd.DataFrame({"external_appointment_id": [f"{prefix}{i}" for i in range(rows)],
                  "hs_appointment_name": [f"{prefix}name-{i}" for i in range(rows)],
                  "hs_duration": [str(i % 90) for i in range(rows)]}).to_parquet(path)
    return str(path)


def run_task(settings: dict, kill_after_writes: int | None = None, sim=None) -> dict | None:
    """Run the task in its own process; with `kill_after_writes`, SIGKILL it once the simulator has
    answered that many write batches, as a worker dying midway would."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-c", TASK_SCRIPT, json.dumps(settings)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_after_writes is not None:
        deadline = time.monotonic() + 120
        while writes(sim) < kill_after_writes:
            assert process.poll() is None, f"the task ended before it could be killed: {process.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
        return None
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return json.loads(next(line for line in out.splitlines() if line.startswith("SUMMARY "))[8:])


def writes(sim) -> int:
    return sum(count for route, count in sim.stats()["by_route"].items()
               if route.startswith("POST") and "/batch/" in route and "/batch/read" not in route)


def names(sim, prefix: str) -> Counter:
    return Counter(r.properties.get("hs_appointment_name", "") for r in sim.store.appointments()
                   if r.properties.get("hs_appointment_name", "").startswith(prefix))


def create_settings(tmp_path: Path, records: str, **extra) -> dict:
    return {"operator": "HubSpotAppointmentsBatchCreateOperator", "records": records, "window_rows": 500,
            "checkpoint_path": str(tmp_path / "ckpt"), "id_map_path": str(tmp_path / "ids.parquet"),
            "failures_path": str(tmp_path / "failures.parquet"), "max_failed_ratio": 1.0,
            "ignore_columns": ["external_appointment_id"], **extra}


def test_a_killed_create_without_a_key_reports_the_unknown_window_and_writes_nothing_twice(sim, tmp_path):
    settings = create_settings(tmp_path, input_file(tmp_path, "N-"))
    assert run_task(settings, kill_after_writes=12, sim=sim) is None
    summary = run_task(settings)
    created = names(sim, "N-")
    assert max(created.values()) == 1, "an appointment was created twice"
    failures = pd.read_parquet(tmp_path / "failures.parquet")
    assert summary["records"] == ROWS and summary["succeeded"] + summary["failed"] == ROWS
    # Only the requests in flight at the kill are unknown: concurrency (8) × batch_size (100) rows at most.
    assert set(failures["category"]) == {"AMBIGUOUS_WRITE"} and 0 < len(failures) <= 800
    assert "not sent again" in failures["message"].iloc[0]
    ids = pd.read_parquet(tmp_path / "ids.parquet")
    assert len(ids) == summary["succeeded"] and set(ids["input_row"]).isdisjoint(failures["input_row"])
    # What HubSpot holds is every succeeded row plus, at most, the ambiguous ones: nothing else.
    succeeded_names = {f"N-name-{row}" for row in ids["input_row"]}
    assert succeeded_names <= set(created) <= succeeded_names | {f"N-name-{row}" for row in failures["input_row"]}


def test_a_killed_create_with_default_arguments_writes_nothing_twice(sim, tmp_path):
    """No key, no checkpoint_path, nothing configured: the default checkpoint under $AIRFLOW_HOME holds."""
    rows = 6000
    settings = {"operator": "HubSpotAppointmentsBatchCreateOperator", "records": input_file(tmp_path, "D-", rows),
                "ignore_columns": ["external_appointment_id"], "max_failed_ratio": 1.0,
                "failures_path": str(tmp_path / "failures.parquet")}
    assert run_task(settings, kill_after_writes=30, sim=sim) is None
    retried = run_task({**settings, "try_number": 2})
    created = names(sim, "D-")
    assert max(created.values()) == 1, "an appointment was created twice"
    assert retried["records"] == rows and retried["created"] == retried["succeeded"]
    # HubSpot holds every succeeded row and, at most, the rows whose request was in flight at the kill.
    assert retried["succeeded"] <= len(created) <= rows
    if retried["failed"]:
        failures = pd.read_parquet(tmp_path / "failures.parquet")
        assert set(failures["category"]) == {"AMBIGUOUS_WRITE"} and len(failures) <= 800  # concurrency × batch


def test_a_killed_create_with_a_natural_key_counts_what_the_killed_try_created(sim, tmp_path):
    """Without a checkpoint (opted out), a retry still counts the killed try's records as created."""
    run_started = pd.Timestamp.now(tz="UTC").isoformat()
    settings = {"operator": "HubSpotAppointmentsBatchCreateOperator", "records": input_file(tmp_path, "R-"),
                "dedupe_property": "external_appointment_id", "checkpoint_path": None, "run_started": run_started}
    assert run_task(settings, kill_after_writes=12, sim=sim) is None
    assert 0 < len(names(sim, "R-")) < ROWS
    retried = run_task({**settings, "try_number": 2})
    assert (retried["created"], retried["unchanged"], retried["failed"]) == (ROWS, 0, 0)
    assert len(names(sim, "R-")) == ROWS and max(names(sim, "R-").values()) == 1


@pytest.mark.parametrize("key", ["dedupe", "idempotency"])
def test_a_killed_create_with_a_key_converges_with_an_uninterrupted_summary(sim, tmp_path, key):
    extra = {"dedupe_property": "external_appointment_id", "ignore_columns": []} if key == "dedupe" \
        else {"idempotency_property": IDEMPOTENCY}
    settings = create_settings(tmp_path, input_file(tmp_path, "K-"), **extra)
    assert run_task(settings, kill_after_writes=12, sim=sim) is None
    interrupted = len(names(sim, "K-"))
    assert 0 < interrupted < ROWS
    summary = run_task(settings)
    created = names(sim, "K-")
    assert len(created) == ROWS and max(created.values()) == 1, "an appointment was created twice"
    assert (summary["succeeded"], summary["failed"], summary["created"], summary["unchanged"]) == (ROWS, 0, ROWS, 0)
    ids = pd.read_parquet(tmp_path / "ids.parquet")
    assert sorted(ids["input_row"]) == list(range(ROWS)) and ids["new"].all()
    assert set(ids["hubspot_id"]) == {str(r.id) for r in sim.store.appointments()}
    assert not (tmp_path / "ckpt").exists()
    # Running the same task of the same DAG run again (a re-run) creates nothing.
    again = run_task(settings)
    assert (again["created"], again["unchanged"], again["failed"]) == (0, ROWS, 0)
    assert len(names(sim, "K-")) == ROWS


def test_a_resumed_upsert_reports_what_an_uninterrupted_one_does(hubspot_simulator_factory, monkeypatch, tmp_path):
    records = input_file(tmp_path, "U-")
    summaries = []
    for kill in (None, 12):
        sim = hubspot_simulator_factory(seed_appointments=0, latency_ms=30)
        monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json())
        settings = {"operator": "HubSpotAppointmentsUpsertOperator", "records": records, "window_rows": 500,
                    "id_property": "external_appointment_id", "checkpoint_path": str(tmp_path / f"ckpt-{kill}")}
        if kill:
            run_task(settings, kill_after_writes=kill, sim=sim)
        summaries.append(run_task(settings))
        assert len(names(sim, "U-")) == ROWS
    uninterrupted, resumed = ({k: v for k, v in s.items() if k not in ("requests",)} for s in summaries)
    assert resumed == uninterrupted and uninterrupted["created"] == ROWS, str((resumed, uninterrupted))


def test_lost_answers_with_idempotency_keys_end_exactly_once(hubspot_simulator_factory, monkeypatch, tmp_path):
    sim = hubspot_simulator_factory(seed_appointments=0, faults={"rate": 0.1, "kinds": ["reset_after_apply"],
                                                                  "paths": "batch/create"})
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json())
    rows = [{"hs_appointment_name": f"L-{i}", "hs_duration": str(i)} for i in range(2000)]
    operator = HubSpotAppointmentsBatchCreateOperator(task_id="write", records=rows, idempotency_property=IDEMPOTENCY)
    summary = operator.execute({"ti": TI()})
    assert sim.stats()["faults_injected"]["reset_after_apply"] > 0
    assert (summary["succeeded"], summary["failed"], summary["created"]) == (2000, 0, 2000)
    assert len(names(sim, "L-")) == 2000 and max(names(sim, "L-").values()) == 1
    again = HubSpotAppointmentsBatchCreateOperator(task_id="write", records=rows, idempotency_property=IDEMPOTENCY)
    assert again.execute({"ti": TI()})["created"] == 0 and len(names(sim, "L-")) == 2000


def test_another_dag_run_gets_its_own_records(sim):
    rows = [{"hs_appointment_name": "R-daily"}]
    first = HubSpotAppointmentsBatchCreateOperator(task_id="write", records=rows, idempotency_property=IDEMPOTENCY)
    first.execute({"ti": TI()})

    class NextRun(TI):
        run_id = "scheduled__2026-11-02T00:00:00+00:00"

    second = HubSpotAppointmentsBatchCreateOperator(task_id="write", records=rows, idempotency_property=IDEMPOTENCY)
    assert second.execute({"ti": NextRun()})["created"] == 1 and names(sim, "R-")["R-daily"] == 2


@pytest.mark.parametrize("on_existing, expected", [
    ("skip", {"succeeded": 2, "failed": 0, "created": 1, "unchanged": 1}),
    ("update", {"succeeded": 2, "failed": 0, "created": 1, "updated": 1}),
    ("fail", {"succeeded": 1, "failed": 1, "created": 1}),
])
def test_a_create_whose_key_exists_resolves_per_on_existing(sim, tmp_path, on_existing, expected):
    HubSpotAppointmentsUpsertOperator(task_id="seed",
                                      records=[{"external_appointment_id": "E-1", "hs_appointment_name": "old"}],
                                      id_property="external_appointment_id").execute({"ti": TI()})
    existing = next(r.id for r in sim.store.appointments() if r.properties.get("external_appointment_id") == "E-1")
    rows = [{"external_appointment_id": "E-1", "hs_appointment_name": "new"},
            {"external_appointment_id": "E-2", "hs_appointment_name": "two"}]
    operator = HubSpotAppointmentsBatchCreateOperator(
        task_id="write", records=rows, dedupe_property="external_appointment_id", on_existing=on_existing,
        id_map_path=str(tmp_path / "ids.parquet"), failures_path=str(tmp_path / "f.parquet"), max_failed_records=1)
    summary = operator.execute({"ti": TI()})
    assert {k: summary[k] for k in expected} == expected
    ids = pd.read_parquet(tmp_path / "ids.parquet")
    if on_existing == "fail":
        failure = pd.read_parquet(tmp_path / "f.parquet").iloc[0]
        assert failure["category"] == "CONFLICT" and str(existing) in failure["message"]
    else:
        assert ids.set_index("input_key").loc["E-1", "hubspot_id"] == str(existing)
    name = sim.store.get("appointments", existing).properties["hs_appointment_name"]
    assert name == ("new" if on_existing == "update" else "old")
    assert Counter(r.properties.get("external_appointment_id") for r in sim.store.appointments())["E-1"] == 1


def test_idempotency_property_is_created_when_missing_and_must_be_unique(sim):
    from airflow_provider_appointments.errors import HubSpotInputError

    HubSpotAppointmentsBatchCreateOperator(task_id="write", records=[{"hs_appointment_name": "P-1"}],
                                           idempotency_property="my_key").execute({"ti": TI()})
    assert sim.store.schema("appointments").properties["my_key"].has_unique_value
    operator = HubSpotAppointmentsBatchCreateOperator(task_id="write", records=[{"hs_appointment_name": "P-2"}],
                                                      idempotency_property="hs_appointment_notes")
    with pytest.raises(HubSpotInputError, match="hs_appointment_notes.*unique values"):
        operator.execute({"ti": TI()})


def test_creating_the_idempotency_property_without_the_scope_names_the_scope(hubspot_simulator_factory, monkeypatch):
    from airflow_provider_appointments.errors import HubSpotError
    from airflow_provider_appointments.simulator.server import connection_json

    token = "pat-no-schema-write"
    sim = hubspot_simulator_factory(token_scopes={token: ["crm.objects.appointments.read",
                                                          "crm.objects.appointments.write",
                                                          "crm.schemas.appointments.read"]})
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", connection_json(sim.url, token))
    operator = HubSpotAppointmentsBatchCreateOperator(task_id="write", records=[{"hs_appointment_name": "S-1"}],
                                                      idempotency_property=IDEMPOTENCY)
    with pytest.raises(HubSpotError, match="crm.schemas.appointments.write") as raised:
        operator.execute({"ti": TI()})
    assert token not in str(raised.value) and not names(sim, "S-")


def test_a_killed_sync_from_sql_retried_converges_on_the_rows_the_killed_try_read(sim, tmp_path, monkeypatch):
    """SIGKILL a mirror sync midway; rows change in the table before Airflow's retry. The retry resumes on
    the copy of the answer the killed try made (its row numbers are what the checkpoint knows), HubSpot
    and the state then equal that answer, and the next run picks up the later change."""
    import sqlite3
    from datetime import datetime, timezone

    database = tmp_path / "warehouse.db"
    connection = sqlite3.connect(database)
    connection.execute("create table bookings (external_appointment_id text, hs_appointment_name text)")
    connection.executemany("insert into bookings values (?, ?)", [(f"Q{i:05d}", f"v1-{i}") for i in range(ROWS)])
    connection.commit()
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    settings = {"operator": "HubSpotAppointmentsSyncOperator", "sql": "select * from bookings order by 1",
                "sql_conn_id": "warehouse", "id_property": "external_appointment_id", "mode": "mirror",
                "state_path": str(tmp_path / "state.parquet"), "checkpoint_path": str(tmp_path / "ckpt"),
                "window_rows": 500}
    assert run_task(settings)["created"] == ROWS
    started = datetime.now(timezone.utc).isoformat()
    connection.execute("update bookings set hs_appointment_name = replace(hs_appointment_name, 'v1', 'v2')")
    connection.execute("delete from bookings where external_appointment_id < 'Q00010'")
    connection.commit()
    assert run_task(settings, kill_after_writes=writes(sim) + 8, sim=sim) is None
    state_after_kill = pd.read_parquet(tmp_path / "state.parquet")
    assert len(state_after_kill) == ROWS  # the killed try published nothing
    connection.execute("insert into bookings values ('Q-LATE', 'late')")  # after the copy was made
    connection.commit()
    # The DAG run started after the first sync (its records are not this run's creations).
    retried = run_task({**settings, "try_number": 2, "run_started": started})
    assert retried["records"] == ROWS - 10 and retried["failed"] == 0 and retried["archived"] == 10
    assert (retried["updated"], retried["created"], retried["unchanged"]) == (ROWS - 10, 0, 0)
    held = {r.properties["external_appointment_id"]: r for r in sim.store.appointments()
            if r.properties.get("external_appointment_id", "").startswith("Q")}
    active = {key: r.properties["hs_appointment_name"] for key, r in held.items() if not r.archived}
    assert active == {f"Q{i:05d}": f"v2-{i}" for i in range(10, ROWS)}
    state = pd.read_parquet(tmp_path / "state.parquet")
    assert sorted(state["key"]) == sorted(active) and state["key"].is_unique
    nxt = run_task({**settings, "try_number": 1, "checkpoint_path": str(tmp_path / "ckpt-next")})
    assert (nxt["created"], nxt["updated"], nxt["archived"], nxt["requests"]) == (1, 0, 0, 1)
