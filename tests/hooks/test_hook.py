"""The hook against the simulator over real HTTP: connection forms, paging, windowing past the
10,000 cap, batch results with partial failures, 429 storms, OAuth, secret masking."""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider_appointments.errors import (
    HubSpotAuthenticationError,
    HubSpotInputError,
    HubSpotNotFoundError,
)
from airflow_provider_appointments.hooks.hubspot import HubSpotAppointmentsHook
from airflow_provider_appointments.transport.retry import RetryPolicy

FAST_RETRY = RetryPolicy(backoff_base_s=0.01, backoff_cap_s=0.05)


def hook_for(sim, monkeypatch, *, oauth=False, **extra) -> HubSpotAppointmentsHook:
    value = sim.airflow_oauth_connection_json(**extra) if oauth else sim.airflow_connection_json(**extra)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", value)
    return HubSpotAppointmentsHook(retry_policy=FAST_RETRY)


def client_for(sim, monkeypatch, *, oauth=False, **extra):
    """The client a hook hands out (``hook.get_conn()``): what the endpoint tests call."""
    return hook_for(sim, monkeypatch, oauth=oauth, **extra).get_conn()


def test_connection_from_uri_and_json_and_test_connection(hubspot_simulator, monkeypatch):
    sim = hubspot_simulator
    port = sim.url.rsplit(":", 1)[1]
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_URI", f"hubspot://:{sim.token}@127.0.0.1:{port}/?api_version=v3")
    uri_hook = HubSpotAppointmentsHook("hubspot_uri")
    assert uri_hook.get_conn().api_version == "v3" and uri_hook.get_conn().get_appointment("100001")["id"] == "100001"
    json_hook = hook_for(sim, monkeypatch)
    assert json_hook.test_connection() == (True, f"connected to {sim.url} (API 2026-03)")
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_BAD",
                       json.dumps({"conn_type": "hubspot", "host": sim.url, "password": "pat-wrong"}))
    ok, reason = HubSpotAppointmentsHook("hubspot_bad").test_connection()
    assert not ok and "rejected the credentials" in reason
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DOWN",
                       json.dumps({"conn_type": "hubspot", "host": "http://127.0.0.1:9", "password": "x"}))
    ok, reason = HubSpotAppointmentsHook("hubspot_down").test_connection()
    assert not ok and "cannot reach" in reason


def test_https_is_required_except_for_loopback(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT",
                       json.dumps({"conn_type": "hubspot", "host": "http://api.hubapi.com", "password": "x"}))
    with pytest.raises(ValueError, match="HTTPS"):
        HubSpotAppointmentsHook().get_conn()


def test_list_walks_every_page_and_search_windows_past_the_cap(hubspot_simulator_factory, monkeypatch):
    sim = hubspot_simulator_factory(seed_appointments=10_450)
    hook = client_for(sim, monkeypatch)
    pages = list(hook.iter_appointments(properties=["hs_appointment_name"]))
    ids = [record["id"] for page in pages for record in page]
    assert len(pages) == 105 and len(ids) == len(set(ids)) == 10_450
    # Ties at the window boundary: give 300 records the same hs_lastmodifieddate.
    tie = sim.store.now_ms() - 10_000
    for record_id in range(100_001 + 9_850, 100_001 + 10_150):
        record = sim.store.materialize(sim.store.get("appointments", record_id))
        record.updated_ms = tie
    pages = hook.iter_modified(0, None, properties=["hs_appointment_name"])
    found = [record["id"] for page in pages for record in page]
    assert len(found) == len(set(found)) == 10_450
    requests_used = sim.stats()["by_route"]["POST /crm/objects/{version}/{object_type}/search"]
    assert requests_used >= 53  # more than one query: the cap was hit and the window moved
    window = [r["id"] for p in hook.iter_modified(tie, tie + 1) for r in p]
    assert len(window) == 300


def test_long_property_selections_are_split_and_merged(hubspot_simulator, monkeypatch):
    hook = client_for(hubspot_simulator, monkeypatch)
    names = ["hs_appointment_name", "hs_duration"] + [f"unknown_property_{i:04d}" for i in range(400)]
    record = hook.get_appointment("100001", properties=names)
    assert {"hs_appointment_name", "hs_duration"} <= set(record["properties"])
    pages = list(hook.iter_appointments(properties=names, page_size=20))
    assert sum(map(len, pages)) == 50 and all("hs_duration" in r["properties"] for p in pages for r in p)


