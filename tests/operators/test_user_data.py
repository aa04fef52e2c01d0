"""Users' data arrives exactly as written or is refused with a reason; it is never a template."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.operators.appointments import (
    HubSpotAppointmentsArchiveOperator,
    HubSpotAppointmentsAssociateOperator,
    HubSpotAppointmentsExtractOperator,
)
from tests.operators.test_operators import _TI

SUITE = Path(__file__).parent / "dags" / "user_data_suite.py"


@pytest.fixture
def sim(hubspot_simulator_factory, monkeypatch):
    simulator = hubspot_simulator_factory(seed_appointments=100)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", simulator.airflow_connection_json())
    return simulator


def stored(sim, key):
    return next(r.properties for r in sim.store.appointments() if r.properties.get("external_appointment_id") == key)


def test_inline_records_arrive_as_written_or_are_refused_and_are_never_rendered(run_dag, sim, tmp_path):
    result = run_dag(SUITE, "inline_user_data", run_conf={"dir": str(tmp_path)})
    assert result.state == "success", result.task_states()
    summary = result.xcom("create")
    assert (summary["records"], summary["succeeded"], summary["failed"]) == (6, 4, 2)
    assert stored(sim, "T-1")["hs_appointment_name"] == "Checkup {{ ds }}"
    assert stored(sim, "T-2")["hs_appointment_name"] == "{% raw %}kept{% endraw %}"
    assert "hs_duration" not in stored(sim, "T-2") or stored(sim, "T-2")["hs_duration"] == ""  # NaN = missing
    assert stored(sim, "T-3")["hs_appointment_name"] == "{{ broken"
    assert stored(sim, "T-3")["hs_appointment_notes"] == 'say "hi" {x}'
    assert stored(sim, "T-4")["hs_duration"] == "12345678901234567890"
    failures = pd.read_parquet(tmp_path / "failures.parquet").set_index("input_key")
    assert "'13/01/2026'" in failures.loc["T-5", "message"] and "date_format" in failures.loc["T-5", "message"]
    assert "row 4, column 'hs_appointment_date'" in failures.loc["T-5", "message"]
    assert "boolean" in failures.loc["T-6", "message"] and "row 5" in failures.loc["T-6", "message"]
    assert stored(sim, "F-1")["hs_appointment_date"] == "2026-01-13"
    # The rows are data, not a rendered field stored in the metadata database.
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    with create_session() as session:
        fields = session.query(RenderedTaskInstanceFields).filter_by(
            dag_id="inline_user_data", task_id="create", run_id=result.dag_run.run_id).one().rendered_fields
    assert "Checkup" not in str(fields) and fields.get("records") in (None, "None")


def test_the_default_daily_timetable_gives_an_empty_window_that_fails_with_the_fix(run_dag, sim, tmp_path):
    failed = run_dag(SUITE, "daily_default_timetable", run_conf={"dir": str(tmp_path)},
                     logical_date=datetime(2026, 3, 2, tzinfo=timezone.utc))
    assert failed.state == "failed" and not (tmp_path / "default.parquet").exists()
    worked = run_dag(SUITE, "daily_interval_timetable", run_conf={"dir": str(tmp_path)},
                     logical_date=datetime(2026, 3, 2, tzinfo=timezone.utc))
    assert worked.state == "success", worked.task_states()
    assert worked.xcom("extract")["modified_after"] == "2026-03-01T00:00:00+00:00"


@pytest.mark.parametrize("after, before, message", [
    ("2026-03-02T00:00:00Z", "2026-03-02T00:00:00Z",
     "both 2026-03-02T00:00:00\\+00:00: the window is empty.*CronDataIntervalTimetable"),
    ("2026-03-03T00:00:00Z", "2026-03-02T00:00:00Z",
     "modified_after \\(2026-03-03.*is after modified_before \\(2026-03-02"),
    ("yesterday", None, "modified_after must be an ISO 8601 date.*'yesterday'"),
    (None, "03/02/2026", "modified_before must be an ISO 8601 date"),
])
def test_windows_that_cannot_be_right_fail_before_any_request(sim, tmp_path, after, before, message):
    operator = HubSpotAppointmentsExtractOperator(task_id="t", output_path=str(tmp_path / "x.parquet"),
                                                  modified_after=after, modified_before=before)
    requests_before = sim.stats()["requests"]
    with pytest.raises(HubSpotInputError, match=message):
        operator.execute({"ti": _TI()})
    assert sim.stats()["requests"] == requests_before


def test_extracted_ids_are_never_floats(sim, tmp_path):
    for suffix in ("parquet", "csv", "jsonl"):
        operator = HubSpotAppointmentsExtractOperator(task_id="t", output_path=str(tmp_path / f"x.{suffix}"),
                                                      properties=["hs_appointment_name"])
        operator.execute({"ti": _TI()})
    frame = pd.read_parquet(tmp_path / "x.parquet")
    assert frame["id"].dtype != "float64"
    assert set(frame["id"].astype(str)) == {str(r.id) for r in sim.store.appointments()}
    assert not pd.read_csv(tmp_path / "x.csv")["id"].astype(str).str.contains(r"\.").any()


def test_archive_verifies_ids_by_default_and_a_rerun_converges(sim, tmp_path):
    rows = [{"id": "100001"}, {"id": "100002"}, {"id": "4242"}]
    first = HubSpotAppointmentsArchiveOperator(task_id="t", records=rows, max_failed_records=1,
                                               failures_path=str(tmp_path / "f.parquet")).execute({"ti": _TI()})
    assert (first["succeeded"], first["failed"]) == (2, 1)
    assert "appointment 4242 does not exist" in pd.read_parquet(tmp_path / "f.parquet")["message"][0]
    again = HubSpotAppointmentsArchiveOperator(task_id="t", records=rows[:2]).execute({"ti": _TI()})
    assert (again["succeeded"], again["unchanged"], again["failed"]) == (2, 2, 0)
    assert sim.store.counts()["appointments"]["archived"] == 2


def test_an_association_404_names_the_missing_side(sim, tmp_path):
    contact = str(next(iter(sim.store.iter_records("contacts"))).id)
    rows = [{"appointment_id": "100003", "to_object_id": "4242"}, {"appointment_id": "77", "to_object_id": contact}]
    HubSpotAppointmentsAssociateOperator(task_id="t", records=rows, to_object_type="contacts", max_failed_records=2,
                                         failures_path=str(tmp_path / "f.parquet")).execute({"ti": _TI()})
    messages = pd.read_parquet(tmp_path / "f.parquet").set_index("input_row")["message"]
    assert messages[0].startswith("contacts record 4242 does not exist")
    assert messages[1].startswith("appointment 77 does not exist")


def test_rerunning_a_whole_dag_run_writes_nothing_twice(run_dag, sim, tmp_path):
    pd.DataFrame({"external_appointment_id": [f"B-{i}" for i in range(250)], "hs_appointment_name": "booking"}
                 ).to_csv(tmp_path / "bookings.csv", index=False)
    pd.DataFrame({"hs_appointment_name": [f"walk-in {i}" for i in range(250)]}).to_csv(tmp_path / "walk_ins.csv",
                                                                                      index=False)
    when = datetime(2026, 3, 2, tzinfo=timezone.utc)
    first = run_dag(SUITE, "rerun_creates", run_conf={"dir": str(tmp_path)}, logical_date=when, run_after=when)
    assert [first.xcom(task)["created"] for task in ("natural_key", "derived_key")] == [250, 250]
    run_id = first.dag_run.run_id
    again = run_dag(SUITE, "rerun_creates", run_conf={"dir": str(tmp_path)}, logical_date=when, run_after=when)
    assert again.dag_run.run_id == run_id and again.state == "success", again.task_states()
    for task in ("natural_key", "derived_key"):
        assert (again.xcom(task)["created"], again.xcom(task)["unchanged"], again.xcom(task)["failed"]) == (0, 250, 0)
    names = [r.properties.get("hs_appointment_name") for r in sim.store.appointments()]
    assert names.count("booking") == 250 and sum(n.startswith("walk-in") for n in names) == 250
