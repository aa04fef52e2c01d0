"""The simulator's properties API over real HTTP: creating a property, and unique values it enforces."""

from __future__ import annotations

import pytest

from tests.simulator.test_simulator import assert_error, call

PATH = "/crm/properties/2026-03/appointments"
KEY = {"name": "airflow_idempotency_key", "label": "Airflow idempotency key", "type": "string",
       "fieldType": "text", "groupName": "appointmentinformation", "hasUniqueValue": True}


@pytest.fixture
def sim(hubspot_simulator_factory):
    return hubspot_simulator_factory(seed_appointments=20, token_scopes={
        "pat-no-schemas": ["crm.objects.appointments.read", "crm.objects.appointments.write",
                           "crm.schemas.appointments.read"]})


def test_a_created_property_is_listed_read_and_enforced_as_unique(sim):
    created = call(sim, "POST", PATH, json=KEY)
    assert created.status_code == 201, created.text
    assert created.json()["hasUniqueValue"] is True and created.json()["hubspotDefined"] is False
    assert call(sim, "GET", f"{PATH}/airflow_idempotency_key").json()["name"] == "airflow_idempotency_key"
    listed = call(sim, "GET", "/crm/v3/properties/appointments").json()["results"]
    assert "airflow_idempotency_key" in {p["name"] for p in listed}
    objects = "/crm/objects/2026-03/appointments"
    first = call(sim, "POST", objects,
                 json={"properties": {"hs_appointment_name": "a", "airflow_idempotency_key": "K-1"}})
    assert first.status_code == 201
    again = call(sim, "POST", objects,
                 json={"properties": {"hs_appointment_name": "b", "airflow_idempotency_key": "K-1"}})
    assert_error(again, 409, "CONFLICT")
    assert first.json()["id"] in again.json()["message"]
    read = call(sim, "POST", f"{objects}/batch/read",
                json={"inputs": [{"id": "K-1"}], "idProperty": "airflow_idempotency_key"})
    assert read.json()["results"][0]["id"] == first.json()["id"]


def test_a_property_name_is_taken_once(sim):
    assert call(sim, "POST", PATH, json=KEY).status_code == 201
    assert_error(call(sim, "POST", PATH, json=KEY), 409, "CONFLICT")
    assert_error(call(sim, "POST", PATH, json={**KEY, "name": "hs_appointment_name"}), 409, "CONFLICT")


@pytest.mark.parametrize("body", [
    [KEY],
    {**KEY, "name": ""},
    {**KEY, "name": "Has Spaces"},
    {**KEY, "type": "bool", "fieldType": "text"},
    {**KEY, "type": "enumeration", "fieldType": "select", "hasUniqueValue": False},
    {**KEY, "type": "date", "fieldType": "date"},
    {**KEY, "hasUniqueValue": "yes"},
    {k: v for k, v in KEY.items() if k != "groupName"},
])
def test_invalid_definitions_are_refused_with_400(sim, body):
    assert_error(call(sim, "POST", PATH, json=body), 400, "VALIDATION_ERROR")


def test_creating_a_property_needs_the_schemas_write_scope(sim):
    denied = call(sim, "POST", PATH, json=KEY, headers={"Authorization": "Bearer pat-no-schemas"})
    body = assert_error(denied, 403, "MISSING_SCOPES")
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.schemas.appointments.write"]


def test_reset_forgets_created_properties(sim):
    assert call(sim, "POST", PATH, json=KEY).status_code == 201
    sim.reset()
    assert_error(call(sim, "GET", f"{PATH}/airflow_idempotency_key"), 404, "OBJECT_NOT_FOUND")
