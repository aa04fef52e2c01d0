"""The simulator over real HTTP: endpoints, HubSpot's shapes, error paths, limits and faults."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from airflow_provider_appointments.simulator import FaultConfig, Simulator, SimulatorConfig, SimulatorProcess

OBJECT_KEYS = {"id", "properties", "createdAt", "updatedAt", "archived"}
ERROR_KEYS = {"status", "message", "correlationId", "category"}
BATCH_KEYS = {"status", "results", "startedAt", "completedAt"}


@pytest.fixture
def sim(hubspot_simulator_factory):
    return hubspot_simulator_factory(seed_appointments=250)


def call(sim, method, path, **kwargs):
    headers = {"Authorization": f"Bearer {sim.token}", **kwargs.pop("headers", {})}
    return requests.request(method, sim.url + path, headers=headers, timeout=30, **kwargs)


def assert_error(response, status, category):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= ERROR_KEYS and body["category"] == category
    assert response.headers["X-HubSpot-Correlation-Id"] == body["correlationId"]
    return body


@pytest.mark.parametrize("prefix", ["/crm/objects/2026-03/appointments", "/crm/v3/objects/appointments",
                                    "/crm/objects/2026-03/0-421", "/crm/v3/objects/0-421"])
def test_list_pages_through_every_record_once(sim, prefix):
    seen, after, pages = [], None, 0
    while True:
        params = {"limit": 100, "properties": "hs_appointment_name,hs_appointment_status"}
        if after:
            params["after"] = after
        body = call(sim, "GET", prefix, params=params).json()
        pages += 1
        for record in body["results"]:
            assert set(record) >= OBJECT_KEYS
            defaults = {"hs_object_id", "hs_createdate", "hs_lastmodifieddate", "hs_appointment_name"}
            assert defaults <= set(record["properties"])
        seen += [record["id"] for record in body["results"]]
        if "paging" not in body:
            break
        assert body["paging"]["next"]["link"].startswith(sim.url)
        after = body["paging"]["next"]["after"]
    assert pages == 3 and len(seen) == len(set(seen)) == 250


def test_limit_caps_and_defaults(sim):
    assert len(call(sim, "GET", "/crm/objects/2026-03/appointments").json()["results"]) == 10
    assert len(call(sim, "GET", "/crm/objects/2026-03/appointments", params={"limit": 500}).json()["results"]) == 100
    history = call(sim, "GET", "/crm/objects/2026-03/appointments",
                   params={"limit": 100, "propertiesWithHistory": "hs_appointment_name"}).json()["results"]
    assert len(history) == 50 and history[0]["propertiesWithHistory"]["hs_appointment_name"][0]["sourceType"]


def test_create_read_update_archive_restore_and_gdpr_delete(sim):
    created = call(sim, "POST", "/crm/objects/2026-03/appointments", json={"properties": {
        "hs_appointment_name": "Checkup 🦷", "hs_appointment_start": "2026-06-01T09:00:00Z",
        "external_appointment_id": "X-1", "hs_appointment_date": "2026-06-01"}})
    assert created.status_code == 201
    record = created.json()
    assert record["properties"]["hs_appointment_start"] == "2026-06-01T09:00:00.000Z"
    path = f"/crm/objects/2026-03/appointments/{record['id']}"
    got = call(sim, "GET", path, params={"properties": "hs_appointment_name"}).json()
    assert got["properties"]["hs_appointment_name"] == "Checkup 🦷"
    by_key = call(sim, "GET", "/crm/objects/2026-03/appointments/X-1", params={"idProperty": "external_appointment_id"})
    assert by_key.json()["id"] == record["id"]
    patched = call(sim, "PATCH", path, json={"properties": {"hs_duration": "45"}})
    assert patched.status_code == 200 and patched.json()["properties"]["hs_duration"] == "45"
    history = call(sim, "GET", path, params={"propertiesWithHistory": "hs_duration"}).json()
    assert [h["value"] for h in history["propertiesWithHistory"]["hs_duration"]] == ["45"]
    assert call(sim, "DELETE", path).status_code == 204
    missing = assert_error(call(sim, "GET", path), 404, "OBJECT_NOT_FOUND")
    assert missing["message"] == "Object not found.  objectId are usually numeric."
    archived = call(sim, "GET", path, params={"archived": "true"}).json()
    assert archived["archived"] is True and archived["archivedAt"]
    listed = call(sim, "GET", "/crm/objects/2026-03/appointments", params={"archived": "true"}).json()["results"]
    assert [r["id"] for r in listed] == [record["id"]]
    # Re-creating with the archived record's unique value restores it (recycling bin).
    again = call(sim, "POST", "/crm/objects/2026-03/appointments",
                 json={"properties": {"hs_appointment_name": "Back", "external_appointment_id": "X-1"}})
    assert again.status_code == 201 and again.json()["id"] == record["id"] and again.json()["archived"] is False
    gdpr = call(sim, "POST", "/crm/objects/2026-03/appointments/gdpr-delete", json={"objectId": record["id"]})
    assert gdpr.status_code == 204
    assert_error(call(sim, "GET", path, params={"archived": "true"}), 404, "OBJECT_NOT_FOUND")


@pytest.mark.parametrize("properties, code", [
    ({"hs_appointment_name": "a", "nope": "1"}, "PROPERTY_DOESNT_EXIST"),
    ({"hs_appointment_name": "a", "hs_duration": "ten"}, "INVALID_INTEGER"),
    ({"hs_appointment_name": "a", "hs_appointment_start": "next tuesday"}, "INVALID_DATE"),
    ({"hs_appointment_name": "a", "hs_appointment_date": "2026-06-01T10:00:00Z"}, "INVALID_DATE"),
    ({"hs_appointment_name": "a", "hs_appointment_status": "MAYBE"}, "INVALID_OPTION"),
    ({"hs_appointment_name": "a", "hs_appointment_services": "LAB;SPA"}, "INVALID_OPTION"),
    ({"hs_appointment_name": "a", "hs_is_first_visit": "yes"}, "INVALID_BOOLEAN"),
    ({"hs_appointment_name": "a", "hs_object_id": "5"}, "READ_ONLY_VALUE"),
    ({"hs_appointment_name": "x" * 65_537}, "INVALID_STRING_LENGTH"),
    ({"hs_duration": "10"}, "REQUIRED_PROPERTY"),
])
def test_validation_errors_name_the_property(sim, properties, code):
    body = assert_error(call(sim, "POST", "/crm/objects/2026-03/appointments", json={"properties": properties}),
                        400, "VALIDATION_ERROR")
    assert body["errors"][0]["code"] == code and body["errors"][0]["context"]["propertyName"]


def test_malformed_json_conflict_and_oversize_batch(sim):
    bad = call(sim, "POST", "/crm/objects/2026-03/appointments", data=b"{not json",
               headers={"Content-Type": "application/json"})
    assert_error(bad, 400, "VALIDATION_ERROR")
    conflict = call(sim, "POST", "/crm/objects/2026-03/appointments",
                    json={"properties": {"hs_appointment_name": "dup", "external_appointment_id": "EXT-000001"}})
    assert_error(conflict, 409, "CONFLICT")
    oversize = {"inputs": [{"properties": {"hs_appointment_name": str(i)}} for i in range(101)]}
    assert_error(call(sim, "POST", "/crm/objects/2026-03/appointments/batch/create", json=oversize), 400,
                 "VALIDATION_ERROR")


def test_batch_create_multi_status_only_with_trace_ids(sim):
    inputs = [{"properties": {"hs_appointment_name": "ok"}},
              {"properties": {"hs_appointment_name": "bad", "hs_duration": "x"}}]
    before = sim.store.counts()["appointments"]["active"]
    assert_error(call(sim, "POST", "/crm/objects/2026-03/appointments/batch/create", json={"inputs": inputs}), 400,
                 "VALIDATION_ERROR")
    assert sim.store.counts()["appointments"]["active"] == before  # nothing created
    traced = [{**item, "objectWriteTraceId": f"t{i}"} for i, item in enumerate(inputs)]
    answer = call(sim, "POST", "/crm/objects/2026-03/appointments/batch/create", json={"inputs": traced})
    assert answer.status_code == 207
    body = answer.json()
    assert set(body) >= BATCH_KEYS and body["numErrors"] == 1
    assert [r["objectWriteTraceId"] for r in body["results"]] == ["t0"]
    assert body["errors"][0]["context"]["objectWriteTraceId"] == ["t1"]
    ok = call(sim, "POST", "/crm/objects/2026-03/appointments/batch/create", json={"inputs": traced[:1]})
    assert ok.status_code == 201 and "errors" not in ok.json()


def test_batch_read_update_upsert_archive(sim):
    read = call(sim, "POST", "/crm/objects/2026-03/appointments/batch/read",
                json={"inputs": [{"id": "100001"}, {"id": "1"}], "properties": ["hs_appointment_name"]})
    assert read.status_code == 207 and read.json()["errors"][0]["context"]["ids"] == ["1"]
    assert_error(call(sim, "POST", "/crm/objects/2026-03/appointments/batch/read",
                      json={"inputs": [{"id": "100001"}, {"id": "100001"}]}), 400, "VALIDATION_ERROR")
    update = call(sim, "POST", "/crm/objects/2026-03/appointments/batch/update", json={"inputs": [
        {"id": "100001", "properties": {"hs_duration": "20"}}, {"id": "42", "properties": {"hs_duration": "20"}},
        {"id": "100002", "properties": {"hs_duration": "twenty"}}]})
    body = update.json()
    assert update.status_code == 207 and len(body["results"]) == 1
    assert sorted(e["context"]["ids"][0] for e in body["errors"]) == ["100002", "42"]
    upsert = call(sim, "POST", "/crm/objects/2026-03/appointments/batch/upsert", json={"inputs": [
        {"id": "EXT-000003", "idProperty": "external_appointment_id", "properties": {"hs_duration": "15"}},
        {"id": "NEW-1", "idProperty": "external_appointment_id", "properties": {"hs_appointment_name": "new"}}]})
    assert upsert.status_code == 200
    assert sorted((r["properties"]["external_appointment_id"], r["new"]) for r in upsert.json()["results"]) == \
        [("EXT-000003", False), ("NEW-1", True)]
    assert_error(call(sim, "POST", "/crm/objects/2026-03/appointments/batch/upsert", json={"inputs": [
        {"id": "a", "idProperty": "hs_appointment_name", "properties": {}}]}), 400, "VALIDATION_ERROR")
    assert_error(call(sim, "POST", "/crm/objects/2026-03/appointments/batch/upsert", json={"inputs": [
        {"id": "D", "idProperty": "external_appointment_id", "properties": {}}] * 2}), 400, "VALIDATION_ERROR")
    archive = call(sim, "POST", "/crm/objects/2026-03/appointments/batch/archive",
                   json={"inputs": [{"id": "100004"}, {"id": "7"}]})
    assert archive.status_code == 204 and sim.store.get("appointments", 100004).archived


def test_search_filters_sorts_total_and_cap(sim):
    def search(body):
        return call(sim, "POST", "/crm/objects/2026-03/appointments/search", json=body)

    def one_filter(**spec):
        return {"filterGroups": [{"filters": [spec]}]}

    status = search({**one_filter(propertyName="hs_appointment_status", operator="EQ", value="CANCELED"),
                     "limit": 200, "properties": ["hs_appointment_status"]}).json()
    expected = [r for r in sim.store.appointments(False) if r.properties.get("hs_appointment_status") == "CANCELED"]
    assert status["total"] == len(expected)
    assert {r["properties"]["hs_appointment_status"] for r in status["results"]} == {"CANCELED"}
    for operator, check in [("GT", lambda d: d > 30), ("GTE", lambda d: d >= 30), ("LT", lambda d: d < 30),
                            ("LTE", lambda d: d <= 30), ("NEQ", lambda d: d != 30)]:
        body = search({"filters": [{"propertyName": "hs_duration", "operator": operator, "value": "30"}], "limit": 200,
                       "properties": ["hs_duration"]}).json()
        assert body["total"] == sum(1 for r in sim.store.appointments(False)
                                    if check(float(r.properties["hs_duration"])))
    between = search({**one_filter(propertyName="hs_duration", operator="BETWEEN", value="30", highValue="45"),
                      "limit": 200, "properties": ["hs_duration"]}).json()
    assert {r["properties"]["hs_duration"] for r in between["results"]} <= {"30", "45"}
    inside = search({**one_filter(propertyName="hs_appointment_type", operator="IN", values=["VIDEO", "PHONE"]),
                     "limit": 1}).json()
    assert inside["total"] == sum(1 for r in sim.store.appointments(False)
                                  if r.properties["hs_appointment_type"] in ("VIDEO", "PHONE"))
    with_notes = sum(1 for r in sim.store.appointments(False) if r.properties.get("hs_appointment_notes"))
    has_notes = search(one_filter(propertyName="hs_appointment_notes", operator="HAS_PROPERTY")).json()
    assert has_notes["total"] == with_notes
    no_notes = search(one_filter(propertyName="hs_appointment_notes", operator="NOT_HAS_PROPERTY")).json()
    assert no_notes["total"] == 250 - with_notes
    ordered = search({"sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}], "limit": 50,
                      "properties": ["hs_lastmodifieddate"]}).json()["results"]
    stamps = [r["properties"]["hs_lastmodifieddate"] for r in ordered]
    assert stamps == sorted(stamps, reverse=True)
    page2 = search({"limit": 100, "after": "100"}).json()
    assert page2["paging"]["next"]["after"] == "200"
    assert_error(search({"limit": 200, "after": "9900"}), 400, "VALIDATION_ERROR")
    assert_error(search({"limit": 201}), 400, "VALIDATION_ERROR")
    assert_error(search({"filterGroups": [{"filters": []}] * 6}), 400, "VALIDATION_ERROR")


def test_associations_in_every_form(sim):
    contact = str(next(iter(sim.store.iter_records("contacts"))).id)
    base = "/crm/objects/2026-03/appointments/100006/associations"
    typed = call(sim, "PUT", f"{base}/contacts/{contact}/906")
    assert typed.status_code == 200 and typed.json()["associations"]["contacts"]["results"]
    labelled = call(sim, "PUT", f"{base}/contacts/{contact}",
                    json=[{"associationCategory": "USER_DEFINED", "associationTypeId": 1001}])
    assert labelled.status_code == 201 and labelled.json()["labels"] == ["Primary patient"]
    default = call(sim, "PUT", f"/crm/objects/2026-03/appointments/100007/associations/default/contacts/{contact}")
    assert default.status_code == 200 and default.json()["results"][0]["associationSpec"]["associationTypeId"] == 906
    listed = call(sim, "GET", f"{base}/contacts").json()["results"]
    assert any(item["toObjectId"] == contact for item in listed)
    assert_error(call(sim, "PUT", f"{base}/contacts/1/906"), 404, "OBJECT_NOT_FOUND")
    assert_error(call(sim, "PUT", f"{base}/contacts/{contact}/12345"), 400, "VALIDATION_ERROR")
    labels = call(sim, "GET", "/crm/associations/2026-03/appointments/contacts/labels").json()["results"]
    assert {"category": "HUBSPOT_DEFINED", "typeId": 906, "label": None} in labels
    patient = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 906}]
    batch = call(sim, "POST", "/crm/associations/2026-03/appointments/contacts/batch/create", json={"inputs": [
        {"from": {"id": "100008"}, "to": {"id": contact}, "types": patient},
        {"from": {"id": "100008"}, "to": {"id": "424242"}, "types": patient}]})
    assert batch.status_code == 207 and batch.json()["errors"][0]["context"]["toObjectId"] == ["424242"]
    read = call(sim, "GET", "/crm/objects/2026-03/appointments/100008", params={"associations": "contacts"}).json()
    assert contact in [item["id"] for item in read["associations"]["contacts"]["results"]]
    created = call(sim, "POST", "/crm/objects/2026-03/appointments", json={"properties": {"hs_appointment_name": "a"},
                   "associations": [{"to": {"id": int(contact)}, "types": patient}]})
    assert created.status_code == 201
    bad_target = call(sim, "POST", "/crm/objects/2026-03/appointments", json={
        "properties": {"hs_appointment_name": "a"}, "associations": [{"to": {"id": "5"}, "types": patient}]})
    assert_error(bad_target, 400, "VALIDATION_ERROR")
    contacts = call(sim, "GET", "/crm/objects/2026-03/contacts", params={"limit": 5}).json()
    assert len(contacts["results"]) == 5
    assert call(sim, "GET", f"/crm/objects/2026-03/contacts/{contact}").status_code == 200
    assert call(sim, "DELETE", f"{base}/contacts/{contact}").status_code == 204


def test_properties_endpoint_lists_types_and_a_unique_property(sim):
    results = call(sim, "GET", "/crm/properties/2026-03/appointments").json()["results"]
    by_name = {p["name"]: p for p in results}
    assert {"name", "label", "type", "fieldType", "groupName", "description", "options"} <= set(by_name["hs_duration"])
    assert by_name["external_appointment_id"]["hasUniqueValue"] is True
    assert {p["type"] for p in results} >= {"string", "number", "datetime", "date", "enumeration", "bool"}
    assert call(sim, "GET", "/crm/properties/2026-03/appointments/hs_duration").json()["type"] == "number"


def test_authentication_and_scopes(hubspot_simulator_factory):
    sim = hubspot_simulator_factory(token_scopes={"pat-readonly": ["crm.objects.appointments.read"]},
                                    oauth_token_ttl_s=1)
    missing = requests.get(sim.url + "/crm/objects/2026-03/appointments", timeout=10)
    assert_error(missing, 401, "INVALID_AUTHENTICATION")
    assert missing.headers["x-hubspot-auth-failure"] == "401 Unauthorized"
    readonly = {"Authorization": "Bearer pat-readonly"}
    assert requests.get(sim.url + "/crm/objects/2026-03/appointments", headers=readonly, timeout=10).status_code == 200
    denied = requests.post(sim.url + "/crm/objects/2026-03/appointments", headers=readonly, timeout=10,
                           json={"properties": {"hs_appointment_name": "a"}})
    body = assert_error(denied, 403, "MISSING_SCOPES")
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.appointments.write"]
    form = {"grant_type": "refresh_token", "client_id": "simulator-client-id",
            "client_secret": "simulator-client-secret", "refresh_token": "simulator-refresh-token"}
    for path in ("/oauth/2026-03/token", "/oauth/v3/token", "/oauth/v1/token"):
        token = requests.post(sim.url + path, data=form, timeout=10).json()
        assert {"access_token", "refresh_token", "expires_in", "token_type", "token_use"} <= set(token)
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    listed = requests.get(sim.url + "/crm/objects/2026-03/appointments", headers=headers, timeout=10)
    assert listed.status_code == 200
    again = requests.get(sim.url + "/crm/objects/2026-03/appointments", headers=headers, timeout=10)
    assert "X-HubSpot-RateLimit-Daily" not in again.headers
    time.sleep(1.1)
    expired = requests.get(sim.url + "/crm/objects/2026-03/appointments", headers=headers, timeout=10)
    assert_error(expired, 401, "EXPIRED_AUTHENTICATION")
    sim.revoke_refresh_tokens()
    revoked = requests.post(sim.url + "/oauth/2026-03/token", data=form, timeout=10)
    assert revoked.status_code == 400 and revoked.json()["status"] == "BAD_REFRESH_TOKEN"


def test_rate_limits_headers_429_and_separate_search_budget(hubspot_simulator_factory):
    sim = hubspot_simulator_factory(requests_per_10s=5, search_requests_per_second=2, daily_limit=1000)
    statuses = []
    for _ in range(6):
        response = call(sim, "GET", "/crm/objects/2026-03/appointments", params={"limit": 1})
        statuses.append(response.status_code)
    assert statuses == [200] * 5 + [429]
    assert response.json()["policyName"] == "TEN_SECONDLY_ROLLING" and response.json()["errorType"] == "RATE_LIMIT"
    ok = call(sim, "POST", "/crm/objects/2026-03/appointments/search", json={})
    assert ok.status_code == 200 and "X-HubSpot-RateLimit-Max" not in ok.headers  # search has its own budget
    call(sim, "POST", "/crm/objects/2026-03/appointments/search", json={})
    limited = call(sim, "POST", "/crm/objects/2026-03/appointments/search", json={})
    assert limited.status_code == 429 and limited.json()["message"] == "You have reached your secondly limit."
    sim.configure(requests_per_10s=None)
    headers = call(sim, "GET", "/crm/objects/2026-03/appointments").headers
    assert headers["X-HubSpot-RateLimit-Daily"] == "1000" and "X-HubSpot-RateLimit-Max" not in headers
    assert sim.stats()["rate_limited"] == 2


def test_faults_are_seen_by_clients(hubspot_simulator_factory):
    sim = hubspot_simulator_factory()
    create = {"properties": {"hs_appointment_name": "fault"}}
    for kind, check in [
        ("502", lambda r: r.status_code == 502),
        ("html", lambda r: r.status_code == 502 and r.headers["content-type"].startswith("text/html")),
        ("truncated", lambda r: r.status_code == 201 and not _json_ok(r)),
    ]:
        sim.configure(faults=FaultConfig(rate=1.0, kinds=(kind,)))
        assert check(call(sim, "POST", "/crm/objects/2026-03/appointments", json=create)), kind
    before = sim.store.counts()["appointments"]["active"]
    sim.configure(faults=FaultConfig(rate=1.0, kinds=("reset",)))
    with pytest.raises(requests.ConnectionError):
        call(sim, "POST", "/crm/objects/2026-03/appointments", json=create)
    assert sim.store.counts()["appointments"]["active"] == before  # dropped before applying
    sim.configure(faults=FaultConfig(rate=1.0, kinds=("reset_after_apply",)))
    with pytest.raises(requests.ConnectionError):
        call(sim, "POST", "/crm/objects/2026-03/appointments", json=create)
    assert sim.store.counts()["appointments"]["active"] == before + 1  # applied, answer lost
    sim.configure(faults=FaultConfig(rate=1.0, kinds=("timeout",), timeout_s=1.0))
    with pytest.raises(requests.ReadTimeout):
        requests.get(sim.url + "/crm/objects/2026-03/appointments", headers={"Authorization": f"Bearer {sim.token}"},
                     timeout=0.3)
    sim.configure(faults=FaultConfig())
    sim.burst_429(2)
    assert [call(sim, "GET", "/crm/objects/2026-03/appointments").status_code for _ in range(3)] == [429, 429, 200]
    assert sim.stats()["faults_injected"]["429"] == 2


def _json_ok(response):
    try:
        response.json()
        return True
    except ValueError:
        return False


def test_cli_and_process_serve_a_page(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "airflow_provider_appointments.simulator", "--port", "0",
                                "--seed-appointments", "30", "--token", "pat-cli"], stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().split()[-1]
        page = requests.get(url + "/crm/objects/2026-03/appointments", headers={"Authorization": "Bearer pat-cli"},
                            timeout=10)
        assert page.status_code == 200 and len(page.json()["results"]) == 10
    finally:
        process.terminate()
        process.wait(10)
    refused = subprocess.run([sys.executable, "-m", "airflow_provider_appointments.simulator", "--host", "0.0.0.0"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "loopback" in refused.stderr
    with SimulatorProcess(SimulatorConfig(seed_appointments=20, requests_per_10s=None)) as child:
        assert requests.get(child.url + "/crm/objects/2026-03/appointments", timeout=10,
                            headers={"Authorization": f"Bearer {child.token}"}).status_code == 200
        child.configure(latency_ms=5)
        assert child.stats()["requests"] == 1 and child.state()["counts"]["appointments"]["active"] == 20


def test_seed_is_deterministic_and_a_million_starts_at_once():
    first = Simulator(SimulatorConfig(seed=3, seed_appointments=50))
    second = Simulator(SimulatorConfig(seed=3, seed_appointments=50))
    assert first.store.get("appointments", 100010).properties == second.store.get("appointments", 100010).properties
    started = time.monotonic()
    big = Simulator(SimulatorConfig(seed_appointments=1_000_000))
    assert big.store.get("appointments", 1_100_000).properties["external_appointment_id"] == "EXT-1000000"
    assert time.monotonic() - started < 20  # generated on demand: materialising a million would take minutes
