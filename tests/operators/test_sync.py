"""SQL sources and the change-aware sync, against the simulator over HTTP and a real SQLite database
through Airflow's sqlite provider (the deployment tests run the example sync on PostgreSQL)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.hooks.hubspot import HubSpotAppointmentsHook
from airflow_provider_appointments.operators.appointments import (
    HubSpotAppointmentsSyncOperator,
    HubSpotAppointmentsUpsertOperator,
)
from airflow_provider_appointments.simulator.faults import FaultConfig
from tests.operators.test_operators import _TI

KEY = "external_appointment_id"


@pytest.fixture
def sim(hubspot_simulator_factory, monkeypatch):
    simulator = hubspot_simulator_factory(seed_appointments=20)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", simulator.airflow_connection_json())
    return simulator


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A SQLite warehouse with a `bookings` table of 250 rows, as the connection `warehouse`."""
    path = tmp_path / "warehouse.db"
    connection = sqlite3.connect(path)
    connection.execute(f"create table bookings ({KEY} text, hs_appointment_name text, hs_duration integer)")
    connection.executemany("insert into bookings values (?, ?, ?)",
                           [(f"K{i:03d}", f"Booking {i}", 30 + i % 60) for i in range(250)])
    connection.commit()
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    yield connection
    connection.close()


def writes(sim) -> dict[str, int]:
    return {route.rsplit("/", 1)[-1]: count for route, count in sim.stats()["by_route"].items()
            if "/batch/" in route and not route.endswith("/batch/read")}


def by_key(sim) -> dict[str, object]:
    return {r.properties[KEY]: r for r in sim.store.appointments() if r.properties.get(KEY)}


def sync(tmp_path: Path, **arguments) -> dict:
    settings = {"sql": "select * from bookings order by 1", "sql_conn_id": "warehouse", "id_property": KEY,
                "state_path": str(tmp_path / "state.parquet"), "checkpoint_path": str(tmp_path / "ckpt"),
                "failures_path": str(tmp_path / "failures.parquet"), **arguments}
    return HubSpotAppointmentsSyncOperator(task_id="sync", **settings).execute({"ti": _TI()})


