"""The five operators in real DAG runs (dag.test()) against the simulator, checked against its state."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from airflow_provider_appointments.api.results import RecordOutcome
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.operators.appointments import (
    HubSpotAppointmentsArchiveOperator,
    HubSpotAppointmentsAssociateOperator,
    HubSpotAppointmentsBatchCreateOperator,
    HubSpotAppointmentsUpsertOperator,
)

SUITE = Path(__file__).parent / "dags" / "operator_suite.py"
WRITE_KEYS = {"operation", "records", "succeeded", "failed", "created", "updated", "unchanged", "batches",
              "requests", "failures_path", "id_map_path"}


@pytest.fixture
def sim(hubspot_simulator_factory, monkeypatch):
    simulator = hubspot_simulator_factory(seed_appointments=300)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", simulator.airflow_connection_json())
    return simulator


def test_extracts_full_and_in_consecutive_windows(run_dag, sim, tmp_path):
    now = datetime.now(timezone.utc)
    after, middle, before = now - timedelta(days=30), now - timedelta(days=10), now
    result = run_dag(SUITE, "operator_extracts", run_conf={"out": str(tmp_path), "after": after.isoformat(),
                                                           "middle": middle.isoformat(), "before": before.isoformat()})
    assert result.state == "success", result.task_states()
    full = result.xcom("full_csv")
    assert set(full) >= {"records", "pages", "path", "columns", "max_updated_at"} and full["records"] == 300
    assert full["pages"] >= 2 and full["columns"][:4] == ["id", "createdAt", "updatedAt", "archived"]
    assert len(pd.read_csv(tmp_path / "full.csv")) == 300
    jsonl = pd.read_json(tmp_path / "full.jsonl", lines=True)
    assert len(jsonl) == 300 and "associations_contacts" in jsonl
    first = pq.read_table(tmp_path / "first.parquet").to_pandas()
    second = pq.read_table(tmp_path / "second.parquet").to_pandas()
    in_window = {str(r.id) for r in sim.store.appointments(False) if after.timestamp() * 1000 <= r.updated_ms}
    assert set(first["id"]).isdisjoint(second["id"]) and set(first["id"]) | set(second["id"]) == in_window
    assert str(first["hs_appointment_start"].dtype).startswith("datetime64") and first["hs_duration"].dtype == "float64"
    assert first["history_hs_appointment_name"].map(len).min() >= 1
    linked = sim.store.associations_of("appointments", int(first["id"].iloc[0])).get("contacts", {})
    assert sorted(first["associations_contacts"].iloc[0]) == sorted(str(i) for i in linked)
    assert result.xcom("first_half")["max_updated_at"] <= middle.isoformat().replace("+00:00", "Z")


def test_create_reports_bad_rows_maps_the_rest_and_associates_on_create(run_dag, sim, tmp_path):
    contact = str(next(iter(sim.store.iter_records("contacts"))).id)
    pd.DataFrame({
        "external_appointment_id": ["NEW-1", "NEW-2", "NEW-3", "NEW-4"],
        "hs_appointment_name": ["a", "b", "c", "d"],
        "hs_duration": ["30", "thirty", "45", "50"],
        "hs_appointment_status": ["SCHEDULED", "SCHEDULED", "MAYBE", "SCHEDULED"],
        "contact_id": [contact, contact, contact, ""],
    }).to_csv(tmp_path / "create.csv", index=False)
    result = run_dag(SUITE, "operator_create", run_conf={"dir": str(tmp_path)})
    assert result.state == "success", result.task_states()

    create = result.xcom("create")
    assert set(create) == WRITE_KEYS
    assert (create["records"], create["succeeded"], create["failed"], create["created"]) == (4, 2, 2, 2)
    failures = pd.read_csv(tmp_path / "create_failures.csv")
    assert failures["input_row"].tolist() == [1, 2] and failures["input_key"].tolist() == ["NEW-2", "NEW-3"]
    assert "thirty" in failures["message"][0] and "MAYBE" in failures["message"][1]
    ids = pd.read_parquet(tmp_path / "create_ids.parquet")
    assert ids["input_row"].tolist() == [0, 3] and ids["input_key"].tolist() == ["NEW-1", "NEW-4"]
    by_key = {r.properties.get("external_appointment_id"): r for r in sim.store.appointments()}
    assert str(by_key["NEW-1"].id) == ids["hubspot_id"][0] and "NEW-2" not in by_key
    assert int(contact) in sim.store.associations_of("appointments", by_key["NEW-1"].id)["contacts"]
    assert "contacts" not in sim.store.associations_of("appointments", by_key["NEW-4"].id)


def test_upsert_rejects_repeated_keys_by_default_or_keeps_the_last(run_dag, sim, tmp_path):
    existing = next(r for r in sim.store.appointments() if r.properties.get("external_appointment_id"))
    existing_key = existing.properties["external_appointment_id"]
    pd.DataFrame({"external_appointment_id": [existing_key, "UP-1", "UP-2", "UP-2", "UP-3"],
                  "hs_duration": [99, 10, 11, 12, 13], "hs_appointment_name": ["x", "u1", "u2", "u2b", "u3"]}
                 ).to_parquet(tmp_path / "upsert.parquet")
    pd.DataFrame({"external_appointment_id": ["L-1", "L-1", "L-2"], "hs_appointment_name": ["first", "last", "two"]}
                 ).to_json(tmp_path / "upsert_last.jsonl", orient="records", lines=True)
    result = run_dag(SUITE, "operator_upsert", run_conf={"dir": str(tmp_path)})
    assert result.state == "success", result.task_states()

    upsert = result.xcom("upsert_reject")
    assert (upsert["succeeded"], upsert["failed"], upsert["created"], upsert["updated"]) == (3, 2, 2, 1)
    rejected = pd.read_parquet(tmp_path / "upsert_failures.parquet")
    assert set(rejected["category"]) == {"DUPLICATE_INPUT_KEY"} and rejected["input_row"].tolist() == [2, 3]
    by_key = {r.properties.get("external_appointment_id"): r for r in sim.store.appointments()}
    assert by_key[existing_key].properties["hs_duration"] == "99" and "UP-2" not in by_key

    last = result.xcom("upsert_last")
    assert (last["records"], last["succeeded"], last["failed"], last["created"]) == (3, 3, 0, 2)
    assert by_key["L-1"].properties["hs_appointment_name"] == "last"


def test_archive_checks_ids_first_and_reports_missing_and_empty_ones(run_dag, sim, tmp_path):
    first, second = (str(r.id) for r in sim.store.appointments(include_archived=False)[:2])
    pd.DataFrame({"id": [first, second, "1", ""]}).to_csv(tmp_path / "archive.csv", index=False)
    result = run_dag(SUITE, "operator_archive", run_conf={"dir": str(tmp_path)})
    assert result.state == "success", result.task_states()

    archive = result.xcom("archive")
    assert (archive["succeeded"], archive["failed"]) == (2, 2)
    assert sim.store.get("appointments", int(first)).archived and sim.store.get("appointments", int(second)).archived
    archive_failures = pd.read_parquet(tmp_path / "archive_failures.parquet")
    assert dict(zip(archive_failures["input_row"], archive_failures["category"])) == {
        2: "OBJECT_NOT_FOUND", 3: "INVALID_INPUT"}


def test_mapped_upserts_spread_over_task_instances(run_dag, sim):
    result = run_dag(SUITE, "operator_mapped")
    assert result.state == "success", result.task_states()
    summaries = [result.xcom("upsert", map_index=i) for i in range(3)]
    assert [s["created"] for s in summaries] == [120, 120, 120]
    keys = [r.properties.get("external_appointment_id", "") for r in sim.store.appointments()]
    assert sum(key.startswith("MAP-") for key in keys) == 360


def test_failure_policy_fails_the_task_after_writing_the_report(run_dag, sim, tmp_path):
    pd.DataFrame({"hs_appointment_name": ["ok", "bad"], "hs_duration": ["1", "one"]}).to_csv(tmp_path / "bad.csv",
                                                                                            index=False)
    result = run_dag(SUITE, "operator_policy", run_conf={"dir": str(tmp_path)})
    assert result.state == "failed"
    report = pd.read_parquet(tmp_path / "bad_failures.parquet")
    assert report["input_row"].tolist() == [1]
    assert sum(1 for r in sim.store.appointments() if r.properties.get("hs_appointment_name") == "ok") == 1


class _TI:
    dag_id, task_id, run_id, map_index = "d", "t", "r", -1


@pytest.mark.parametrize("build, message", [
    (lambda p: HubSpotAppointmentsBatchCreateOperator(task_id="t",
                                                      records=pd.DataFrame({"hs_appointment_nmae": ["a"]})),
     "column 'hs_appointment_nmae' matches no appointment property; did you mean hs_appointment_name"),
    (lambda p: HubSpotAppointmentsUpsertOperator(task_id="t", records=[{"hs_appointment_name": "a"}],
                                                 id_property="external_appointment_id"),
     "input has no column 'external_appointment_id'"),
    (lambda p: HubSpotAppointmentsUpsertOperator(task_id="t", records=[{"hs_appointment_name": "a"}],
                                                 id_property="hs_appointment_name"),
     "id_property 'hs_appointment_name' is not a unique-value property"),
    (lambda p: HubSpotAppointmentsArchiveOperator(task_id="t", records=str(p / "missing.parquet")), "does not exist"),
    (lambda p: HubSpotAppointmentsAssociateOperator(task_id="t", records=[{"appointment_id": "1"}],
                                                    to_object_type="contacts"),
     "input has no column 'to_object_id'"),
])
def test_bad_input_fails_at_once_naming_the_problem(sim, tmp_path, build, message):
    operator = build(tmp_path)
    before = sim.stats()["requests"]
    with pytest.raises(HubSpotInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        operator.execute({"ti": _TI()})
    writes = {k: v for k, v in sim.stats()["by_route"].items() if "batch" in k}
    assert not writes and sim.stats()["requests"] - before <= 2  # at most the properties lookup


def test_batch_size_over_100_is_refused_when_the_dag_is_parsed():
    with pytest.raises(HubSpotInputError, match="batch_size must be between 1 and 100"):
        HubSpotAppointmentsUpsertOperator(task_id="t", records=[], id_property="external_appointment_id",
                                          batch_size=101)


def test_checkpoint_resumes_after_a_crash_without_writing_twice(sim, tmp_path, monkeypatch):
    rows = pd.DataFrame({"external_appointment_id": [f"CP-{i}" for i in range(450)], "hs_appointment_name": "cp"})
    rows.to_parquet(tmp_path / "in.parquet")
    operator = HubSpotAppointmentsBatchCreateOperator(
        task_id="t", records=str(tmp_path / "in.parquet"), dedupe_property="external_appointment_id", window_rows=100,
        checkpoint_path=str(tmp_path / "ckpt"), id_map_path=str(tmp_path / "ids.parquet"))
    from airflow_provider_appointments.api.client import AppointmentsClient

    real = AppointmentsClient.batch_create
    calls = {"n": 0}

    def crash_on_third_window(self, inputs, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("worker killed")
        return real(self, inputs, **kwargs)

    monkeypatch.setattr(AppointmentsClient, "batch_create", crash_on_third_window)
    with pytest.raises(SystemExit):
        operator.execute({"ti": _TI()})
    assert len(list((tmp_path / "ckpt").glob("window-*.done.json"))) == 2
    # The third window died before its first request: nothing of it is in flight, so nothing needs reconciling.
    assert not list((tmp_path / "ckpt").glob("window-000002.*.sending.json"))
    monkeypatch.setattr(AppointmentsClient, "batch_create", real)
    summary = operator.execute({"ti": _TI()})
    assert (summary["records"], summary["created"], summary["failed"]) == (450, 450, 0)
    keys = [r.properties.get("external_appointment_id", "") for r in sim.store.appointments()]
    assert sum(key.startswith("CP-") for key in keys) == 450 == len({k for k in keys if k.startswith("CP-")})
    assert len(pd.read_parquet(tmp_path / "ids.parquet")) == 450 and not (tmp_path / "ckpt").exists()


def test_checkpoint_fingerprints_tell_inputs_apart_whatever_their_cells_hold():
    from airflow_provider_appointments.operators.checkpoint import fingerprint

    services = pd.DataFrame({"hs_appointment_services": [["LAB", "IMAGING"], ["THERAPY"]], "n": [1, 2]})
    assert fingerprint(services, {}) == fingerprint(services.copy(), {})  # lists cannot be hashed by pandas
    assert fingerprint(services, {}) != fingerprint(services.iloc[::-1].reset_index(drop=True), {})
    plain = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert fingerprint(plain, {}) != fingerprint(plain.iloc[::-1].reset_index(drop=True), {})  # order matters
    assert fingerprint(plain, {}) != fingerprint(plain, {"batch_size": 50})
    assert fingerprint([{"a": float("nan")}], {}) == fingerprint([{"a": float("nan")}], {})


def test_checkpoints_work_on_object_storage_uris(tmp_path):
    from airflow_provider_appointments.operators.checkpoint import Checkpoint, WindowResult

    checkpoint = Checkpoint(f"file://{tmp_path}/ckpt", "fp-1")
    journal = checkpoint.journal(0, rows=[10, 11, 12])
    journal.sending([0, 1])
    journal.settled([RecordOutcome(0, "A", True, hubspot_id="9", new=True), RecordOutcome(1, "B", False)])
    journal.sending([2])  # never answered: in flight
    resumed = Checkpoint(f"file://{tmp_path}/ckpt", "fp-1")
    assert resumed.scan() == (0, [0]) and resumed.load(0) is None
    progress = resumed.progress(0)
    assert sorted(progress.settled) == [10, 11] and progress.settled[10].hubspot_id == "9"
    assert progress.in_flight == {12} and progress.since is not None and progress.requests == 2
    outcome = RecordOutcome(0, "K", True, hubspot_id="9", new=True, input_row=3)
    resumed.save(0, WindowResult([outcome], 1, 1))
    assert resumed.load(0) == WindowResult([outcome], 1, 1)
    assert Checkpoint(f"file://{tmp_path}/ckpt", "fp-1").scan() == (1, [])  # the request records are gone
    assert Checkpoint(f"file://{tmp_path}/ckpt", "other input").load(0) is None  # never reused for another input
    resumed.clear()
    assert not (tmp_path / "ckpt").exists()


def test_last_duplicate_key_wins_across_windows(sim, tmp_path):
    rows = pd.DataFrame({"external_appointment_id": ["W-1", "W-2", "W-3", "W-1", "W-2", "W-4"],
                         "hs_appointment_name": ["old", "old", "x", "new", "bad", "y"],
                         "hs_duration": ["1", "2", "3", "4", "not a number", "6"]})
    operator = HubSpotAppointmentsUpsertOperator(task_id="t", records=rows, id_property="external_appointment_id",
                                                 on_duplicate_keys="last", window_rows=2,
                                                 failures_path=str(tmp_path / "f.parquet"), max_failed_records=10)
    summary = operator.execute({"ti": _TI()})
    assert (summary["records"], summary["succeeded"], summary["failed"]) == (6, 4, 2)
    failures = pd.read_parquet(tmp_path / "f.parquet")
    assert failures["input_row"].tolist() == [1, 4]  # W-2's last row failed, so its earlier row did too
    names = {r.properties["external_appointment_id"]: r.properties["hs_appointment_name"]
             for r in sim.store.appointments()
             if r.properties.get("external_appointment_id", "").startswith("W-")}
    assert names == {"W-1": "new", "W-3": "x", "W-4": "y"}


def test_an_operator_keeps_nothing_of_one_run_for_the_next(sim, tmp_path):
    """What a run learns (the schema, an id map, duplicates) is the run's: a second execute of the same
    instance with another id map associates through the new map only."""
    contact = str(next(iter(sim.store.iter_records("contacts"))).id)
    first, second = (str(r.id) for r in list(sim.store.appointments())[:2])
    id_map = tmp_path / "ids.parquet"
    operator = HubSpotAppointmentsAssociateOperator(
        task_id="t", records=pd.DataFrame({"key": ["K"], "to_object_id": [contact]}), to_object_type="contacts",
        id_map=str(id_map), appointment_key="key", checkpoint_path=None, max_failed_records=1)
    before = dict(vars(operator))
    for appointment in (first, second):
        pd.DataFrame({"input_row": [0], "input_key": ["K"], "hubspot_id": [appointment]}).to_parquet(id_map)
        assert operator.execute({"ti": _TI()})["succeeded"] == 1
        assert int(contact) in sim.store.associations_of("appointments", int(appointment)).get("contacts", {})
    changed = {name for name, value in vars(operator).items() if before.get(name) is not value}
    assert changed <= {"_lineage", "_log", "_cached_logger"}, changed  # the result for OpenLineage; logging
