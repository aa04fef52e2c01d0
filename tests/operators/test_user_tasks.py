"""What users otherwise write around the operators: typos caught up front, local times, option labels and
value maps, associations by natural key, clean-up by search, and failure reports a person can read."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsExtractOperator
from tests.operators.test_operators import _TI


@pytest.fixture
def sim(hubspot_simulator_factory, monkeypatch):
    simulator = hubspot_simulator_factory(seed_appointments=30, latency_ms=0)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", simulator.airflow_connection_json())
    return simulator


def requests_by_route(sim) -> dict[str, int]:
    return {route: count for route, count in sim.stats()["by_route"].items() if not route.startswith("GET /_")}


# -- the extract refuses property names the account does not have ---------------------------------------
@pytest.mark.parametrize("argument", ["properties", "properties_with_history"])
def test_a_misspelled_property_fails_the_extract_before_any_page_or_wait(sim, tmp_path, argument):
    # A window ending in ten minutes would wait for search's lag: the typo must fail first, not after it.
    before = datetime.now(timezone.utc) + timedelta(minutes=10)
    operator = HubSpotAppointmentsExtractOperator(
        task_id="extract", output_path=str(tmp_path / "out.parquet"), modified_after="2026-01-01T00:00:00Z",
        modified_before=before.isoformat(), max_search_wait=3600,
        **{argument: ["hs_appointment_name", "hs_appointment_staus"]})
    started = time.monotonic()
    with pytest.raises(HubSpotInputError) as raised:
        operator.execute({"ti": _TI()})
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert message.startswith(f"{argument}: 'hs_appointment_staus' (did you mean hs_appointment_status")
    assert message.endswith("is not an appointment property of this account")
    assert "hs_appointment_name" not in message  # the known one is not reported
    routes = requests_by_route(sim)
    assert routes and all("properties" in route for route in routes), routes  # only the schema was read
    assert not (tmp_path / "out.parquet").exists()


def test_known_properties_extract_as_before(sim, tmp_path):
    operator = HubSpotAppointmentsExtractOperator(task_id="extract", output_path=str(tmp_path / "out.parquet"),
                                                  properties=["hs_appointment_name", "hs_appointment_status"])
    summary = operator.execute({"ti": _TI()})
    assert summary["records"] == 30
    schema_reads = sum(n for route, n in requests_by_route(sim).items() if "properties" in route)
    assert schema_reads == 1  # the check and the extract share one read


# -- an export from a booking system: local times, option labels, its own words for statuses --------------
EXPORT = """booking_id,title,starts,status
B-1,Checkup,2026-12-03 14:30,confirmed
B-2,Follow-up,2026-07-01 09:00,No show
B-3,Cleaning,2026-12-04 08:00,cancelled
B-4,Night shift,2026-03-29 02:30,confirmed
B-5,Late,2026-10-25 02:30,Scheduled
B-6,Typo,2026-12-05 10:00,confirmd
"""


def moment(text: str, zone: str = "UTC"):
    import pandas as pd

    return pd.Timestamp(text, tz=zone) if pd.Timestamp(text).tzinfo is None else pd.Timestamp(text)


def test_an_export_with_local_times_labels_and_a_value_map_lands_as_meant(sim, tmp_path):
    import pandas as pd

    from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsUpsertOperator

    (tmp_path / "export.csv").write_text(EXPORT)
    summary = HubSpotAppointmentsUpsertOperator(
        task_id="import", records=str(tmp_path / "export.csv"), id_property="external_appointment_id",
        id_column="booking_id", column_mapping={"title": "hs_appointment_name", "starts": "hs_appointment_start",
                                                "status": "hs_appointment_status"},
        timezone="Europe/Berlin", value_mapping={"status": {"cancelled": "CANCELED"}},
        failures_path=str(tmp_path / "failures.csv"), max_failed_records=10, checkpoint_path=None,
    ).execute({"ti": _TI()})
    assert (summary["records"], summary["succeeded"], summary["failed"]) == (6, 3, 3)
    by_key = {r.properties.get("external_appointment_id"): r.properties for r in sim.store.appointments()}
    assert moment(by_key["B-1"]["hs_appointment_start"]) == moment("2026-12-03 13:30")  # not 14:30 UTC
    assert moment(by_key["B-2"]["hs_appointment_start"]) == moment("2026-07-01 07:00")  # summer time
    assert [by_key[key]["hs_appointment_status"] for key in ("B-1", "B-2", "B-3")] == ["CONFIRMED", "NO_SHOW",
                                                                                      "CANCELED"]
    assert not {"B-4", "B-5", "B-6"} & set(by_key)
    failures = pd.read_csv(tmp_path / "failures.csv").set_index("input_key")["message"]
    assert "'2026-03-29 02:30' does not exist in Europe/Berlin" in failures["B-4"]
    assert "'2026-10-25 02:30' happens twice in Europe/Berlin" in failures["B-5"]
    assert "ambiguous='earliest'" in failures["B-5"]
    assert "'confirmd' is not an option of hs_appointment_status" in failures["B-6"]


# -- failure reports a person can read ---------------------------------------------------------------------
def test_a_row_with_a_bad_value_and_a_repeated_key_reports_both_problems(sim, tmp_path):
    import pandas as pd

    from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsUpsertOperator

    rows = [{"external_appointment_id": "K-1", "hs_appointment_status": "nonsense", "hs_duration": "x"},
            {"external_appointment_id": "K-1", "hs_appointment_status": "SCHEDULED"},
            {"external_appointment_id": "K-2", "hs_appointment_status": "SCHEDULED"}]
    for row in rows:
        row["hs_appointment_name"] = "Visit"
    summary = HubSpotAppointmentsUpsertOperator(
        task_id="upsert", records=rows, id_property="external_appointment_id", checkpoint_path=None,
        failures_path=str(tmp_path / "failures.parquet"), max_failed_records=5).execute({"ti": _TI()})
    assert (summary["succeeded"], summary["failed"]) == (1, 2)
    failures = pd.read_parquet(tmp_path / "failures.parquet").set_index("input_row")["message"]
    first = failures[0]
    assert "column 'hs_appointment_status': 'nonsense' is not an option" in first
    assert "column 'hs_duration': 'x'" in first
    assert "external_appointment_id 'K-1' also appears in rows [1]" in first
    assert "also appears in rows [0]" in failures[1]


def test_failed_rows_are_logged_twenty_then_one_line_per_category(sim, tmp_path, captured_logs):
    from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsUpsertOperator

    rows = [{"external_appointment_id": f"W-{i}", "hs_appointment_status": "nonsense"} for i in range(60)]
    rows += [{"external_appointment_id": "D-1", "hs_appointment_status": "SCHEDULED"}] * 5
    rows += [{"external_appointment_id": "OK", "hs_appointment_status": "SCHEDULED"}]
    rows = [{**row, "hs_appointment_name": "Visit"} for row in rows]
    summary = HubSpotAppointmentsUpsertOperator(
        task_id="upsert", records=rows, id_property="external_appointment_id", checkpoint_path=None,
        failures_path=str(tmp_path / "failures.parquet"), max_failed_records=100).execute({"ti": _TI()})
    assert (summary["succeeded"], summary["failed"]) == (1, 65)
    text = captured_logs.text
    assert text.count(") failed: ") == 20
    assert "… and 40 more rows failed INVALID_INPUT (all of them are in the failure report)" in text
    assert "… and 5 more rows failed DUPLICATE_INPUT_KEY" in text


# -- clean-up by a search ------------------------------------------------------------------------------------
def cancelled_before(cutoff_ms: int) -> list[dict]:
    return [{"filters": [{"propertyName": "hs_appointment_status", "operator": "EQ", "value": "CANCELED"},
                         {"propertyName": "hs_appointment_start", "operator": "LT", "value": str(cutoff_ms)}]}]


@pytest.fixture
def busy_sim(hubspot_simulator_factory, monkeypatch):
    simulator = hubspot_simulator_factory(seed_appointments=600, latency_ms=0)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", simulator.airflow_connection_json())
    return simulator


def _start_ms(record) -> int:
    import pandas as pd

    value = record.properties["hs_appointment_start"]
    return int(value) if str(value).isdigit() else int(pd.Timestamp(value).value // 1_000_000)


def test_archive_by_search_archives_exactly_what_the_search_finds(busy_sim, tmp_path):
    from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsArchiveOperator

    records = list(busy_sim.store.appointments())
    cancelled = [r for r in records if r.properties.get("hs_appointment_status") == "CANCELED"]
    starts = sorted(_start_ms(r) for r in cancelled)
    cutoff = starts[len(starts) // 2]  # half of the cancelled ones are older
    old = {r.id for r in cancelled if _start_ms(r) < cutoff}
    assert old and len(old) < len(cancelled)
    operator = HubSpotAppointmentsArchiveOperator(task_id="clean_up", filter_groups=cancelled_before(cutoff),
                                                  dry_run=True, dry_run_path=str(tmp_path / "plan.csv"))
    planned = operator.execute({"ti": _TI()})
    assert planned["actions"] == {"archive": len(old)}, planned
    assert not [r for r in busy_sim.store.appointments() if r.archived]  # a dry run archives nothing

    summary = HubSpotAppointmentsArchiveOperator(task_id="clean_up", filter_groups=cancelled_before(cutoff),
                                                 checkpoint_path=None).execute({"ti": _TI()})
    assert (summary["records"], summary["succeeded"], summary["failed"]) == (len(old), len(old), 0)
    archived = {r.id for r in busy_sim.store.appointments(include_archived=True) if r.archived}
    assert archived == old
    schema_reads = sum(n for route, n in requests_by_route(busy_sim).items() if "properties" in route)
    assert schema_reads == 2  # one per run: the name check, the search and the archive share the read
    again = HubSpotAppointmentsArchiveOperator(task_id="clean_up", filter_groups=cancelled_before(cutoff),
                                               checkpoint_path=None).execute({"ti": _TI()})
    assert again["records"] == 0  # a re-run finds nothing left to do


def test_archive_by_search_archives_every_match_past_search_s_10000_cap_once(hubspot_simulator_factory,
                                                                            monkeypatch):
    from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsArchiveOperator

    sim = hubspot_simulator_factory(seed_appointments=12_500, latency_ms=0, requests_per_10s=0,
                                    search_requests_per_second=0)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json())
    expected = {r.id for r in sim.store.appointments(include_archived=False)
                if r.properties.get("hs_appointment_status") != "CANCELED"}
    assert len(expected) > 10_000
    summary = HubSpotAppointmentsArchiveOperator(
        task_id="clean_up", checkpoint_path=None,
        filter_groups=[{"filters": [{"propertyName": "hs_appointment_status", "operator": "NEQ",
                                     "value": "CANCELED"}]}]).execute({"ti": _TI()})
    assert (summary["records"], summary["succeeded"], summary["failed"]) == (len(expected),) * 2 + (0,)
    assert {r.id for r in sim.store.appointments(include_archived=True) if r.archived} == expected
    archives = sim.stats()["by_route"]
    assert sum(n for route, n in archives.items() if route.endswith("/batch/archive")) == -(-len(expected) // 100)


@pytest.mark.parametrize(("arguments", "message"), [
    ({"filter_groups": [{"filters": []}]}, "filter_groups[0] must be {'filters': [...]} with at least one filter"),
    ({"filter_groups": "status=CANCELED"}, "filter_groups must be a non-empty list"),
    ({"filter_groups": [{"filters": [{"value": "x"}]}]}, "each filter needs propertyName and operator"),
    ({"modified_after": "2026-12-02", "modified_before": "2026-12-01"}, "modified_after"),
])
def test_a_search_that_cannot_be_right_fails_before_any_request(sim, arguments, message):
    from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsArchiveOperator

    with pytest.raises(HubSpotInputError, match=message.replace("[", r"\[").replace("{", r"\{")):
        HubSpotAppointmentsArchiveOperator(task_id="clean_up", checkpoint_path=None, **arguments).execute({"ti": _TI()})
    assert not requests_by_route(sim)


def test_a_misspelled_property_in_a_search_is_refused_with_suggestions_before_the_search(sim):
    from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsArchiveOperator

    groups = [{"filters": [{"propertyName": "hs_appointment_staus", "operator": "EQ", "value": "CANCELED"}]}]
    with pytest.raises(HubSpotInputError) as raised:
        HubSpotAppointmentsArchiveOperator(task_id="clean_up", checkpoint_path=None,
                                           filter_groups=groups).execute({"ti": _TI()})
    assert str(raised.value).startswith(
        "filter_groups: 'hs_appointment_staus' (did you mean hs_appointment_status"), raised.value
    routes = requests_by_route(sim)
    assert routes and all("properties" in route for route in routes), routes  # the schema read, no search
    assert not [r for r in sim.store.appointments(include_archived=True) if r.archived]


@pytest.mark.parametrize(("given", "archives"), [("False", True), ("false", True), ("True", False), (False, True)])
def test_dry_run_given_as_text_outside_a_template_is_the_flag_it_says(busy_sim, tmp_path, given, archives):
    from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsArchiveOperator

    target = next(r.id for r in busy_sim.store.appointments())
    summary = HubSpotAppointmentsArchiveOperator(
        task_id="clean_up", records=[{"id": target}], checkpoint_path=None, dry_run=given,
        dry_run_path=str(tmp_path / "plan.csv")).execute({"ti": _TI()})
    assert summary.get("dry_run", False) is (not archives), summary
    assert busy_sim.store.get("appointments", target).archived is archives


def test_dry_run_that_is_no_flag_is_refused_when_the_dag_is_parsed():
    from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsArchiveOperator

    with pytest.raises(HubSpotInputError, match="dry_run must be true or false, got 'nope'"):
        HubSpotAppointmentsArchiveOperator(task_id="clean_up", records=[{"id": "1"}], dry_run="nope")


def test_records_and_a_search_together_are_refused():
    from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsArchiveOperator

    with pytest.raises(HubSpotInputError, match="not both"):
        HubSpotAppointmentsArchiveOperator(task_id="clean_up", records=[{"id": "1"}],
                                           filter_groups=cancelled_before(0))


# -- associations by a natural key ---------------------------------------------------------------------------
def test_appointments_associate_with_contacts_by_email_and_an_unknown_email_is_named(sim, tmp_path):
    import pandas as pd

    from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsAssociateOperator

    contacts = list(sim.store.iter_records("contacts"))[:3]
    appointments = [record.id for record in sim.store.appointments()][:4]
    rows = pd.DataFrame({"appointment_id": [str(i) for i in appointments],
                         # HubSpot matches emails case-insensitively: an export's capitals still find the contact
                         "patient_email": [contacts[0].properties["email"].upper(),
                                           " " + contacts[1].properties["email"],
                                           contacts[2].properties["email"], "nobody@example.org"]})
    summary = HubSpotAppointmentsAssociateOperator(
        task_id="associate", records=rows, to_object_type="contacts", to_object_id_column="patient_email",
        to_object_id_property="email", checkpoint_path=None, failures_path=str(tmp_path / "failures.parquet"),
        max_failed_records=1).execute({"ti": _TI()})
    assert (summary["succeeded"], summary["failed"]) == (3, 1)
    for appointment, contact in zip(appointments, contacts):
        assert contact.id in sim.store.associations_of("appointments", appointment)["contacts"]
    failure = pd.read_parquet(tmp_path / "failures.parquet").iloc[0]
    assert failure["input_row"] == 3 and failure["category"] == "OBJECT_NOT_FOUND"
    assert failure["message"] == "row 3: no contacts record with email 'nobody@example.org'"
    reads = sum(n for route, n in requests_by_route(sim).items() if route.endswith("/batch/read"))
    assert reads == 1  # the window's emails in one batch read


def test_associating_by_a_property_contacts_cannot_be_looked_up_by_fails_before_any_association(sim):
    from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsAssociateOperator

    contact = next(iter(sim.store.iter_records("contacts")))
    appointment = next(r.id for r in sim.store.appointments())
    with pytest.raises(HubSpotInputError, match=r"^to_object_id_property 'emial': contacts records cannot be looked"):
        HubSpotAppointmentsAssociateOperator(
            task_id="associate",
            records=[{"appointment_id": appointment, "patient_email": contact.properties["email"]}],
            to_object_type="contacts", to_object_id_column="patient_email", to_object_id_property="emial",
            checkpoint_path=None).execute({"ti": _TI()})
    assert not sim.store.associations_of("appointments", appointment).get("contacts")