# -- SQL sources -------------------------------------------------------------------------------
def test_a_sql_source_follows_the_dataframe_rules_for_nulls_big_numbers_dates_and_braces(sim, tmp_path, monkeypatch):
    path = tmp_path / "odd.db"
    connection = sqlite3.connect(path)
    connection.execute(f"create table t ({KEY} text, hs_appointment_name text, hs_duration integer, "
                       "hs_appointment_date text, hs_appointment_notes text)")
    connection.executemany("insert into t values (?, ?, ?, ?, ?)", [
        ("S-1", "Checkup {{ ds }}", 12345678901234567890 // 10**5, "13/01/2026", 'say "hi" {x}'),
        ("S-2", "{% raw %}x", None, "14/01/2026", None),
    ])
    connection.commit()
    connection.close()
    monkeypatch.setenv("AIRFLOW_CONN_ODD", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    result = HubSpotAppointmentsUpsertOperator(
        task_id="u", sql="select * from t order by 1;", sql_conn_id="odd", id_property=KEY,
        date_format="%d/%m/%Y", checkpoint_path=str(tmp_path / "ckpt")).execute({"ti": _TI()})
    assert (result["records"], result["created"], result["failed"]) == (2, 2, 0)
    stored = by_key(sim)
    assert stored["S-1"].properties["hs_appointment_name"] == "Checkup {{ ds }}"
    assert stored["S-1"].properties["hs_duration"] == "123456789012345"
    assert stored["S-1"].properties["hs_appointment_date"] == "2026-01-13"
    assert stored["S-1"].properties["hs_appointment_notes"] == 'say "hi" {x}'
    assert stored["S-2"].properties.get("hs_duration") in (None, "")  # NULL is missing, not "nan"
    assert not (tmp_path / "ckpt").exists()  # the copy of the answer went with the checkpoint


@pytest.mark.parametrize("arguments, message", [
    ({"sql": "select * from nowhere"}, "the query failed: OperationalError: no such table: nowhere"),
    ({"sql": f"select {KEY}, {KEY} from bookings"}, f"returns the column\\(s\\) {KEY} more than once"),
    ({"sql": "select * from bookings", "sql_conn_id": "hubspot_default"}, "is not a common-sql DbApiHook"),
])
def test_a_bad_query_or_connection_fails_before_any_write_naming_it(sim, db, tmp_path, arguments, message):
    settings = {"sql_conn_id": "warehouse", "id_property": KEY, "checkpoint_path": str(tmp_path / "c"), **arguments}
    with pytest.raises(HubSpotInputError, match=message):
        HubSpotAppointmentsUpsertOperator(task_id="u", **settings).execute({"ti": _TI()})
    assert not writes(sim)


def test_records_and_sql_are_exclusive_and_sql_needs_a_connection():
    with pytest.raises(HubSpotInputError, match="either records or sql"):
        HubSpotAppointmentsUpsertOperator(task_id="u", records=[{}], sql="select 1", sql_conn_id="w", id_property=KEY)
    with pytest.raises(HubSpotInputError, match="either records or sql"):
        HubSpotAppointmentsUpsertOperator(task_id="u", id_property=KEY)
    with pytest.raises(HubSpotInputError, match="sql needs sql_conn_id"):
        HubSpotAppointmentsUpsertOperator(task_id="u", sql="select 1", id_property=KEY)


# -- the sync ----------------------------------------------------------------------------------
def test_a_second_sync_sends_nothing_and_then_only_the_changed_properties(sim, db, tmp_path):
    first = sync(tmp_path)
    assert (first["created"], first["compare"], first["failed"]) == (250, "hubspot", 0)  # no state yet
    modified = {key: record.updated_ms for key, record in by_key(sim).items()}
    before = writes(sim)
    second = sync(tmp_path)
    assert (second["unchanged"], second["created"], second["updated"], second["requests"]) == (250, 0, 0, 0)
    assert writes(sim) == before and second["compare"] == "state"
    assert {key: record.updated_ms for key, record in by_key(sim).items()} == modified  # nothing rewritten
    # A HubSpot user edits a property the source also carries; the source changes another one of the row.
    client = HubSpotAppointmentsHook().get_conn()
    client.update_appointment(by_key(sim)["K001"].id, {"hs_duration": "999"})
    db.execute(f"update bookings set hs_appointment_name = 'Renamed' where {KEY} = 'K001'")
    db.commit()
    third = sync(tmp_path)
    assert (third["updated"], third["unchanged"], third["requests"]) == (1, 249, 1)
    record = by_key(sim)["K001"]
    assert record.properties["hs_appointment_name"] == "Renamed"
    assert record.properties["hs_duration"] == "999"  # only the changed property was sent
    assert by_key(sim)["K002"].updated_ms == modified["K002"]


def test_compare_hubspot_sees_edits_made_in_hubspot_and_rewrites_nothing_else(sim, db, tmp_path):
    sync(tmp_path)
    client = HubSpotAppointmentsHook().get_conn()
    client.update_appointment(by_key(sim)["K005"].id, {"hs_appointment_name": "edited in HubSpot"})
    modified = {key: record.updated_ms for key, record in by_key(sim).items()}
    assert sync(tmp_path)["unchanged"] == 250  # the state cannot see the edit
    full = sync(tmp_path, compare="hubspot")
    assert (full["updated"], full["unchanged"], full["compare"]) == (1, 249, "hubspot")
    assert full["requests"] == 3 + 1  # a batch read per 100 rows, one update
    assert by_key(sim)["K005"].properties["hs_appointment_name"] == "Booking 5"
    changed = {key for key, record in by_key(sim).items() if record.updated_ms != modified[key]}
    assert changed == {"K005"}


def test_mirror_archives_only_the_keys_it_wrote_that_left_the_source(sim, db, tmp_path):
    seeded = {r.id for r in sim.store.appointments() if not r.properties.get(KEY)}
    sync(tmp_path, mode="mirror")
    db.execute(f"delete from bookings where {KEY} in ('K010', 'K011')")
    db.execute("insert into bookings values ('K900', 'New', 45)")
    db.commit()
    result = sync(tmp_path, mode="mirror")
    assert (result["archived"], result["created"], result["unchanged"], result["records"]) == (2, 1, 248, 249)
    archived = {key for key, record in by_key(sim).items() if record.archived}
    assert archived == {"K010", "K011"}
    assert all(not r.archived for r in sim.store.appointments() if r.id in seeded)  # not owned: untouched
    state = pd.read_parquet(tmp_path / "state.parquet")
    assert len(state) == 249 and {"K010", "K011"}.isdisjoint(state["key"]) and "K900" in set(state["key"])
    again = sync(tmp_path, mode="mirror")
    assert (again["archived"], again["requests"]) == (0, 0)


def test_a_source_that_suddenly_returns_nothing_is_refused_before_any_write(sim, db, tmp_path):
    sync(tmp_path, mode="mirror")
    state_before = (tmp_path / "state.parquet").read_bytes()
    before = writes(sim)
    db.execute("delete from bookings")
    db.commit()
    with pytest.raises(AirflowException, match=r"archive 250 of the 250 records it owns \(100.0%\), past "
                                               r"max_archive_ratio=0.1.*nothing was written"):
        sync(tmp_path, mode="mirror")
    assert writes(sim) == before and (tmp_path / "state.parquet").read_bytes() == state_before
    assert not any(r.archived for r in sim.store.appointments())
    # A count limit too, and a raised ratio lets real deletions through.
    db.executemany("insert into bookings values (?, ?, ?)",
                   [(f"K{i:03d}", f"Booking {i}", 30 + i % 60) for i in range(240)])
    db.commit()
    with pytest.raises(AirflowException, match="archive 10 of the 250.*past max_archive=5"):
        sync(tmp_path, mode="mirror", max_archive=5)
    assert sync(tmp_path, mode="mirror")["archived"] == 10  # 4 % is within the default 10 %


def test_update_mode_creates_nothing_and_reports_unknown_keys(sim, db, tmp_path):
    db.execute(f"delete from bookings where {KEY} >= 'K003'")
    db.commit()
    sync(tmp_path)  # K000-K002 exist
    db.execute("insert into bookings values ('K777', 'Unknown', 30)")
    db.execute(f"update bookings set hs_duration = 5 where {KEY} = 'K000'")
    db.commit()
    result = sync(tmp_path, mode="update", failures_path=str(tmp_path / "f.parquet"), max_failed_records=1)
    assert (result["updated"], result["created"], result["failed"]) == (1, 0, 1)
    failures = pd.read_parquet(tmp_path / "f.parquet")
    assert failures.loc[0, "input_key"] == "K777" and failures.loc[0, "category"] == "OBJECT_NOT_FOUND"
    assert "K777" not in by_key(sim)
    # Without a state (compare with HubSpot) the unknown key is found missing by the read, not by a write.
    no_state = sync(tmp_path, mode="update", state_path=None, failures_path=str(tmp_path / "g.parquet"),
                    max_failed_records=1)
    assert (no_state["failed"], no_state["unchanged"]) == (1, 3)
    assert "no appointment with external_appointment_id 'K777'" in pd.read_parquet(tmp_path / "g.parquet").loc[
        0, "message"]


def test_a_failed_run_keeps_the_previous_state_and_the_next_run_sends_the_failed_rows_again(sim, db, tmp_path,
                                                                                           monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json(max_attempts=1))  # fail fast
    sync(tmp_path)
    state_before = (tmp_path / "state.parquet").read_bytes()
    db.execute(f"update bookings set hs_duration = 7 where {KEY} in ('K001', 'K002')")
    db.execute(f"update bookings set hs_appointment_name = 'x' where {KEY} = 'K003'")
    db.commit()
    sim.configure(faults=FaultConfig(rate=1.0, kinds=("503",), paths="batch/upsert"))
    with pytest.raises(AirflowException, match="3 of 250 records failed"):
        sync(tmp_path)
    sim.configure(faults=FaultConfig())  # HubSpot is healthy again
    assert (tmp_path / "state.parquet").read_bytes() == state_before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".state")]  # no temporary left
    retried = sync(tmp_path)
    assert (retried["updated"], retried["unchanged"]) == (3, 247)
    assert by_key(sim)["K001"].properties["hs_duration"] == "7"


