"""What the defaults guarantee: checkpoints without configuration, files whole or absent, no unbounded
wait, and repeated keys that keep their own outcome in every write operator."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from airflow_provider_appointments.errors import HubSpotError, HubSpotInputError
from airflow_provider_appointments.operators.appointments import (
    HubSpotAppointmentsArchiveOperator,
    HubSpotAppointmentsAssociateOperator,
    HubSpotAppointmentsBatchCreateOperator,
    HubSpotAppointmentsExtractOperator,
    HubSpotAppointmentsUpsertOperator,
)
from airflow_provider_appointments.operators.checkpoint import Checkpoint
from airflow_provider_appointments.simulator.faults import FaultConfig


class TI:
    dag_id, task_id, run_id, map_index, try_number = "safe", "write", "manual__2026-12-01T00:00:00+00:00", -1, 1


@pytest.fixture
def sim(hubspot_simulator_factory, monkeypatch):
    simulator = hubspot_simulator_factory(seed_appointments=200)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", simulator.airflow_connection_json(max_attempts=2))
    return simulator


def keys_in(sim, prefix: str) -> list[str]:
    return [r.properties.get("external_appointment_id", "") for r in sim.store.appointments()
            if r.properties.get("external_appointment_id", "").startswith(prefix)]


def failures(path: Path) -> dict[int, tuple[str, str]]:
    report = pd.read_parquet(path)
    return {int(row.input_row): (row.category, row.message) for row in report.itertuples()}


# -- checkpoints without configuration -------------------------------------------------------
def test_checkpoints_are_on_by_default_under_airflow_home(sim, tmp_path, monkeypatch, captured_logs):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AIRFLOW__HUBSPOT__CHECKPOINT_BASE", raising=False)
    operator = HubSpotAppointmentsBatchCreateOperator(task_id="write", records=[{"hs_appointment_name": "d"}])
    seen: list[str] = []
    real_save = Checkpoint.save

    def spy(self, number, result):
        seen.extend(item.name for item in Path(self.path).iterdir())
        return real_save(self, number, result)

    monkeypatch.setattr(Checkpoint, "save", spy)
    summary = operator.execute({"ti": TI()})
    assert summary["created"] == 1
    folder = tmp_path / "home" / "hubspot_checkpoints" / "safe" / "manual__2026-12-01T00_00_00_00_00" / "write"
    assert f"checkpoint: {folder}" in captured_logs.text
    # Each request was recorded as it was sent and as it was answered, then cleared on success.
    assert any(name.endswith(".sending.json") for name in seen) and any(name.endswith(".settled.json") for name in seen)
    assert not folder.exists()


def test_checkpoint_base_setting_and_the_warnings_that_name_the_risk(sim, tmp_path, monkeypatch, captured_logs):
    monkeypatch.setenv("AIRFLOW__HUBSPOT__CHECKPOINT_BASE", f"file://{tmp_path}/shared")
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    operator = HubSpotAppointmentsBatchCreateOperator(task_id="write", records=[{"hs_appointment_name": "s"}])
    operator.execute({"ti": TI()})
    assert f"checkpoint: file://{tmp_path}/shared/safe/" in captured_logs.text
    assert "on the local disk" not in captured_logs.text  # shared storage: no warning

    monkeypatch.delenv("AIRFLOW__HUBSPOT__CHECKPOINT_BASE")
    operator.execute({"ti": TI()})
    assert "whose retries may run on another machine" in captured_logs.text
    assert "AIRFLOW__HUBSPOT__CHECKPOINT_BASE" in captured_logs.text

    opted_out = HubSpotAppointmentsBatchCreateOperator(task_id="write", records=[{"hs_appointment_name": "n"}],
                                                       checkpoint_path=None)
    opted_out.execute({"ti": TI()})
    assert "without a checkpoint (checkpoint_path=None)" in captured_logs.text
    assert "creates every row of the killed try again" in captured_logs.text


def test_the_provider_declares_its_checkpoint_setting():
    from airflow_provider_appointments import get_provider_info

    option = get_provider_info()["config"]["hubspot"]["options"]["checkpoint_base"]
    assert option["type"] == "string" and "s3://" in option["example"] and "AIRFLOW_HOME" in option["description"]


# -- files whole or absent -------------------------------------------------------------------
def test_an_extract_that_fails_midway_leaves_the_previous_file_and_no_partial_one(hubspot_simulator_factory,
                                                                                  monkeypatch, tmp_path):
    sim = hubspot_simulator_factory(seed_appointments=3000, latency_ms=20)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json(max_attempts=2))
    output = tmp_path / "out" / "appointments.parquet"
    output.parent.mkdir()
    output.write_bytes(b"the previous complete extract")
    operator = HubSpotAppointmentsExtractOperator(task_id="extract", output_path=str(output),
                                                  properties=["hs_appointment_name"])
    reads_before = sum(sim.stats()["by_route"].values())

    def break_midway() -> None:  # a lasting 503 once a few pages are in
        deadline = time.monotonic() + 60
        while sum(sim.stats()["by_route"].values()) < reads_before + 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        sim.configure(faults=FaultConfig(rate=1.0, kinds=("503",)))

    breaker = threading.Thread(target=break_midway, daemon=True)
    breaker.start()
    with pytest.raises(HubSpotError):
        operator.execute({"ti": TI()})
    breaker.join(timeout=60)
    assert output.read_bytes() == b"the previous complete extract"
    assert sorted(item.name for item in output.parent.iterdir()) == ["appointments.parquet"]  # no temporary left


def test_reports_are_published_whole(tmp_path, monkeypatch):
    from airflow_provider_appointments.records import reports

    path = tmp_path / "failures.parquet"
    reports.write_failure_report(str(path), [reports.FailureRow(0, "k", 400, "X", "first")])

    def broken(table, handle):
        handle.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(reports.pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        reports.write_failure_report(str(path), [reports.FailureRow(0, "k", 400, "X", "second")])
    assert pd.read_parquet(path)["message"].tolist() == ["first"]
    assert [item.name for item in tmp_path.iterdir()] == ["failures.parquet"]


# -- no wait without a bound -----------------------------------------------------------------
def test_a_window_ending_in_the_future_fails_at_once_naming_the_wait(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", '{"conn_type": "hubspot", "host": "127.0.0.1:9", '
                                                       '"password": "unused"}')
    operator = HubSpotAppointmentsExtractOperator(task_id="extract", output_path="/tmp/never.parquet",
                                                  modified_after="2026-01-01T00:00:00Z",
                                                  modified_before="2030-01-01T00:00:00Z")
    started = time.monotonic()
    with pytest.raises(HubSpotInputError) as error:
        operator.execute({"ti": TI()})
    assert time.monotonic() - started < 5
    message = str(error.value)
    assert "the window ends 2030-01-01T00:00:00+00:00" in message and "in the future" in message
    assert "max_search_wait (3600 s)" in message
    near = HubSpotAppointmentsExtractOperator(task_id="extract", output_path="/tmp/never.parquet",
                                              modified_after="2026-01-01T00:00:00Z",
                                              modified_before="2030-01-01T00:00:00Z", max_search_wait=10 ** 9)
    assert near.max_search_wait_s == 10 ** 9  # a user who means it can say so


# -- repeated keys keep their own outcome ----------------------------------------------------
def test_archive_with_a_repeated_id_archives_the_others_and_names_each_problem(sim, tmp_path):
    first, second = (str(r.id) for r in list(sim.store.appointments())[:2])
    rows = [{"id": first}, {"id": first}, {"id": second}, {"id": "999999999"}]
    operator = HubSpotAppointmentsArchiveOperator(task_id="archive", records=rows, max_failed_ratio=1.0,
                                                  failures_path=str(tmp_path / "f.parquet"))
    summary = operator.execute({"ti": TI()})
    assert (summary["succeeded"], summary["failed"]) == (1, 3)
    report = failures(tmp_path / "f.parquet")
    assert report[0][0] == report[1][0] == "DUPLICATE_INPUT_KEY" and "also appears in rows [1]" in report[0][1]
    assert report[3] == ("OBJECT_NOT_FOUND", report[3][1]) and "999999999 does not exist" in report[3][1]
    assert not sim.store.is_active("appointments", int(second)) and sim.store.is_active("appointments", int(first))

    last = HubSpotAppointmentsArchiveOperator(task_id="archive", records=rows[:2], on_duplicate_keys="last")
    summary = last.execute({"ti": TI()})
    assert (summary["succeeded"], summary["failed"]) == (2, 0) and not sim.store.is_active("appointments", int(first))


def test_create_with_a_repeated_natural_key_loses_no_row(sim, tmp_path):
    rows = [{"external_appointment_id": "DUP-1", "hs_appointment_name": "first"},
            {"external_appointment_id": "DUP-1", "hs_appointment_name": "second"},
            {"external_appointment_id": "UNQ-1", "hs_appointment_name": "third"}]
    operator = HubSpotAppointmentsBatchCreateOperator(
        task_id="create", records=rows, dedupe_property="external_appointment_id", max_failed_ratio=1.0,
        failures_path=str(tmp_path / "f.parquet"), id_map_path=str(tmp_path / "ids.parquet"))
    summary = operator.execute({"ti": TI()})
    assert (summary["created"], summary["failed"]) == (1, 2)
    assert {row: category for row, (category, _) in failures(tmp_path / "f.parquet").items()} == {
        0: "DUPLICATE_INPUT_KEY", 1: "DUPLICATE_INPUT_KEY"}
    assert keys_in(sim, "DUP-") == [] and keys_in(sim, "UNQ-") == ["UNQ-1"]

    last = HubSpotAppointmentsBatchCreateOperator(
        task_id="create", records=rows[:2], dedupe_property="external_appointment_id", on_duplicate_keys="last",
        id_map_path=str(tmp_path / "ids-last.parquet"))
    summary = last.execute({"ti": TI()})
    assert (summary["records"], summary["created"], summary["unchanged"], summary["failed"]) == (2, 1, 1, 0)
    names = [r.properties["hs_appointment_name"] for r in sim.store.appointments()
             if r.properties.get("external_appointment_id") == "DUP-1"]
    assert names == ["second"]
    ids = pd.read_parquet(tmp_path / "ids-last.parquet")
    assert ids["new"].tolist() == [False, True] and ids["hubspot_id"].nunique() == 1


def test_upsert_with_a_repeated_key_rejects_both_rows_by_default(sim, tmp_path):
    rows = [{"external_appointment_id": "UP-1", "hs_appointment_name": "a"},
            {"external_appointment_id": "UP-1", "hs_appointment_name": "b"},
            {"external_appointment_id": "UP-2", "hs_appointment_name": "c"}]
    operator = HubSpotAppointmentsUpsertOperator(task_id="upsert", records=rows, id_property="external_appointment_id",
                                                 max_failed_ratio=1.0, failures_path=str(tmp_path / "f.parquet"))
    summary = operator.execute({"ti": TI()})
    assert (summary["created"], summary["failed"]) == (1, 2) and keys_in(sim, "UP-") == ["UP-2"]


def test_associate_with_a_repeated_pair_sends_it_once_or_rejects_it(sim, tmp_path):
    appointment = str(next(iter(sim.store.appointments())).id)
    contact = str(next(iter(sim.store.iter_records("contacts"))).id)
    rows = [{"appointment_id": appointment, "to_object_id": contact}] * 2
    rejected = HubSpotAppointmentsAssociateOperator(task_id="associate", records=rows, to_object_type="contacts",
                                                    max_failed_ratio=1.0, failures_path=str(tmp_path / "f.parquet"))
    summary = rejected.execute({"ti": TI()})
    assert (summary["succeeded"], summary["failed"]) == (0, 2)
    assert {category for category, _ in failures(tmp_path / "f.parquet").values()} == {"DUPLICATE_INPUT_KEY"}
    once = HubSpotAppointmentsAssociateOperator(task_id="associate", records=rows, to_object_type="contacts",
                                                on_duplicate_keys="last")
    summary = once.execute({"ti": TI()})
    assert (summary["succeeded"], summary["failed"], summary["requests"]) == (2, 0, 1)


# -- what a retry does with the checkpoint (found in review) ------------------------------------
def test_a_retry_sends_transient_failures_again_instead_of_replaying_them(sim, tmp_path):
    rows = [{"external_appointment_id": f"TR-{i}", "hs_appointment_name": "t"} for i in range(10)]
    sim.configure(faults=FaultConfig(rate=1.0, kinds=("503",), paths="batch/upsert"))
    operator = HubSpotAppointmentsUpsertOperator(task_id="upsert", records=rows, id_property="external_appointment_id",
                                                 failures_path=str(tmp_path / "f.parquet"))
    with pytest.raises(Exception, match="10 of 10 records failed"):
        operator.execute({"ti": TI()})
    sim.configure(faults=FaultConfig())  # HubSpot is healthy again when Airflow retries
    summary = operator.execute({"ti": TI()})
    assert (summary["succeeded"], summary["failed"], summary["created"]) == (10, 0, 10)
    assert len(keys_in(sim, "TR-")) == 10


def test_a_retry_with_another_window_size_reads_the_checkpoint_as_the_first_try_cut_it(sim, tmp_path, monkeypatch):
    rows = [{"hs_appointment_name": f"W-{i}"} for i in range(40)]
    real_save = Checkpoint.save

    def killed_at_the_third_window(self, number, result):
        if number == 2:
            raise SystemExit("killed")  # after window 2 was sent and answered, before its done record
        return real_save(self, number, result)

    monkeypatch.setattr(Checkpoint, "save", killed_at_the_third_window)
    first = HubSpotAppointmentsBatchCreateOperator(task_id="create", records=rows, window_rows=10)
    with pytest.raises(SystemExit):
        first.execute({"ti": TI()})
    monkeypatch.setattr(Checkpoint, "save", real_save)
    retried = HubSpotAppointmentsBatchCreateOperator(task_id="create", records=rows, window_rows=20)
    summary = retried.execute({"ti": TI()})
    names = [r.properties.get("hs_appointment_name") for r in sim.store.appointments()
             if str(r.properties.get("hs_appointment_name", "")).startswith("W-")]
    assert (summary["records"], summary["created"], summary["failed"]) == (40, 40, 0)
    assert sorted(names) == sorted(f"W-{i}" for i in range(40))  # each once, none lost


def test_a_try_killed_while_clearing_its_checkpoint_is_finished_on_retry(sim, tmp_path, monkeypatch):
    rows = [{"hs_appointment_name": f"F-{i}"} for i in range(30)]
    real_clear = Checkpoint.clear

    def killed_while_clearing(self):
        raise SystemExit("killed")

    monkeypatch.setattr(Checkpoint, "clear", killed_while_clearing)
    operator = HubSpotAppointmentsBatchCreateOperator(task_id="create", records=rows, window_rows=10)
    with pytest.raises(SystemExit):
        operator.execute({"ti": TI()})
    monkeypatch.setattr(Checkpoint, "clear", real_clear)
    summary = operator.execute({"ti": TI()})
    created = [r for r in sim.store.appointments() if str(r.properties.get("hs_appointment_name", "")).startswith("F-")]
    assert summary["created"] == 30 and len(created) == 30  # the retry sent nothing
