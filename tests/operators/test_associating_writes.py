"""Create and upsert that associate each row (``association_columns``), by id or by a natural key."""

from __future__ import annotations

import pandas as pd
import pytest

from airflow_provider_appointments.api.results import RecordOutcome
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.operators.appointments import (
    HubSpotAppointmentsBatchCreateOperator,
    HubSpotAppointmentsUpsertOperator,
)
from airflow_provider_appointments.operators.linking import HeldJournal
from tests.operators.test_operators import _TI


@pytest.fixture
def sim(hubspot_simulator_factory, monkeypatch):
    simulator = hubspot_simulator_factory(seed_appointments=5, latency_ms=0)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", simulator.airflow_connection_json())
    return simulator


def _by_key(sim) -> dict[str, str]:
    return {record.properties.get("external_appointment_id"): record.id for record in sim.store.appointments()}


def _bookings(emails: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({"external_appointment_id": [f"BOOK-{i}" for i in range(len(emails))],
                         "hs_appointment_name": [f"Visit {i}" for i in range(len(emails))],
                         "patient_email": emails})


def test_upsert_associates_each_row_by_email_and_refuses_an_unknown_email_before_writing(sim, tmp_path):
    contacts = list(sim.store.iter_records("contacts"))[:2]
    rows = _bookings([contacts[0].properties["email"].upper(), contacts[1].properties["email"], None,
                      "nobody@example.org"])
    summary = HubSpotAppointmentsUpsertOperator(
        task_id="upsert", records=rows, id_property="external_appointment_id",
        association_columns={"patient_email": "contacts"}, to_object_id_property="email",
        failures_path=str(tmp_path / "failures.parquet"), max_failed_records=1).execute({"ti": _TI()})
    assert (summary["succeeded"], summary["created"], summary["failed"]) == (3, 3, 1)
    ids = _by_key(sim)
    for key, contact in (("BOOK-0", contacts[0]), ("BOOK-1", contacts[1])):
        assert set(sim.store.associations_of("appointments", ids[key])["contacts"]) == {contact.id}
    assert not sim.store.associations_of("appointments", ids["BOOK-2"]).get("contacts")  # an empty cell: none
    assert "BOOK-3" not in ids  # refused before anything was written
    failure = pd.read_parquet(tmp_path / "failures.parquet").iloc[0]
    assert (failure["input_row"], failure["category"]) == (3, "OBJECT_NOT_FOUND")
    assert failure["message"] == "row 3: no contacts record with email 'nobody@example.org' (column patient_email)"


def test_an_upserted_row_whose_association_fails_is_reported_with_what_the_upsert_did(sim, tmp_path):
    contact = next(iter(sim.store.iter_records("contacts")))
    rows = pd.DataFrame({"external_appointment_id": ["A-1", "A-2"], "hs_appointment_name": ["One", "Two"],
                         "contact_id": [contact.id, "999999999"]})
    summary = HubSpotAppointmentsUpsertOperator(
        task_id="upsert", records=rows, id_property="external_appointment_id",
        association_columns={"contact_id": "contacts"}, failures_path=str(tmp_path / "failures.parquet"),
        max_failed_records=1).execute({"ti": _TI()})
    assert (summary["succeeded"], summary["failed"], summary["created"]) == (1, 1, 1)
    ids = _by_key(sim)
    assert set(sim.store.associations_of("appointments", ids["A-1"])["contacts"]) == {contact.id}
    failure = pd.read_parquet(tmp_path / "failures.parquet").iloc[0]
    assert failure["input_row"] == 1 and failure["category"] == "OBJECT_NOT_FOUND"
    assert failure["message"].startswith(f"A-2 was created as appointment {ids['A-2']}, but associating it failed "
                                         "(with contacts 999999999: ")
    assert "a re-run associates it" in failure["message"]


def test_create_associates_by_email_in_the_create_request(sim, tmp_path):
    contact = next(iter(sim.store.iter_records("contacts")))
    rows = _bookings([contact.properties["email"], "ghost@example.org"])
    summary = HubSpotAppointmentsBatchCreateOperator(
        task_id="create", records=rows, dedupe_property="external_appointment_id",
        association_columns={"patient_email": "contacts"}, to_object_id_property={"patient_email": "email"},
        failures_path=str(tmp_path / "failures.parquet"), max_failed_records=1).execute({"ti": _TI()})
    assert (summary["created"], summary["failed"]) == (1, 1)
    ids = _by_key(sim)
    assert set(sim.store.associations_of("appointments", ids["BOOK-0"])["contacts"]) == {contact.id}
    assert "BOOK-1" not in ids
    message = pd.read_parquet(tmp_path / "failures.parquet").iloc[0]["message"]
    assert message == "row 1: no contacts record with email 'ghost@example.org' (column patient_email)"
    creates = [route for route in sim.stats()["by_route"] if route.endswith("/associations/batch/create")]
    assert not creates  # the association travelled with the create


@pytest.mark.parametrize("arguments, message", [
    ({"association_columns": {"contact": "contacts"}, "skip_unchanged": True}, "skip_unchanged does not associate"),
    ({"association_columns": {"contact": "contacts"}, "to_object_id_property": {"email": "email"}},
     "to_object_id_property names 'email', which association_columns does not have"),
])
def test_association_arguments_that_cannot_work_are_refused_at_once(arguments, message):
    with pytest.raises(HubSpotInputError, match=message):
        HubSpotAppointmentsUpsertOperator(task_id="upsert", records=[], id_property="external_appointment_id",
                                          **arguments)


class _Journal:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list]] = []

    def sending(self, positions: list[int]) -> None:
        self.calls.append(("sending", positions))

    def settled(self, outcomes: list[RecordOutcome]) -> None:
        self.calls.append(("settled", [(o.index, o.succeeded) for o in outcomes]))


def test_an_upsert_answer_is_journaled_only_once_its_rows_are_associated():
    """Killed between the upsert and the association, the rows are in flight, so the retry sends them."""
    inner = _Journal()
    held = HeldJournal(inner)
    held.sending([0, 1])
    held.settled([RecordOutcome(0, "a", True), RecordOutcome(1, "b", True)])
    assert inner.calls == [("sending", [0, 1])]  # not settled yet: a kill now leaves both rows in flight
    held.release([RecordOutcome(0, "a", True), RecordOutcome(1, "b", False, category="OBJECT_NOT_FOUND")])
    assert inner.calls[-1] == ("settled", [(0, True), (1, False)])  # the final outcomes


@pytest.mark.parametrize("operator", [HubSpotAppointmentsUpsertOperator, HubSpotAppointmentsBatchCreateOperator])
def test_a_property_hubspot_cannot_look_contacts_up_by_fails_the_task_before_anything_is_written(sim, operator):
    contacts = list(sim.store.iter_records("contacts"))[:2]
    before = _by_key(sim)
    arguments = {"id_property": "external_appointment_id"} if operator is HubSpotAppointmentsUpsertOperator else {}
    with pytest.raises(HubSpotInputError) as raised:
        operator(task_id="write", records=_bookings([c.properties["email"] for c in contacts]),
                 association_columns={"patient_email": "contacts"}, to_object_id_property="emial",
                 checkpoint_path=None, **arguments).execute({"ti": _TI()})
    message = str(raised.value)
    assert message.startswith("to_object_id_property 'emial': contacts records cannot be looked up by it; "
                              "HubSpot answered VALIDATION_ERROR"), message
    assert "emial is not a unique property of contacts" in message
    assert _by_key(sim) == before  # not one row written, not one failed as "not found"
