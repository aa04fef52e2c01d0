"""Malformed input gets HubSpot's 400 (or the right 4xx), never a 500.

One case per class of input an OpenAPI fuzzer (schemathesis, driven by HubSpot's documents) made
the simulator answer 500 to: a value of the wrong JSON type anywhere in a body fails the whole
request with ``VALIDATION_ERROR`` "Invalid input JSON" naming where, as HubSpot's deserializer does.
"""

from __future__ import annotations

import pytest

from tests.simulator.test_simulator import assert_error, call, sim  # noqa: F401  (sim is a fixture)

OBJECTS = "/crm/objects/2026-03/appointments"
V3 = "/crm/v3/objects/appointments"
ASSOCIATIONS = "/crm/associations/2026-03/appointments/contacts"
SPEC = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 907}
APPOINTMENT, CONTACT = "100001", "9000001"


def raw_json(text: str) -> dict:
    return {"data": text.encode("utf-8", "surrogatepass"), "headers": {"Content-Type": "application/json"}}


INVALID_INPUT = [
    pytest.param("PATCH", f"{OBJECTS}/{APPOINTMENT}", {"json": [None, None]}, "the request body must be an object",
                 id="body-is-an-array"),
    pytest.param("POST", OBJECTS, {"json": "a string"}, "the request body must be an object", id="body-is-a-string"),
    pytest.param("POST", f"{OBJECTS}/batch/upsert", {"json": {"inputs": [[None, None]]}},
                 "inputs[0] must be an object, not an array", id="batch-input-is-an-array"),
    pytest.param("POST", f"{OBJECTS}/batch/create",
                 {"json": {"inputs": [{"properties": {"hs_appointment_name": "a"}, "objectWriteTraceId": ["t"]}]}},
                 "inputs[0].objectWriteTraceId must be a string, not an array", id="trace-id-is-a-list"),
    pytest.param("POST", f"{OBJECTS}/batch/update", {"json": {"inputs": [{"id": {}, "properties": {}}]}},
                 "inputs[0].id must be a string, not an object", id="batch-id-is-an-object"),
    pytest.param("POST", f"{OBJECTS}/gdpr-delete", {"json": {"objectId": APPOINTMENT, "idProperty": [[]]}},
                 "idProperty must be a string, not an array", id="id-property-is-a-list"),
    pytest.param("POST", f"{OBJECTS}/batch/read", {"json": {"inputs": [{"id": APPOINTMENT}], "idProperty": {}}},
                 "idProperty must be a string, not an object", id="batch-read-id-property-is-an-object"),
    pytest.param("POST", OBJECTS, {"json": {"properties": {"hs_appointment_name": ["x"]}}},
                 "properties.hs_appointment_name must be a string, not an array", id="property-value-is-a-list"),
    pytest.param("PATCH", f"{V3}/{APPOINTMENT}", {"json": {"properties": [["hs_appointment_name", "x"]]}},
                 "properties must be an object, not an array", id="properties-is-a-list"),
    pytest.param("POST", f"{OBJECTS}/batch/read",
                 {"json": {"inputs": [{"id": APPOINTMENT}], "propertiesWithHistory": 5}},
                 "propertiesWithHistory must be an array, not a number", id="property-names-not-an-array"),
    pytest.param("POST", f"{OBJECTS}/batch/read",
                 {"json": {"inputs": [{"id": APPOINTMENT}], "properties": [["hs_appointment_name"]]}},
                 "properties[0] must be a string, not an array", id="property-name-is-a-list"),
    pytest.param("POST", OBJECTS, {"json": {"properties": {"hs_appointment_name": "a"},
                                            "associations": [{"to": [None], "types": [SPEC]}]}},
                 "associations[0].to must be an object, not an array", id="create-association-to-is-a-list"),
    pytest.param("POST", f"{ASSOCIATIONS}/batch/create",
                 {"json": {"inputs": [{"from": {"id": APPOINTMENT}, "to": [None, None], "types": [SPEC]}]}},
                 "inputs[0].to must be an object, not an array", id="association-to-is-a-list"),
    pytest.param("POST", f"{ASSOCIATIONS}/batch/associate/default",
                 {"json": {"inputs": [{"from": True, "to": False}]}},
                 "inputs[0].from must be an object, not a boolean", id="association-from-is-a-boolean"),
    pytest.param("POST", f"{ASSOCIATIONS}/batch/create",
                 {"json": {"inputs": [{"from": {"id": {}}, "to": {"id": CONTACT}, "types": [SPEC]}]}},
                 "inputs[0].from.id must be a string, not an object", id="association-id-is-an-object"),
    pytest.param("POST", f"{ASSOCIATIONS}/batch/archive",
                 {"json": {"inputs": [{"from": {"id": APPOINTMENT}, "to": [None, None]}]}},
                 "inputs[0].to[0] must be an object, not null", id="association-archive-target-is-null"),
    pytest.param("POST", f"{ASSOCIATIONS}/batch/labels/archive",
                 {"json": {"inputs": [{"from": {"id": APPOINTMENT}, "to": {"id": CONTACT}, "types": {}}]}},
                 "inputs[0].types must be an array, not an object", id="association-types-is-an-object"),
    pytest.param("POST", f"{ASSOCIATIONS}/batch/create",
                 raw_json('{"inputs": [{"from": {"id": "100001"}, "to": {"id": "9000001"}, "types": '
                          '[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1e999}]}]}'),
                 "inputs[0].types[0].associationTypeId must be an integer", id="association-type-id-overflows"),
    pytest.param("PUT", f"{OBJECTS}/{APPOINTMENT}/associations/contacts/{CONTACT}", {"json": [None]},
                 "body[0] must be an object, not null", id="association-spec-is-null"),
    pytest.param("POST", OBJECTS, raw_json('{"properties": {"hs_appointment_name": NaN}}'),
                 "NaN is not a JSON value", id="json-nan-literal"),
    pytest.param("POST", OBJECTS, raw_json("[" * 100_000 + "]" * 100_000), "nested too deeply",
                 id="json-nested-too-deeply"),
    pytest.param("POST", OBJECTS, raw_json('{"properties": {"hs_duration": ' + "9" * 5000 + "}}"),
                 "too many digits", id="json-number-too-long"),
]


