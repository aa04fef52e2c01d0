"""Batch create runs exactly the single create's checks: same refusals, same messages, same acceptances."""

from __future__ import annotations

import pytest
import requests

OBJECTS = "/crm/objects/2026-03/appointments"
NAME = {"hs_appointment_name": "parity"}
CONTACT_LINK = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 906}

INPUTS = [
    pytest.param({"properties": {**NAME, "no_such_property": "x"}}, id="unknown-property"),
    pytest.param({"properties": {"hs_appointment_status": "SCHEDULED"}}, id="required-missing"),
    pytest.param({"properties": {**NAME, "hs_object_id": "5"}}, id="read-only"),
    pytest.param({"properties": {**NAME, "hs_appointment_status": "NOPE"}}, id="bad-option"),
    pytest.param({"properties": {**NAME, "hs_duration": "x"}}, id="bad-number"),
    pytest.param({"properties": {**NAME, "external_appointment_id": "EXT-000001"}}, id="taken-unique-value"),
    pytest.param({"properties": NAME, "associations": [{"to": {"id": "999999999"}, "types": [CONTACT_LINK]}]},
                 id="missing-association-target"),
    pytest.param({"properties": NAME, "associations": [{"to": {"id": "1"}, "types": [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 123456}]}]}, id="unknown-association-type"),
    pytest.param({"properties": {**NAME, "external_appointment_id": "PARITY-1"}}, id="valid"),
]


@pytest.fixture
def sim(hubspot_simulator_factory):
    return hubspot_simulator_factory(seed_appointments=20)


def post(sim, path, body):
    return requests.post(sim.url + path, json=body, headers={"Authorization": f"Bearer {sim.token}"}, timeout=30)


def outcome(response):
    """(status, category, message) of a refusal, or the created record's properties."""
    body = response.json()
    if response.status_code >= 400:
        return response.status_code, body["category"], body["message"]
    record = body if "properties" in body else body["results"][0]
    return {name: value for name, value in record["properties"].items()
            if name not in ("hs_object_id", "hs_createdate", "hs_lastmodifieddate")}


@pytest.mark.parametrize("item", INPUTS)
def test_batch_create_refuses_and_accepts_what_single_create_does(sim, item):
    sim.reset()
    single = outcome(post(sim, OBJECTS, item))
    sim.reset()
    whole_batch = outcome(post(sim, f"{OBJECTS}/batch/create", {"inputs": [item]}))
    sim.reset()
    traced = post(sim, f"{OBJECTS}/batch/create", {"inputs": [{**item, "objectWriteTraceId": "t0"}]})
    assert whole_batch == single, single
    if isinstance(single, tuple):
        assert traced.status_code == 207
        error = traced.json()["errors"][0]
        assert (error["category"], error["message"]) == single[1:]
        assert error["context"]["objectWriteTraceId"] == ["t0"]
    else:
        assert traced.status_code == 201 and outcome(traced) == single
