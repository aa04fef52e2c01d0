"""Faults from the simulator's injection: every input ends succeeded or reported, exactly once, and
no secret leaks. `--soak` adds the long run (200,000 upserts and creates with 10 % faults)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from airflow_provider_appointments.hooks.hubspot import HubSpotAppointmentsHook
from airflow_provider_appointments.transport.retry import RetryPolicy

FAST = RetryPolicy(max_attempts=10, backoff_base_s=0.01, backoff_cap_s=0.05)


def hook_for(sim, monkeypatch, **kwargs):
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json(timeout=2))
    return HubSpotAppointmentsHook(retry_policy=FAST, **kwargs).get_conn()


def created_keys(sim, prefix):
    keys = (r.properties.get("external_appointment_id", "") for r in sim.store.appointments())
    return Counter(key for key in keys if key.startswith(prefix))


def creates(prefix, count):
    return [{"properties": {"hs_appointment_name": f"r{i}", "external_appointment_id": f"{prefix}{i}"}}
            for i in range(count)]


@pytest.mark.parametrize("kinds", [("502", "503", "504"), ("reset",), ("reset_after_apply",), ("truncated",),
                                   ("html",)])
def test_creates_with_a_dedupe_property_survive_faults_exactly_once(hubspot_simulator_factory, monkeypatch, kinds):
    sim = hubspot_simulator_factory(seed_appointments=0, faults={"rate": 0.3, "kinds": kinds, "paths": "batch/create"})
    hook = hook_for(sim, monkeypatch)
    result = hook.batch_create(creates("D-", 1500), dedupe_property="external_appointment_id")
    keys = created_keys(sim, "D-")
    assert result.succeeded == 1500 and result.failed == 0
    assert len(keys) == 1500 and max(keys.values()) == 1, "an appointment was created twice"
    assert {o.hubspot_id for o in result.outcomes} == {str(r.id) for r in sim.store.appointments()}
    assert sum(sim.stats()["faults_injected"].values()) > 0


def test_creates_without_a_dedupe_property_are_reported_not_replayed(hubspot_simulator_factory, monkeypatch):
    sim = hubspot_simulator_factory(seed_appointments=0,
                                    faults={"rate": 0.3, "kinds": ["reset_after_apply"], "paths": "batch/create"})
    hook = hook_for(sim, monkeypatch)
    result = hook.batch_create(creates("N-", 1000))
    keys = created_keys(sim, "N-")
    ambiguous = [o for o in result.outcomes if not o.succeeded]
    assert ambiguous and {o.category for o in ambiguous} == {"AMBIGUOUS_WRITE"}
    assert max(keys.values()) == 1  # never created twice
    assert result.succeeded + len(ambiguous) == 1000
    # The ambiguous ones may exist: the message says so, and the batch's trace ids let users reconcile.
    assert any(words in ambiguous[0].message for words in ("may or may not", "lost", "dropped"))


def test_idempotent_writes_ride_through_steady_5xx_resets_and_timeouts(hubspot_simulator_factory, monkeypatch):
    sim = hubspot_simulator_factory(seed_appointments=500, faults={
        "rate": 0.1, "kinds": ["502", "503", "504", "reset", "reset_after_apply", "truncated", "html", "timeout"],
        "timeout_s": 3.0})
    hook = hook_for(sim, monkeypatch)
    upserts = [{"id": f"EXT-{i:06d}" if i % 2 else f"U-{i}",
                "properties": {"hs_duration": str(i), "hs_appointment_name": f"u{i}"}} for i in range(1, 1201)]
    result = hook.batch_upsert(upserts, id_property="external_appointment_id")
    assert result.succeeded == 1200
    values = {r.properties.get("external_appointment_id"): r.properties.get("hs_duration")
              for r in sim.store.appointments()}
    assert all(values[item["id"]] == item["properties"]["hs_duration"] for item in upserts)
    keys = Counter(r.properties.get("external_appointment_id") for r in sim.store.appointments())
    assert keys.most_common(1)[0][1] == 1  # replayed upserts never created a second record
    archived = hook.batch_archive([str(100_000 + i) for i in range(1, 201)])
    assert archived.succeeded == 200 and sim.store.counts()["appointments"]["archived"] == 200
    pages = list(hook.iter_appointments(properties=["hs_duration"]))
    assert sum(map(len, pages)) == sim.store.counts()["appointments"]["active"]
    injected = sim.stats()["faults_injected"]
    assert sum(injected.values()) >= 5 and {"reset", "html"} <= set(injected)


def test_429_storms_without_retry_after_are_waited_out(hubspot_simulator_factory, monkeypatch):
    sim = hubspot_simulator_factory(seed_appointments=0, faults={"rate": 0.2, "kinds": ["429"]})
    hook = hook_for(sim, monkeypatch)
    result = hook.batch_create(creates("R-", 800), dedupe_property="external_appointment_id")
    assert result.succeeded == 800 and max(created_keys(sim, "R-").values()) == 1
    assert sim.stats()["faults_injected"]["429"] > 0


def test_daily_limit_is_not_retried(hubspot_simulator_factory, monkeypatch):
    from airflow_provider_appointments.errors import HubSpotRateLimitError

    sim = hubspot_simulator_factory(daily_limit=3)
    hook = hook_for(sim, monkeypatch)
    for _ in range(3):
        hook.get_appointment("100001")
    with pytest.raises(HubSpotRateLimitError, match="DAILY"):
        hook.get_appointment("100001")
    assert sim.stats()["rate_limited"] == 1


def test_secrets_stay_out_of_xcom_reports_templates_and_logs(run_dag, hubspot_simulator_factory, monkeypatch, tmp_path,
                                                             captured_logs):
    from pathlib import Path

    import pandas as pd

    sim = hubspot_simulator_factory(seed_appointments=20)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_oauth_connection_json())
    bookings = pd.DataFrame({"hs_appointment_name": ["a", "b"], "hs_duration": ["1", "x"]})
    bookings.to_csv(tmp_path / "in.csv", index=False)
    dag_file = tmp_path / "secret_dag.py"
    dag_file.write_text(f'''
import pendulum
from airflow.sdk import dag
from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsBatchCreateOperator
@dag(dag_id="secret_dag", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def secret_dag():
    HubSpotAppointmentsBatchCreateOperator(task_id="create", records="{tmp_path}/in.csv",
        failures_path="{tmp_path}/failures.csv", max_failed_records=5)
secret_dag()
''')
    result = run_dag(dag_file, "secret_dag")
    assert result.state == "success"
    summary = result.xcom("create")
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    with create_session() as session:
        rendered = [json.dumps(row.rendered_fields, default=str)
                    for row in session.query(RenderedTaskInstanceFields).all()]
    assert rendered, "no rendered template fields were stored"
    # Capture works: the operator's summary and row warning (task log) and the OAuth token request (stdlib) are there.
    assert "create: 2 records, 1 succeeded" in captured_logs.airflow
    assert "row 1 (None) failed: INVALID_INPUT" in captured_logs.airflow
    assert "POST /oauth/2026-03/token" in captured_logs.stdlib
    texts = [json.dumps(summary), Path(tmp_path / "failures.csv").read_text(), captured_logs.text, *rendered]
    for secret in ("simulator-client-secret", "simulator-refresh-token", "sim-oauth-", "Bearer "):
        assert not any(secret in text for text in texts), secret
    assert summary["failed"] == 1


@pytest.mark.soak
def test_soak_200k_upserts_and_creates_with_10_percent_faults(hubspot_simulator_factory, monkeypatch, capsys):
    sim = hubspot_simulator_factory(seed_appointments=100_000, faults={
        "rate": 0.1, "kinds": ["502", "503", "504", "reset", "reset_after_apply", "truncated", "429"]})
    hook = hook_for(sim, monkeypatch)
    upserts = [{"id": f"EXT-{i:06d}" if i <= 50_000 else f"SOAK-U-{i}",
                "properties": {"hs_duration": str(i % 120), "hs_appointment_name": "soak"}} for i in range(1, 100_001)]
    upserted = hook.batch_upsert(upserts, id_property="external_appointment_id")
    created = hook.batch_create(creates("SOAK-C-", 100_000), dedupe_property="external_appointment_id")
    keys = Counter(r.properties.get("external_appointment_id") for r in sim.store.appointments())
    duplicates = sum(count - 1 for count in keys.values() if count > 1)
    with capsys.disabled():
        print(f"\nsoak: records in 200000, succeeded {upserted.succeeded + created.succeeded}, "
              f"failed {upserted.failed + created.failed}, duplicates {duplicates}, "
              f"faults {sim.stats()['faults_injected']}")
    assert duplicates == 0
    assert upserted.succeeded + upserted.failed == 100_000 and created.succeeded + created.failed == 100_000