def test_a_repeated_key_is_refused_and_never_archived(sim, db, tmp_path):
    sync(tmp_path, mode="mirror")
    db.execute("insert into bookings values ('K004', 'Twin', 30)")
    db.commit()
    result = sync(tmp_path, mode="mirror", max_failed_records=2)
    assert (result["failed"], result["archived"]) == (2, 0)
    failures = pd.read_parquet(tmp_path / "failures.parquet")
    assert set(failures["category"]) == {"DUPLICATE_INPUT_KEY"} and set(failures["input_key"]) == {"K004"}
    assert not by_key(sim)["K004"].archived


def test_the_dry_run_reports_every_planned_action_and_writes_nothing(sim, db, tmp_path):
    sync(tmp_path, mode="mirror")
    db.execute(f"update bookings set hs_duration = 1 where {KEY} = 'K001'")
    db.execute(f"delete from bookings where {KEY} = 'K002'")
    db.execute("insert into bookings values ('K901', 'New', 30)")
    db.execute("insert into bookings values ('K902', 'Bad', 'not a number')")
    db.commit()
    before, state_before = writes(sim), (tmp_path / "state.parquet").read_bytes()
    result = sync(tmp_path, mode="mirror", dry_run=True, dry_run_path=str(tmp_path / "plan.parquet"))
    assert result["actions"] == {"unchanged": 248, "update": 1, "create": 1, "refused": 1, "archive": 1}
    plan = pd.read_parquet(tmp_path / "plan.parquet").set_index("input_key")
    assert json.loads(plan.loc["K001", "changes"]) == {"hs_duration": {"to": "1"}}
    assert plan.loc["K002", "action"] == "archive" and plan.loc["K901", "action"] == "create"
    assert "hs_duration" in plan.loc["K902", "reason"] and "not a number" in plan.loc["K902", "reason"]
    assert writes(sim) == before and (tmp_path / "state.parquet").read_bytes() == state_before


