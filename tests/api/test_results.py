"""One outcome per input: repeated keys are split off before sending and can never share an answer."""

from __future__ import annotations

import pytest

from airflow_provider_appointments.api.results import (
    RecordOutcome,
    chunked,
    first_of_each_key,
    map_answer,
    repeated_input,
)


def test_repeats_are_split_from_the_first_input_of_their_key():
    firsts, repeats = first_of_each_key(["A", "B", "A", "C", "A"])
    assert firsts == [0, 1, 3] and repeats == {2: 0, 4: 0}
    outcome = repeated_input(2, "A", 0)
    assert (outcome.succeeded, outcome.category, outcome.index) == (False, "DUPLICATE_INPUT_KEY", 2)


def test_map_answer_refuses_inputs_that_share_a_key():
    with pytest.raises(ValueError, match="one key per input"):
        map_answer([(0, "DUP-1"), (1, "DUP-1")], [{"id": "9", "properties": {"k": "DUP-1"}}], [],
                   result_key=lambda item: item["properties"]["k"], error_keys=("ids",))


def test_map_answer_gives_each_input_its_own_outcome_by_key_not_position():
    results = [{"id": "2", "new": True}, {"id": "1", "new": False}]
    errors = [{"category": "OBJECT_NOT_FOUND", "message": "no 3", "context": {"ids": ["3"]}}]
    outcomes = map_answer([(0, "1"), (1, "2"), (2, "3"), (3, "4")], results, errors,
                          result_key=lambda item: item["id"], error_keys=("ids",))
    assert [(o.index, o.key, o.succeeded, o.new, o.category) for o in outcomes] == [
        (0, "1", True, False, None), (1, "2", True, True, None), (2, "3", False, None, "OBJECT_NOT_FOUND"),
        (3, "4", False, None, "UNMAPPED_RESULT")]


def test_the_client_reports_its_counters_as_one_snapshot(hubspot_simulator, monkeypatch):
    from airflow_provider_appointments.hooks.hubspot import HubSpotAppointmentsHook

    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", hubspot_simulator.airflow_connection_json())
    client = HubSpotAppointmentsHook().get_conn()
    before = client.stats()
    client.batch_read(["1", "2"])
    after = client.stats()
    assert (after.requests - before.requests, after.rate_limited, after.retries) == (1, 0, 0)


def test_chunking_and_multi_status_mapping_by_key_not_position():
    assert [len(c) for c in chunked(list(range(250)))] == [100, 100, 50]
    with pytest.raises(ValueError):
        list(chunked([1], 101))
    outcomes = map_answer(
        [(0, "t0"), (1, "t1"), (2, "t2")],
        results=[{"id": "9", "objectWriteTraceId": "t2"}, {"id": "8", "objectWriteTraceId": "t0"}],
        errors=[{"category": "VALIDATION_ERROR", "message": "bad", "context": {"objectWriteTraceId": ["t1"]}}],
        result_key=lambda item: item["objectWriteTraceId"], error_keys=("objectWriteTraceId",), new_default=True)
    assert outcomes == [RecordOutcome(0, "t0", True, hubspot_id="8", new=True),
                        RecordOutcome(1, "t1", False, status=400, category="VALIDATION_ERROR", message="bad",
                                      context={"objectWriteTraceId": ["t1"]}),
                        RecordOutcome(2, "t2", True, hubspot_id="9", new=True)]
    missing = map_answer([(0, "a")], [], [], result_key=lambda i: i["id"], error_keys=("ids",))
    assert missing[0].category == "UNMAPPED_RESULT" and not missing[0].succeeded
