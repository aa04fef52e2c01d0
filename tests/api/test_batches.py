"""BatchRunner and the create reconciliation, driven by a scripted transport (no server, no Airflow):
how chunks are cut and sent, how each input gets exactly one outcome, and how a create whose answer
was lost is settled by reading its key back."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from airflow_provider_appointments.api.batches import BatchEndpoint, BatchRunner
from airflow_provider_appointments.api.creates import Creates
from airflow_provider_appointments.api.results import (
    AMBIGUOUS_WRITE,
    CONFLICT,
    DUPLICATE_INPUT_KEY,
    TRANSPORT_ERROR,
    BatchResult,
    RecordOutcome,
)
from airflow_provider_appointments.errors import HubSpotAmbiguousWriteError, HubSpotTransportError
from airflow_provider_appointments.transport.http import Answer
from airflow_provider_appointments.transport.retry import RetryPolicy


class ScriptedTransport:
    """Answers each POST with `answer(body)`: an `Answer`, or an exception to raise."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.bodies: list[dict] = []
        self.requests_sent = 0
        self.lock = threading.Lock()

    def request(self, method: str, path: str, *, params: Any = None, json_body: Any = None,
                idempotent: bool = True) -> Answer:
        with self.lock:
            self.bodies.append(json_body)
            self.requests_sent += 1
        outcome = self.answer(json_body)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def echo_ids(body: dict) -> Answer:
    """A read that finds every id except those starting with "x"."""
    ids = [item["id"] for item in body["inputs"]]
    return Answer(207, {"results": [{"id": i} for i in ids if not i.startswith("x")],
                        "errors": [{"category": "OBJECT_NOT_FOUND", "message": "no such id",
                                    "context": {"ids": [i for i in ids if i.startswith("x")]}}]}, {})


READ = BatchEndpoint("read", "/batch/read", body=lambda ids: {"inputs": [{"id": i} for i in ids]},
                     key=str, result_key=lambda result: result.get("id"))


def test_inputs_are_cut_into_chunks_and_each_gets_its_own_outcome_in_order():
    transport = ScriptedTransport(echo_ids)
    ids = [str(i) for i in range(250)] + ["x1"]
    result = BatchRunner(transport, concurrency=3).run(READ, ids, batch_size=100)  # type: ignore[arg-type]
    assert sorted(len(body["inputs"]) for body in transport.bodies) == [51, 100, 100]
    assert (result.batches, result.requests) == (3, 3)
    assert [outcome.index for outcome in result.outcomes] == list(range(251))
    assert [outcome.key for outcome in result.outcomes] == ids
    assert [o.index for o in result.outcomes if not o.succeeded] == [250]
    assert result.outcomes[250].category == "OBJECT_NOT_FOUND"


def test_a_repeated_key_is_never_sent_with_the_input_it_repeats():
    transport = ScriptedTransport(echo_ids)
    result = BatchRunner(transport, concurrency=1).run(READ, ["1", "2", "1"])  # type: ignore[arg-type]
    assert transport.bodies == [{"inputs": [{"id": "1"}, {"id": "2"}]}]
    assert [o.succeeded for o in result.outcomes] == [True, True, False]
    assert result.outcomes[2].category == DUPLICATE_INPUT_KEY and "0" in (result.outcomes[2].message or "")


def test_a_failed_request_fails_only_its_own_chunk_and_the_observer_sees_each_chunk():
    def second_chunk_breaks(body: dict) -> Any:
        return HubSpotTransportError("connection reset") if body["inputs"][0]["id"] == "2" else echo_ids(body)

    seen: dict[str, list[list[int]]] = {"sending": [], "settled": []}

    class Journal:
        def sending(self, positions: list[int]) -> None:
            seen["sending"].append(positions)

        def settled(self, outcomes: list[RecordOutcome]) -> None:
            seen["settled"].append([o.index for o in outcomes])

    result = BatchRunner(ScriptedTransport(second_chunk_breaks), 1).run(  # type: ignore[arg-type]
        READ, ["0", "1", "2", "3"], batch_size=2, observer=Journal())
    assert [o.succeeded for o in result.outcomes] == [True, True, False, False]
    assert {o.category for o in result.outcomes[2:]} == {TRANSPORT_ERROR}
    assert seen == {"sending": [[0, 1], [2, 3]], "settled": [[0, 1], [2, 3]]}