def test_batch_methods_map_partial_failures_to_inputs(hubspot_simulator, monkeypatch):
    sim = hubspot_simulator
    hook = client_for(sim, monkeypatch)
    creates = [{"properties": {"hs_appointment_name": f"n{i}", "hs_duration": "x" if i in (5, 150) else "10"}}
               for i in range(205)]
    created = hook.batch_create(creates)
    assert (created.succeeded, created.failed, created.batches) == (203, 2, 3)
    assert [o.index for o in created.failures()] == [5, 150] and created.failures()[0].category == "VALIDATION_ERROR"
    assert all(o.hubspot_id for o in created.outcomes if o.succeeded)

    read = hook.batch_read(["100001", "1", "100002"], properties=["hs_duration"])
    assert [o.succeeded for o in read.outcomes] == [True, False, True]
    assert read.outcomes[1].category == "OBJECT_NOT_FOUND"

    updated = hook.batch_update([{"id": "100001", "properties": {"hs_duration": "11"}}, {"id": "3", "properties": {}},
                                 {"id": "100002", "properties": {"hs_appointment_status": "NOPE"}}])
    assert [o.succeeded for o in updated.outcomes] == [True, False, False]
    assert sim.store.get("appointments", 100001).properties["hs_duration"] == "11"

    upserted = hook.batch_upsert([{"id": "EXT-000001", "properties": {"hs_duration": "12"}},
                                  {"id": "FRESH-1", "properties": {"hs_appointment_name": "fresh"}},
                                  {"id": "FRESH-2", "properties": {"hs_appointment_name": "bad", "hs_duration": "?"}}],
                                 id_property="external_appointment_id")
    assert [(o.succeeded, o.new) for o in upserted.outcomes] == [(True, False), (True, True), (False, None)]
    whole = hook.batch_upsert([{"id": "D", "properties": {"hs_appointment_name": "x"}}, {"id": "D", "properties": {}}],
                              id_property="external_appointment_id")
    # A repeated key is never sent with the input it repeats (HubSpot would refuse the whole batch): the
    # first is written, the repeat fails on its own.
    assert [(o.succeeded, o.category) for o in whole.outcomes] == [(True, None), (False, "DUPLICATE_INPUT_KEY")]
    assert whole.outcomes[1].message == "input 1 repeats the key 'D' of input 0; it was not sent"

    archived = hook.batch_archive(["100003", "100004"])
    assert archived.succeeded == 2 and sim.store.get("appointments", 100003).archived

    contact = str(next(iter(sim.store.iter_records("contacts"))).id)
    associated = hook.batch_associate([{"appointment_id": "100005", "to_object_id": contact},
                                       {"appointment_id": "100005", "to_object_id": "77"}], to_object_type="contacts")
    assert [o.succeeded for o in associated.outcomes] == [True, False] and associated.outcomes[1].status == 404
    assert hook.associate("100006", "contacts", contact)["associations"]["contacts"]["results"]
    assert hook.default_association_type_id("contacts") == 906
    with pytest.raises(HubSpotNotFoundError):
        hook.get_appointment("100003")


def test_path_segments_are_escaped_never_injected(hubspot_simulator, monkeypatch):
    hook = client_for(hubspot_simulator, monkeypatch)
    for hostile in ("../../contacts", "100001?archived=true", "a b/c", ".."):
        with pytest.raises(HubSpotNotFoundError):
            hook.get_appointment(hostile)
    assert hubspot_simulator.stats()["by_route"].get("GET /crm/objects/{version}/{object_type}/{object_id}") == 4


def test_429_storm_is_survived_within_the_budget(hubspot_simulator_factory, monkeypatch):
    sim = hubspot_simulator_factory(seed_appointments=0, requests_per_10s=20, retry_after=True)
    hook = client_for(sim, monkeypatch)
    sim.burst_429(5)
    started = time.monotonic()
    result = hook.batch_create([{"properties": {"hs_appointment_name": f"s{i}"}} for i in range(2500)])
    elapsed = time.monotonic() - started
    stats = sim.stats()
    assert result.succeeded == 2500 and sim.store.counts()["appointments"]["active"] == 2500
    assert stats["faults_injected"]["429"] == 5
    assert stats["rate_limited"] == 5  # only the injected storm: pacing kept the 20/10 s budget
    assert elapsed > 5  # 25 requests at 20 per 10 s cannot all go at once