def test_the_dry_run_shows_a_refused_archive_as_refused(sim, db, tmp_path):
    sync(tmp_path, mode="mirror")
    db.execute("delete from bookings")
    db.commit()
    result = sync(tmp_path, mode="mirror", dry_run=True, dry_run_path=str(tmp_path / "plan.parquet"))
    assert result["actions"] == {"refused": 250}
    plan = pd.read_parquet(tmp_path / "plan.parquet")
    assert plan["reason"].str.contains("max_archive_ratio").all()


def test_mirror_without_a_state_path_is_refused_at_once():
    with pytest.raises(HubSpotInputError, match="mode='mirror' needs state_path"):
        HubSpotAppointmentsSyncOperator(task_id="s", records=[{}], id_property=KEY, mode="mirror")
    with pytest.raises(HubSpotInputError, match="mode must be one of"):
        HubSpotAppointmentsSyncOperator(task_id="s", records=[{}], id_property=KEY, mode="merge")


# -- upsert's skip_unchanged -------------------------------------------------------------------
def test_upsert_skip_unchanged_writes_only_the_rows_and_properties_that_differ(sim, tmp_path):
    rows = [{KEY: f"U{i}", "hs_appointment_name": f"Name {i}", "hs_duration": 30} for i in range(150)]
    HubSpotAppointmentsUpsertOperator(task_id="u", records=rows, id_property=KEY,
                                      checkpoint_path=None).execute({"ti": _TI()})
    client = HubSpotAppointmentsHook().get_conn()
    client.update_appointment(by_key(sim)["U3"].id, {"hs_duration": "45"})  # a HubSpot user's edit
    modified = {key: record.updated_ms for key, record in by_key(sim).items()}
    rows[3]["hs_appointment_name"] = "Changed"
    rows.append({KEY: "U-new", "hs_appointment_name": "New", "hs_duration": 30})
    result = HubSpotAppointmentsUpsertOperator(task_id="u", records=rows, id_property=KEY, skip_unchanged=True,
                                               checkpoint_path=None).execute({"ti": _TI()})
    assert (result["unchanged"], result["updated"], result["created"]) == (149, 1, 1)
    assert result["requests"] == 2 + 1  # two batch reads, one upsert of the two rows that differ
    record = by_key(sim)["U3"]
    assert record.properties["hs_appointment_name"] == "Changed" and record.properties["hs_duration"] == "30"
    assert {key for key, r in by_key(sim).items() if r.updated_ms != modified.get(key)} == {"U3", "U-new"}


