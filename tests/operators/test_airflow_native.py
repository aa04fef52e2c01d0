"""What a platform team expects of a provider: a lean install, lineage, assets, progress and dry runs."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from importlib.metadata import requires
from pathlib import Path

import pandas as pd
import pytest

from airflow_provider_appointments.api.results import RecordOutcome
from airflow_provider_appointments.operators.appointments import (
    HubSpotAppointmentsArchiveOperator,
    HubSpotAppointmentsAssociateOperator,
    HubSpotAppointmentsBatchCreateOperator,
    HubSpotAppointmentsExtractOperator,
    HubSpotAppointmentsUpsertOperator,
)
from airflow_provider_appointments.operators.duplicates import DuplicateKeys
from airflow_provider_appointments.operators.progress import Progress
from tests.conftest import REPO_ROOT
from tests.operators.test_operators import _TI

WRITES = ("batch/create", "batch/update", "batch/upsert", "batch/archive", "/properties/")


@pytest.fixture
def sim(hubspot_simulator_factory, monkeypatch):
    simulator = hubspot_simulator_factory(seed_appointments=100)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", simulator.airflow_connection_json())
    return simulator


def writes(sim) -> int:
    return sum(n for route, n in sim.stats()["by_route"].items()
               if route.startswith(("POST", "PATCH", "PUT", "DELETE")) and any(w in route for w in WRITES)
               and "batch/read" not in route)


# -- lean install ----------------------------------------------------------------------------
def test_the_hook_and_operators_import_without_the_simulator_or_its_server():
    probe = ("import sys, airflow_provider_appointments.hooks.hubspot,"
             " airflow_provider_appointments.operators.appointments;"
             "print([m for m in sys.modules if m.startswith(('starlette', 'uvicorn'))"
             " or m.startswith('airflow_provider_appointments.simulator')])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
    runtime = [r for r in requires("airflow-provider-appointments") or [] if "extra ==" not in r]
    assert not [r for r in runtime if r.startswith(("starlette", "uvicorn"))], runtime
    assert (REPO_ROOT / "airflow_provider_appointments" / "py.typed").exists()


# -- small pieces ----------------------------------------------------------------------------
def test_last_key_wins_waits_for_the_last_row_across_windows():
    keys = DuplicateKeys([(0, "A"), (1, "B"), (2, "A"), (3, None), (4, "A")], "last")
    assert keys.duplicates == {"A": [0, 2, 4]} and keys.last_row == {"A": 4}
    assert keys.superseded(0, "A") and not keys.superseded(4, "A") and not keys.superseded(1, "B")
    first = keys.settle([keys.placeholder(0, "A"), RecordOutcome(-1, "B", True, hubspot_id="b", input_row=1)])
    assert [o.input_row for o in first] == [1]  # row 0 waits for row 4
    final = RecordOutcome(-1, "A", True, hubspot_id="a", new=True, input_row=4)
    second = keys.settle([keys.placeholder(2, "A"), final])
    assert sorted((o.input_row, o.hubspot_id, o.succeeded, o.new) for o in second) == [
        (0, "a", True, False), (2, "a", True, False), (4, "a", True, True)]  # one record created, not three
    failed = DuplicateKeys([(0, "K"), (1, "K")], "last")
    refused = RecordOutcome(-1, "K", False, category="VALIDATION_ERROR", input_row=1, message="bad")
    settled = failed.settle([failed.placeholder(0, "K"), refused])
    assert {(o.input_row, o.succeeded, o.message) for o in settled} == {(0, False, "superseded by row 1: bad"),
                                                                    (1, False, "bad")}
    orphan = DuplicateKeys([(0, "Z"), (5, "Z")], "last")
    assert orphan.settle([orphan.placeholder(0, "Z")]) == []
    assert orphan.settle([], last=True)[0].category == "INVALID_INPUT"  # never dropped


def test_progress_logs_at_most_every_30_seconds_with_rate_and_eta():
    lines: list[str] = []

    class Log:
        def info(self, pattern, line):  # noqa: ANN001, ANN201
            lines.append(line)

    now = [0.0]
    progress = Progress(Log(), "upsert", total=1_000, counters=lambda: (2, 5), clock=lambda: now[0])
    for _ in range(9):
        now[0] += 5
        progress.add(50)
    assert len(lines) == 1  # at 30 s, not before
    assert lines[0] == "upsert: 300 / 1,000 (30%) records, 10 records/s, 2 × 429, 5 retries, about 1m10s left"


# -- dry run ---------------------------------------------------------------------------------
def test_an_upsert_dry_run_reports_per_row_and_writes_nothing(sim, tmp_path):
    seeded = sim.store.get("appointments", 100_001).properties
    rows = pd.DataFrame({
        "external_appointment_id": [seeded["external_appointment_id"], "EXT-000002", "NEW-1", "NEW-2"],
        "hs_appointment_name": [seeded["hs_appointment_name"], "renamed", "new", "bad"],
        "hs_duration": [seeded.get("hs_duration") or "30", sim.store.get("appointments", 100_002).properties.get(
            "hs_duration") or "30", "10", "ten"],
    })
    before = writes(sim)
    summary = HubSpotAppointmentsUpsertOperator(
        task_id="t", records=rows, id_property="external_appointment_id", dry_run=True,
        dry_run_path=str(tmp_path / "plan.parquet")).execute({"ti": _TI()})
    assert writes(sim) == before
    assert sim.store.get("appointments", 100_002).properties["hs_appointment_name"] != "renamed"
    assert summary["dry_run"] and summary["actions"] == {"unchanged": 1, "update": 1, "create": 1, "refused": 1}
    plan = pd.read_parquet(tmp_path / "plan.parquet").set_index("input_row")
    assert list(plan["action"]) == ["unchanged", "update", "create", "refused"]
    assert json.loads(plan.loc[1, "changes"]) == {"hs_appointment_name": {
        "from": sim.store.get("appointments", 100_002).properties["hs_appointment_name"], "to": "renamed"}}
    assert "ten" in plan.loc[3, "reason"]


def test_create_archive_and_associate_dry_runs(sim, tmp_path):
    existing = sim.store.get("appointments", 100_003).properties["external_appointment_id"]
    rows = [{"external_appointment_id": existing, "hs_appointment_name": "x"},
            {"external_appointment_id": "FRESH-1", "hs_appointment_name": "y"}]
    before = writes(sim)
    for on_existing, action in (("skip", "unchanged"), ("fail", "refused"), ("update", "update")):
        summary = HubSpotAppointmentsBatchCreateOperator(
            task_id="t", records=rows, dedupe_property="external_appointment_id", on_existing=on_existing,
            dry_run=True, dry_run_path=str(tmp_path / f"{on_existing}.parquet")).execute({"ti": _TI()})
        assert summary["actions"] == {action: 1, "create": 1}, on_existing
    derived = HubSpotAppointmentsBatchCreateOperator(task_id="t", records=rows, idempotency_property="my_key",
                                                     dry_run=True, dry_run_path=str(tmp_path / "d.parquet"))
    assert derived.execute({"ti": _TI()})["actions"] == {"create": 2}
    assert "my_key" not in sim.store.schema("appointments").properties  # a dry run creates no property
    sim.store.archive(sim.store.get("appointments", 100_004))
    archive = HubSpotAppointmentsArchiveOperator(task_id="t", records=[{"id": "100005"}, {"id": "100004"}, {"id": "7"}],
                                                 dry_run=True, dry_run_path=str(tmp_path / "a.parquet"))
    assert archive.execute({"ti": _TI()})["actions"] == {"archive": 1, "unchanged": 1, "refused": 1}
    contact = str(next(iter(sim.store.iter_records("contacts"))).id)
    associate = HubSpotAppointmentsAssociateOperator(
        task_id="t", records=[{"appointment_id": "100005", "to_object_id": contact}, {"appointment_id": ""}],
        to_object_type="contacts", dry_run=True, dry_run_path=str(tmp_path / "s.parquet"))
    assert associate.execute({"ti": _TI()})["actions"] == {"associate": 1, "refused": 1}
    assert writes(sim) == before and sim.store.get("appointments", 100_005).archived is False


# -- lineage ---------------------------------------------------------------------------------
def test_operators_report_openlineage_datasets_and_facets(sim, tmp_path):
    pytest.importorskip("airflow.providers.openlineage")
    extract = HubSpotAppointmentsExtractOperator(task_id="e", output_path=str(tmp_path / "out.parquet"),
                                                 properties=["hs_appointment_name", "hs_duration"])
    extract.execute({"ti": _TI()})
    lineage = extract.get_openlineage_facets_on_complete(None)
    source, target = lineage.inputs[0], lineage.outputs[0]
    assert (source.namespace, source.name) == (f"hubspot://{sim.url.split('://')[1]}", "appointments")
    assert {field.name for field in source.facets["schema"].fields} >= {"id", "hs_appointment_name", "hs_duration"}
    assert (target.namespace, target.name) == ("file", str(tmp_path / "out.parquet"))
    assert target.outputFacets["outputStatistics"].rowCount == 100

    pd.DataFrame({"external_appointment_id": ["L-1", "L-2"], "hs_appointment_name": ["a", "b"],
                  "hs_duration": ["1", "x"]}).to_csv(tmp_path / "in.csv", index=False)
    upsert = HubSpotAppointmentsUpsertOperator(task_id="u", records=str(tmp_path / "in.csv"),
                                               id_property="external_appointment_id", max_failed_records=1,
                                               failures_path=str(tmp_path / "f.parquet"))
    upsert.execute({"ti": _TI()})
    lineage = upsert.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("file", str(tmp_path / "in.csv"))]
    outputs = {d.name: d for d in lineage.outputs}
    assert outputs["appointments"].outputFacets["outputStatistics"].rowCount == 1
    assert outputs[str(tmp_path / "f.parquet")].outputFacets["outputStatistics"].rowCount == 1
    facet = lineage.run_facets["hubspot_write"]
    assert (facet.records, facet.succeeded, facet.failed, facet.created) == (2, 1, 1, 1)


# -- assets ----------------------------------------------------------------------------------
def test_extracts_and_reports_become_assets_a_dag_can_be_scheduled_on(run_dag, sim, tmp_path, monkeypatch,
                                                                      captured_logs):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    monkeypatch.setenv("HUBSPOT_APPOINTMENTS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HUBSPOT_APPOINTMENTS_SEARCH_LAG_S", "0")
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    result = run_dag(REPO_ROOT / "example_dags" / "hubspot_appointments_warehouse_load.py",
                     "hubspot_appointments_warehouse_load", logical_date=today - timedelta(days=1))
    assert result.state == "success", result.task_states()
    summary = result.xcom("merge_into_warehouse")
    with create_session() as session:
        events = session.query(AssetEvent, AssetModel).join(AssetModel, AssetEvent.asset_id == AssetModel.id).all()
        extras = {model.name: event.extra for event, model in events}
        names = {model.name for model in session.query(AssetModel).all()}
    # One declared asset, its event carrying the load's figures; no asset per file, and so no warnings.
    assert extras["hubspot_appointments_extract"]["path"] == summary["path"]
    assert extras["hubspot_appointments_extract"]["records"] == summary["records"] > 0
    assert extras["hubspot_appointments_extract"]["table"] == "appointments"
    assert not [name for name in names if name.startswith("file://")], names
    logged = captured_logs.stdlib + captured_logs.airflow
    assert "merge_into_warehouse" in logged  # the capture works: the task's own lines are in it
    assert "AssetModel" not in logged
    extract_path = summary["path"]
    downstream = run_dag(REPO_ROOT / "example_dags" / "hubspot_appointments_on_new_extract.py",
                         "hubspot_appointments_on_new_extract")
    assert downstream.state == "success", downstream.task_states()
    assert Path(extract_path).exists()