def test_an_answer_that_names_no_input_is_unmapped_not_dropped():
    result = BatchRunner(ScriptedTransport(lambda body: Answer(200, {"results": []}, {})), 1).run(  # type: ignore[arg-type]
        READ, ["5"])
    assert [(o.index, o.succeeded, o.category) for o in result.outcomes] == [(0, False, "UNMAPPED_RESULT")]


class Account:
    """A create endpoint whose records are keyed by a unique property; `lose` answers are lost after
    the write is applied (the worst case), `conflict` keys already exist from before the call."""

    def __init__(self, lose: int = 0, existing: dict[str, int] | None = None) -> None:
        self.lose = lose
        self.records: dict[str, dict] = {key: {"id": str(900 + n), "createdAt": "2020-01-01T00:00:00Z"}
                                         for n, key in enumerate(existing or {})}
        self.next_id = 1

    def answer(self, body: dict) -> Any:
        results, errors = [], []
        for item in body["inputs"]:
            key = item["properties"]["k"]
            if key in self.records:
                errors.append({"category": CONFLICT, "message": "exists",
                               "context": {"objectWriteTraceId": [item["objectWriteTraceId"]]}})
                continue
            self.records[key] = {"id": str(self.next_id), "createdAt": "2100-01-01T00:00:00Z"}
            self.next_id += 1
            results.append({"id": self.records[key]["id"], "objectWriteTraceId": item["objectWriteTraceId"]})
        if self.lose:
            self.lose -= 1
            return HubSpotAmbiguousWriteError("read timed out after the request was sent")
        return Answer(207 if errors else 201, {"results": results, "errors": errors}, {})

    def read_by_unique(self, prop: str, keys: Any) -> dict[str, dict]:
        return {key: self.records[key] for key in keys if key in self.records}


def creates(account: Account, on_existing: str = "skip", unique: str | None = "k") -> tuple[Creates, ScriptedTransport]:
    transport = ScriptedTransport(account.answer)
    runner = BatchRunner(transport, 1)  # type: ignore[arg-type]
    updated: list[dict] = []

    def update(items: list[dict]) -> BatchResult:
        updated.extend(items)
        return BatchResult("update", outcomes=[RecordOutcome(i, item["id"], True, hubspot_id=item["id"], new=False)
                                               for i, item in enumerate(items)])

    return Creates(runner, "/batch/create", unique_property=unique, on_existing=on_existing, created_since=None,
                   retry=RetryPolicy(max_attempts=3), read_by_unique=account.read_by_unique, update=update), transport


def test_a_lost_create_answer_is_read_back_not_written_twice():
    account = Account(lose=1)
    create, transport = creates(account)
    result = create.run([{"properties": {"k": key}} for key in ("A", "B")], batch_size=100)
    assert len(transport.bodies) == 1  # read back, never sent again
    assert [(o.key, o.succeeded, o.new, o.hubspot_id) for o in result.outcomes] == [("A", True, True, "1"),
                                                                                    ("B", True, True, "2")]
    assert len(account.records) == 2


def test_a_key_that_existed_before_the_call_follows_on_existing():
    for policy, expected in (("skip", (True, False, True)), ("fail", (False, None, False)),
                             ("update", (True, False, False))):
        account = Account(existing={"OLD": 1})
        create, _ = creates(account, on_existing=policy)
        outcome = create.run([{"properties": {"k": "OLD"}}], batch_size=100).outcomes[0]
        assert (outcome.succeeded, outcome.new if outcome.succeeded else None,
                outcome.unchanged) == expected, policy
        assert outcome.hubspot_id == "900" and len(account.records) == 1


def test_without_a_key_a_lost_answer_stays_ambiguous_and_is_never_resent():
    account = Account(lose=1)
    create, transport = creates(account, unique=None)
    result = create.run([{"properties": {"k": "A"}}], batch_size=100)
    assert len(transport.bodies) == 1 and result.outcomes[0].category == AMBIGUOUS_WRITE


def test_an_empty_unique_value_is_refused_before_anything_is_sent():
    create, transport = creates(Account())
    with pytest.raises(ValueError, match="'k' is empty in input"):
        create.run([{"properties": {"k": "A"}}, {"properties": {}}], batch_size=100)
    assert transport.bodies == []