def test_lineage_of_a_sql_source_names_its_table_as_the_input(sim, db, tmp_path):
    operator = HubSpotAppointmentsSyncOperator(
        task_id="sync", sql="select b.* from main.bookings b order by 1", sql_conn_id="warehouse", id_property=KEY,
        state_path=str(tmp_path / "state.parquet"), checkpoint_path=None)
    operator.execute({"ti": _TI()})
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert [(d.namespace.split("://")[0], d.name.split(".")[-1]) for d in lineage.inputs] == [("sqlite", "bookings")]
    assert [d.name for d in lineage.outputs] == ["appointments"]


# -- found in review -------------------------------------------------------------------------------
def test_a_run_that_breaks_its_failure_policy_archives_nothing(sim, db, tmp_path):
    """Archiving and then keeping the previous state would leave records archived that the state calls
    unchanged when their keys come back."""
    sync(tmp_path, mode="mirror")
    db.execute(f"delete from bookings where {KEY} in ('K010', 'K011')")
    db.execute("insert into bookings values ('K950', 'Bad', 'not a number')")
    db.commit()
    with pytest.raises(AirflowException, match="1 of 249 records failed"):
        sync(tmp_path, mode="mirror")
    assert not by_key(sim)["K010"].archived
    db.executemany("insert into bookings values (?, ?, ?)", [("K010", "Booking 10", 40), ("K011", "Booking 11", 41)])
    db.execute(f"delete from bookings where {KEY} = 'K950'")
    db.commit()
    again = sync(tmp_path, mode="mirror")
    assert (again["archived"], again["failed"]) == (0, 0) and not by_key(sim)["K010"].archived


def test_a_changed_row_whose_record_was_purged_is_created_again_whole(sim, db, tmp_path):
    sync(tmp_path)
    sim.store.purge(by_key(sim)["K007"])  # deleted for good in HubSpot (a GDPR delete)
    db.execute(f"update bookings set hs_appointment_name = 'Renamed' where {KEY} = 'K007'")
    db.commit()
    result = sync(tmp_path)
    assert (result["created"], result["updated"], result["failed"]) == (1, 0, 0)
    record = by_key(sim)["K007"]
    assert record.properties["hs_appointment_name"] == "Renamed" and record.properties["hs_duration"] == "37"


