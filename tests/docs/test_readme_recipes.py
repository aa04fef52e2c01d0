"""The README's recipes, read out of README.md and run as DAG files with `dag.test()` against the simulator.

Each block follows a ``<!-- recipe: name -->`` marker; a recipe the README drops, or one that no
longer runs, fails here.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
RECIPE = re.compile(r"<!-- recipe: (\w+) -->\n```python\n(.*?)```", re.S)


def recipes() -> dict[str, str]:
    return dict(RECIPE.findall(README.read_text()))


def test_the_readme_has_the_five_recipes():
    assert list(recipes()) == ["nightly_load", "import_export", "associate_by_email", "clean_up", "backfill"]


@pytest.fixture
def sim(hubspot_simulator_factory, monkeypatch, tmp_path):
    simulator = hubspot_simulator_factory(seed_appointments=300, latency_ms=0, search_lag_ms=0)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", simulator.airflow_connection_json())
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "w.db")}))
    return simulator


@pytest.fixture
def run_recipe(run_dag, tmp_path):
    def run(name: str, dag_id: str, **kwargs):
        path = tmp_path / f"recipe_{name}.py"
        path.write_text(recipes()[name])
        result = run_dag(path, dag_id, **kwargs)
        assert result.state == "success", result.task_states()
        return result
    return run


def _by_key(sim) -> dict[str, dict]:
    return {r.properties.get("external_appointment_id"): r.properties for r in sim.store.appointments()}


def test_nightly_load_merges_its_interval_and_a_rerun_changes_nothing(sim, run_recipe, tmp_path):
    run_after = datetime.now(timezone.utc) - timedelta(days=1)
    first = run_recipe("nightly_load", "nightly_appointments_load", logical_date=run_after).xcom("load")
    low, high = (datetime.fromisoformat(first[key]).timestamp() * 1000 for key in ("modified_after", "modified_before"))
    assert high - low == 86_400_000  # the day before the run, not an empty window
    expected = {str(r.id) for r in sim.store.appointments() if low <= r.updated_ms < high}
    assert expected and first["modified"] == len(expected)
    with sqlite3.connect(tmp_path / "w.db") as connection:
        assert {row[0] for row in connection.execute("SELECT id FROM hubspot_appointments")} == expected
    again = run_recipe("nightly_load", "nightly_appointments_load", logical_date=run_after).xcom("load")
    assert (again["inserted"], again["updated"]) == (0, 0)


EXPORT = """booking_id,title,starts,status,patient_email
B-1,Check-up,2026-12-03 14:30,confirmed,{email0}
B-2,Follow-up,2026-07-01 09:00,no show,{email1}
B-3,Cleaning,2026-12-04 08:00,cancelled,
B-4,Night slot,2026-03-29 02:30,confirmed,
"""


def test_import_export_converts_local_times_matches_labels_and_associates_by_email(sim, run_recipe, tmp_path):
    contacts = list(sim.store.iter_records("contacts"))[:2]
    export = tmp_path / "bookings.csv"
    more = "".join(f"B-{i},Visit {i},2026-12-{i:02d} 10:00,Confirmed,\n" for i in range(5, 25))
    export.write_text(EXPORT.format(email0=contacts[0].properties["email"].upper(),
                                    email1=contacts[1].properties["email"]) + more)
    failures = tmp_path / "failures.csv"
    result = run_recipe("import_export", "import_bookings",
                        run_conf={"export": str(export), "failures": str(failures)})
    summary = result.xcom("import")  # one bad row in 24: under the recipe's 5 %
    assert (summary["succeeded"], summary["failed"]) == (23, 1)
    by_key = _by_key(sim)
    assert pd.Timestamp(by_key["B-1"]["hs_appointment_start"]) == pd.Timestamp("2026-12-03 13:30", tz="UTC")
    assert [by_key[k]["hs_appointment_status"] for k in ("B-1", "B-2", "B-3")] == ["CONFIRMED", "NO_SHOW", "CANCELED"]
    ids = {r.properties.get("external_appointment_id"): r.id for r in sim.store.appointments()}
    for key, contact in zip(("B-1", "B-2"), contacts):
        assert set(sim.store.associations_of("appointments", ids[key])["contacts"]) == {contact.id}
    assert "'2026-03-29 02:30' does not exist in Europe/Berlin" in pd.read_csv(failures).iloc[0]["message"]


def test_associate_by_email_names_an_email_no_contact_holds(sim, run_recipe, tmp_path):
    contact = next(iter(sim.store.iter_records("contacts")))
    appointments = [r.id for r in sim.store.appointments()][:2]
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"appointment_id": appointments, "email": [contact.properties["email"], "nobody@example.org"]}
                 ).to_csv(pairs, index=False)
    summary = run_recipe("associate_by_email", "associate_by_email", run_conf={"pairs": str(pairs)}).xcom("associate")
    assert (summary["succeeded"], summary["failed"]) == (1, 1)
    assert contact.id in sim.store.associations_of("appointments", appointments[0])["contacts"]
    message = pd.read_parquet(summary["failures_path"]).iloc[0]["message"]
    assert message == "row 1: no contacts record with email 'nobody@example.org'"


def _cancelled_before(sim, cutoff_ms: float) -> set[str]:
    return {str(r.id) for r in sim.store.appointments(include_archived=False)
            if r.properties.get("hs_appointment_status") == "CANCELED"
            and int(pd.Timestamp(r.properties["hs_appointment_start"]).timestamp() * 1000) < cutoff_ms}


def test_clean_up_previews_then_archives_old_cancellations(sim, run_recipe):
    cutoff = (datetime.now(timezone.utc) - timedelta(days=5)).timestamp() * 1000
    old = _cancelled_before(sim, cutoff)
    assert old
    preview = run_recipe("clean_up", "archive_old_cancellations",
                         run_conf={"older_than_days": 5, "dry_run": True}).xcom("archive")
    report = pd.read_parquet(preview["report_path"])
    assert preview["dry_run"] and set(report.loc[report["action"] == "archive", "input_key"].astype(str)) >= old
    assert _cancelled_before(sim, cutoff) == old  # nothing archived
    archived = run_recipe("clean_up", "archive_old_cancellations", run_conf={"older_than_days": 5}).xcom("archive")
    assert archived["succeeded"] >= len(old) and not _cancelled_before(sim, cutoff)


def test_backfill_from_sql_rerun_writes_nothing_twice(sim, run_recipe, tmp_path):
    with sqlite3.connect(tmp_path / "w.db") as connection:
        connection.execute("CREATE TABLE bookings (booking_id TEXT, title TEXT, starts_at TEXT)")
        rows = [(f"BF-{i:03d}", f"Visit {i}", f"2026-12-{1 + i % 28:02d}T09:00:00Z") for i in range(150)]
        connection.executemany("INSERT INTO bookings VALUES (?, ?, ?)", rows)
    first = run_recipe("backfill", "backfill_from_warehouse").xcom("backfill")
    assert (first["created"], first["failed"]) == (150, 0)
    again = run_recipe("backfill", "backfill_from_warehouse").xcom("backfill")
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 150)
    keys = [r.properties.get("external_appointment_id") for r in sim.store.appointments()]
    assert sum(1 for key in keys if key and key.startswith("BF-")) == 150  # each once