@pytest.mark.parametrize(("method", "path", "request_kwargs", "names"), INVALID_INPUT)
def test_malformed_input_is_a_validation_error(sim, method, path, request_kwargs, names):  # noqa: F811
    body = assert_error(call(sim, method, path, **request_kwargs), 400, "VALIDATION_ERROR")
    assert body["message"].startswith("Invalid input JSON") and names in body["message"], body["message"]


def test_malformed_batch_changes_nothing(sim):  # noqa: F811
    """The whole batch is checked before any input is applied, as HubSpot deserializes it first."""
    linked = {"inputs": [{"from": {"id": APPOINTMENT}, "to": {"id": CONTACT}}]}
    assert call(sim, "POST", f"{ASSOCIATIONS}/batch/associate/default", json=linked).status_code == 200
    archive = {"inputs": [{"from": {"id": APPOINTMENT}, "to": [{"id": CONTACT}]},
                          {"from": {"id": APPOINTMENT}, "to": [7]}]}
    assert_error(call(sim, "POST", f"{ASSOCIATIONS}/batch/archive", json=archive), 400, "VALIDATION_ERROR")
    still = call(sim, "GET", f"{OBJECTS}/{APPOINTMENT}/associations/contacts").json()["results"]
    assert [item["toObjectId"] for item in still] == [CONTACT]


@pytest.mark.parametrize("raw_id", ["²", "١٢", "99999999999999999999999999"])
def test_ids_that_are_not_ascii_longs_are_not_found(sim, raw_id):  # noqa: F811
    """str.isdigit() accepts superscripts and other scripts' digits; HubSpot's ids are ASCII longs."""
    assert_error(call(sim, "GET", f"{OBJECTS}/{raw_id}"), 404, "OBJECT_NOT_FOUND")
    assert_error(call(sim, "GET", f"{OBJECTS}/{raw_id}/associations/contacts"), 404, "OBJECT_NOT_FOUND")
    assert_error(call(sim, "GET", OBJECTS, params={"limit": raw_id}), 400, "VALIDATION_ERROR")
    default = call(sim, "POST", f"{ASSOCIATIONS}/batch/associate/default",
                   json={"inputs": [{"from": {"id": raw_id}, "to": {"id": CONTACT}}]})
    assert default.status_code == 200 and default.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    read = call(sim, "POST", f"{OBJECTS}/batch/read", json={"inputs": [{"id": raw_id}]})
    assert read.status_code == 207 and read.json()["errors"][0]["context"]["ids"] == [raw_id]


def test_lone_surrogate_is_stored_and_echoed_as_json(sim):  # noqa: F811
    """A lone UTF-16 surrogate cannot be encoded as UTF-8: the answer keeps it as a JSON escape."""
    created = call(sim, "POST", OBJECTS, **raw_json('{"properties": {"hs_appointment_name": "a\\ud800b"}}'))
    assert created.status_code == 201, created.text
    assert created.json()["properties"]["hs_appointment_name"] == "a\ud800b"


def test_non_ascii_client_secret_is_a_bad_client_secret(sim):  # noqa: F811
    form = {"grant_type": "refresh_token", "client_id": "simulator-client-id", "client_secret": "sécret",
            "refresh_token": "simulator-refresh-token"}
    answer = call(sim, "POST", "/oauth/v1/token", data=form)
    assert answer.status_code == 400 and answer.json()["status"] == "BAD_CLIENT_SECRET"