def test_without_a_checkpoint_every_pass_reads_one_answer_of_the_query(sim, db, tmp_path):
    """ORDER BY random() answers differently on every read: the duplicate-key pass and the windows must
    see the same rows, or "last" would settle rows by the wrong numbers."""
    db.executemany("insert into bookings values (?, ?, ?)", [(f"K{i:03d}", f"Again {i}", 45) for i in range(0, 250, 5)])
    db.commit()
    result = sync(tmp_path, sql="select * from bookings order by random()", checkpoint_path=None,
                  on_duplicate_keys="last", window_rows=50)
    assert (result["records"], result["failed"], result["created"]) == (300, 0, 250)
    stored = {key: r.properties["hs_appointment_name"] for key, r in by_key(sim).items() if key.startswith("K")}
    assert sorted(stored) == [f"K{i:03d}" for i in range(250)]  # each key once; which twin is last is random
    assert all(stored[f"K{i:03d}"] in ({f"Booking {i}", f"Again {i}"} if i % 5 == 0 else {f"Booking {i}"})
               for i in range(250))
    state = pd.read_parquet(tmp_path / "state.parquet")
    assert len(state) == 250 and state["key"].is_unique


def test_a_failed_comparison_read_fails_its_rows_with_the_read_error_not_as_missing(sim, db, tmp_path, monkeypatch):
    sync(tmp_path)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json(max_attempts=1))
    sim.configure(faults=FaultConfig(rate=1.0, kinds=("503",), paths="batch/read"))
    before = writes(sim)
    with pytest.raises(AirflowException, match="250 of 250 records failed"):
        sync(tmp_path, mode="update", compare="hubspot", failures_path=str(tmp_path / "f.parquet"))
    sim.configure(faults=FaultConfig())
    failures = pd.read_parquet(tmp_path / "f.parquet")
    assert "OBJECT_NOT_FOUND" not in set(failures["category"]) and set(failures["status"]) == {503}
    assert "to compare failed" in failures.loc[0, "message"] and writes(sim) == before
    with pytest.raises(AirflowException, match="records failed"):
        HubSpotAppointmentsUpsertOperator(task_id="u", records=[{KEY: "K001", "hs_appointment_name": "x"}],
                                          id_property=KEY, skip_unchanged=True, checkpoint_path=None) \
            .execute({"ti": _TI()}) if sim.configure(faults=FaultConfig(rate=1.0, kinds=("503",),
                                                                        paths="batch/read")) else None
    sim.configure(faults=FaultConfig())
    assert writes(sim) == before  # skip_unchanged does not rewrite rows it could not compare


def test_the_dry_run_plans_repeated_keys_as_the_real_run_settles_them(sim, db, tmp_path):
    sync(tmp_path)
    db.execute("insert into bookings values ('K004', 'Twin', 30)")
    db.commit()
    rejected = sync(tmp_path, dry_run=True, dry_run_path=str(tmp_path / "plan.parquet"))
    plan = pd.read_parquet(tmp_path / "plan.parquet")
    assert list(plan[plan["input_key"] == "K004"]["action"]) == ["refused", "refused"]
    assert rejected["actions"] == {"unchanged": 249, "refused": 2}
    last = sync(tmp_path, dry_run=True, dry_run_path=str(tmp_path / "plan2.parquet"), on_duplicate_keys="last")
    plan = pd.read_parquet(tmp_path / "plan2.parquet")
    assert list(plan[plan["input_key"] == "K004"]["action"]) == ["superseded", "update"]
    assert last["actions"] == {"unchanged": 249, "superseded": 1, "update": 1}