def test_oauth_refresh_expiry_mid_run_and_revoked_token(hubspot_simulator_factory, monkeypatch):
    sim = hubspot_simulator_factory(oauth_token_ttl_s=1800)
    hook = client_for(sim, monkeypatch, oauth=True)
    assert hook.get_appointment("100001")["id"] == "100001"
    hook.get_appointment("100002")
    assert sim.stats()["oauth_tokens_issued"] == 1  # cached, not refreshed per call
    sim.expire_oauth_tokens()
    assert hook.batch_read(["100001", "100002"]).succeeded == 2  # refreshed once, then carried on
    assert sim.stats()["oauth_tokens_issued"] == 2
    sim.revoke_refresh_tokens()
    sim.expire_oauth_tokens()
    with pytest.raises(HubSpotAuthenticationError, match="re-authorize"):
        hook.get_appointment("100001")
    assert sim.stats()["by_route"]["POST /oauth/{oauth_version}/token"] == 3  # no retry loop


def test_secrets_never_reach_logs_exceptions_or_reprs(hubspot_simulator_factory, monkeypatch, captured_logs, capsys):
    from airflow.sdk._shared.secrets_masker import redact

    sim = hubspot_simulator_factory()
    hook = hook_for(sim, monkeypatch)
    client = hook.get_conn()
    token = sim.token
    client.get_appointment("100001")
    with pytest.raises(HubSpotNotFoundError) as missing:
        client.get_appointment("1")
    oauth = hook_for(sim, monkeypatch, oauth=True).get_conn()
    oauth.get_appointment("100001")
    access_token = oauth.transport.auth._access_token
    sim.revoke_refresh_tokens()
    sim.expire_oauth_tokens()
    with pytest.raises(HubSpotAuthenticationError) as revoked:
        oauth.get_appointment("100001")
    secrets = [token, "simulator-client-secret", "simulator-refresh-token", access_token]
    assert access_token and access_token not in (token, "simulator-refresh-token")
    # Capture works: the transport's own line about the expired access token was recorded.
    assert "the access token expired; refreshing it and sending again" in captured_logs.stdlib
    # Airflow's masker knows every secret (so Airflow's task-log redaction covers them) ...
    for secret in secrets:
        assert secret not in redact(f"value={secret}"), "not registered with Airflow's secret masker"
    # ... and none is ever written anywhere in the first place.
    texts = [captured_logs.text, capsys.readouterr().out, str(missing.value), repr(missing.value), str(revoked.value),
             repr(revoked.value), repr(hook), repr(client), repr(client.transport), repr(client.transport.auth),
             repr(oauth), repr(oauth.transport.auth)]
    for secret in secrets:
        assert not any(secret in text for text in texts), secret


def test_dedupe_property_must_be_present(hubspot_simulator, monkeypatch):
    hook = client_for(hubspot_simulator, monkeypatch)
    with pytest.raises(HubSpotInputError, match=r"input\(s\) \[1\]"):
        hook.batch_create([{"properties": {"external_appointment_id": "A", "hs_appointment_name": "a"}},
                           {"properties": {"hs_appointment_name": "b"}}], dedupe_property="external_appointment_id")


def test_hooks_on_one_account_share_its_pacers_until_they_go_idle(hubspot_simulator, monkeypatch):
    first = client_for(hubspot_simulator, monkeypatch)
    first.get_appointment("100001")
    second = client_for(hubspot_simulator, monkeypatch)
    assert second.transport.limiter is first.transport.limiter  # the second task knows what the first sent
    assert second.transport.search_limiter is first.transport.search_limiter
    monkeypatch.setenv("AIRFLOW_CONN_OTHER", json.dumps({"conn_type": "hubspot", "host": hubspot_simulator.url,
                                                         "password": "pat-another-account"}))
    other = HubSpotAppointmentsHook("other").get_conn()
    assert other.transport.limiter is not first.transport.limiter  # another token is another account
    limiter = first.transport.limiter
    monkeypatch.setattr(limiter, "_clock", lambda: 10**9)  # a window later, nothing sent since
    assert client_for(hubspot_simulator, monkeypatch).transport.limiter is not limiter
