"""Creates that are never written twice.

A batch create is not idempotent. With a unique key on every input (a unique-value property), an
input whose answer was lost, or whose key already exists, is settled by reading the key back: found
means created (by this call, or by an interrupted attempt before it) or pre-existing; not found means
sending it again cannot write twice. Without a key, a lost answer stays ``AMBIGUOUS_WRITE``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from airflow_provider_appointments.api.batches import UNKEYED, BatchEndpoint, BatchRunner, Chunk, ChunkObserver
from airflow_provider_appointments.api.results import AMBIGUOUS_WRITE, CONFLICT, BatchResult, RecordOutcome
from airflow_provider_appointments.api.timestamps import created_ms, to_epoch_ms
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.transport.retry import RetryPolicy

ON_EXISTING = ("skip", "update", "fail")


def check_on_existing(on_existing: str) -> str:
    if on_existing not in ON_EXISTING:
        raise HubSpotInputError(f"on_existing must be one of {ON_EXISTING}, got {on_existing!r}")
    return on_existing


class Creates:
    """One batch create call: its endpoint, and how its unsure inputs are settled.

    :param read_by_unique: the existing records holding some unique values, by value.
    :param update: writes properties to existing records (``on_existing="update"``).
    """

    def __init__(self, runner: BatchRunner, path: str, *, unique_property: str | None, on_existing: str,
                 created_since: datetime | int | None, retry: RetryPolicy,
                 read_by_unique: Callable[[str, Sequence[str]], dict[str, dict]],
                 update: Callable[[list[dict]], BatchResult]) -> None:
        check_on_existing(on_existing)
        self.runner = runner
        self.unique_property = unique_property
        self.on_existing = on_existing
        # A record found by the read-back was created by this call (or the interrupted attempt before
        # it) when it is younger than the call; older ones existed before.
        self.since = to_epoch_ms(created_since) if created_since is not None else int(time.time() * 1000)
        self.retry = retry
        self.read_by_unique = read_by_unique
        self.update = update
        self.call = uuid.uuid4().hex[:12]  # trace ids make HubSpot answer per input (207)
        self.endpoint = BatchEndpoint(
            "create", path, idempotent=False, new_default=True, error_keys=("objectWriteTraceId",),
            body=lambda items: {"inputs": items},
            key=lambda item: item["objectWriteTraceId"],
            result_key=lambda result: result.get("objectWriteTraceId"))

    def trace(self, index: int) -> str:
        """The input's ``objectWriteTraceId``: unique within this call."""
        return f"{self.call}-{index}"

    def key_of(self, item: dict, index: int) -> str:
        if self.unique_property:
            return str((item.get("properties") or {}).get(self.unique_property))
        return self.trace(index)

    def run(self, inputs: Sequence[dict], batch_size: int, observer: ChunkObserver | None = None) -> BatchResult:
        if self.unique_property:
            missing = [index for index, item in enumerate(inputs)
                       if not (item.get("properties") or {}).get(self.unique_property)]
            if missing:
                raise HubSpotInputError(
                    f"{self.unique_property!r} is empty in input(s) {missing[:10]}: every create needs its "
                    "unique value to be retried safely")
        # Two inputs with one unique value would be one record: the repeat is refused, never merged.
        distinct = (lambda item: str(item["properties"][self.unique_property])) if self.unique_property else UNKEYED
        return self.runner.run(self.endpoint, list(inputs), batch_size, send=self.send, distinct=distinct,
                               observer=observer)

    def send(self, chunk: Chunk, attempt: int = 1) -> list[RecordOutcome]:
        traced = [(index, {**item, "objectWriteTraceId": self.trace(index)}) for index, item in chunk]
        keys = {index: self.key_of(item, index) for index, item in chunk}
        outcomes = [replace(outcome, key=keys[outcome.index]) for outcome in self.runner.send(self.endpoint, traced)]
        unsure = [o for o in outcomes if not o.succeeded and o.category in (AMBIGUOUS_WRITE, CONFLICT)]
        if not self.unique_property or not unsure:
            return outcomes
        settled = {o.index: o for o in outcomes if o not in unsure}
        settled.update(self._settle(unsure, dict(chunk), attempt))
        return [settled[index] for index, _ in chunk]

    def _settle(self, unsure: list[RecordOutcome], items: dict[int, Any], attempt: int) -> dict[int, RecordOutcome]:
        """Read the unsure inputs back by their key and decide each one."""
        found = self.read_by_unique(self.unique_property or "", [o.key or "" for o in unsure])
        settled: dict[int, RecordOutcome] = {}
        resend: Chunk = []
        conflicts: list[tuple[RecordOutcome, dict]] = []
        for outcome in unsure:
            record = found.get(outcome.key or "")
            if record is None:
                # Not created (a lost answer, or a whole batch refused for another input's conflict):
                # sending it again cannot write twice. A conflict on another unique property is sent
                # once more, then reported.
                again = self.retry.may_resend(attempt) if outcome.category == AMBIGUOUS_WRITE else attempt == 1
                if again:
                    resend.append((outcome.index, items[outcome.index]))
                else:
                    settled[outcome.index] = outcome
            elif created_ms(record) >= self.since:
                settled[outcome.index] = RecordOutcome(outcome.index, outcome.key, True, hubspot_id=str(record["id"]),
                                                       new=True)
            elif outcome.category == AMBIGUOUS_WRITE or self.on_existing == "skip":
                settled[outcome.index] = RecordOutcome(outcome.index, outcome.key, True, hubspot_id=str(record["id"]),
                                                       new=False, unchanged=True)
            elif self.on_existing == "update":
                conflicts.append((outcome, record))
            else:
                settled[outcome.index] = replace(outcome, hubspot_id=str(record["id"]), message=(
                    f"{self.unique_property} {outcome.key!r} already exists as appointment {record['id']} "
                    "(on_existing='fail')"))
        settled.update(self._update_existing(conflicts, items))
        if resend:
            settled.update({o.index: o for o in self.send(resend, attempt + 1)})
        return settled

    def _update_existing(self, conflicts: list[tuple[RecordOutcome, dict]],
                         items: dict[int, Any]) -> dict[int, RecordOutcome]:
        """``on_existing="update"``: write each conflicting input's properties to the record holding its key."""
        if not conflicts:
            return {}
        result = self.update([{"id": str(record["id"]), "properties": items[outcome.index].get("properties") or {}}
                              for outcome, record in conflicts])
        return {outcome.index: replace(updated, index=outcome.index, key=outcome.key)
                for (outcome, _), updated in zip(conflicts, result.outcomes)}