def test_the_dry_run_with_a_state_asks_hubspot_about_keys_the_state_does_not_know(sim, db, tmp_path):
    sync(tmp_path)
    HubSpotAppointmentsUpsertOperator(task_id="u", records=[{KEY: "OUTSIDE", "hs_appointment_name": "Made elsewhere"}],
                                      id_property=KEY, checkpoint_path=None).execute({"ti": _TI()})
    db.execute("insert into bookings values ('OUTSIDE', 'Made elsewhere', NULL)")
    db.execute("insert into bookings values ('NOWHERE', 'New', NULL)")
    db.commit()
    result = sync(tmp_path, dry_run=True, dry_run_path=str(tmp_path / "plan.parquet"))
    plan = pd.read_parquet(tmp_path / "plan.parquet").set_index("input_key")
    assert plan.loc["OUTSIDE", "action"] == "unchanged" and plan.loc["NOWHERE", "action"] == "create"
    updating = sync(tmp_path, mode="update", dry_run=True, dry_run_path=str(tmp_path / "plan2.parquet"))
    assert pd.read_parquet(tmp_path / "plan2.parquet").set_index("input_key").loc["NOWHERE", "action"] == "refused"
    assert result["actions"]["create"] == 1 and updating["actions"]["refused"] == 1


def test_a_record_an_interrupted_try_created_counts_as_created_not_unchanged(sim, tmp_path):
    """A retry compares the killed try's in-flight rows with HubSpot: equal records it created since the
    window's resume moment count as created, as they would have in one uninterrupted try."""
    import time as clock

    from airflow_provider_appointments.api.timestamps import to_epoch_ms
    from airflow_provider_appointments.operators.changes import compare_with_hubspot
    from airflow_provider_appointments.operators.run import WriteRun

    client = HubSpotAppointmentsHook().get_conn()
    old = client.batch_upsert([{"id": "OLD", "properties": {"hs_appointment_name": "a"}}], id_property=KEY)
    clock.sleep(0.01)
    since = to_epoch_ms(pd.Timestamp.now(tz="UTC").to_pydatetime())
    client.batch_upsert([{"id": "NEW", "properties": {"hs_appointment_name": "b"}}], id_property=KEY)
    run = WriteRun(client, client.get_property_schema(), {})
    items = [{"id": "OLD", "properties": {"hs_appointment_name": "a"}},
             {"id": "NEW", "properties": {"hs_appointment_name": "b"}}]
    compared = compare_with_hubspot(run, KEY, [0, 1], items, created_since=since)
    assert old.succeeded == 1
    assert (compared.unchanged[0].unchanged, compared.unchanged[0].new) == (True, False)
    assert (compared.unchanged[1].unchanged, compared.unchanged[1].new) == (False, True)
    assert run.reads == 1


def test_every_write_operator_takes_a_sql_source(sim, db, tmp_path):
    from airflow_provider_appointments.operators.appointments import (
        HubSpotAppointmentsArchiveOperator,
        HubSpotAppointmentsAssociateOperator,
        HubSpotAppointmentsBatchCreateOperator,
    )

    source = {"sql_conn_id": "warehouse", "checkpoint_path": None}
    created = HubSpotAppointmentsBatchCreateOperator(
        task_id="c", sql="select * from bookings where external_appointment_id < 'K005' order by 1",
        dedupe_property=KEY, id_map_path=str(tmp_path / "ids.parquet"), **source).execute({"ti": _TI()})
    assert (created["created"], created["failed"]) == (5, 0)
    ids = {key: r.id for key, r in by_key(sim).items()}
    db.execute("create table links (appointment_id text, to_object_id text)")
    contact = next(iter(sim.store.iter_ids("contacts")))
    db.executemany("insert into links values (?, ?)", [(str(ids[f"K00{i}"]), str(contact)) for i in range(3)])
    db.execute("create table gone (id text)")
    db.executemany("insert into gone values (?)", [(str(ids["K003"]),), (str(ids["K004"]),)])
    db.commit()
    linked = HubSpotAppointmentsAssociateOperator(task_id="a", sql="select * from links", to_object_type="contacts",
                                                  **source).execute({"ti": _TI()})
    archived = HubSpotAppointmentsArchiveOperator(task_id="x", sql="select id from gone", **source).execute(
        {"ti": _TI()})
    assert (linked["succeeded"], archived["succeeded"]) == (3, 2)
    assert {key for key, r in by_key(sim).items() if r.archived} == {"K003", "K004"}
