"""Associations written with each row by batch-create and upsert (``association_columns``).

``association_columns`` is ``{column: object type}``; a cell holds the target record's id, or with
``to_object_id_property`` (one property for every column, or ``{column: property}``) a unique value of
it (a contact's ``email``), found by batch reads on the target object once per window. A value no
record holds refuses its row, naming the value, before anything is written.

Creates carry their associations in the create request. An upsert cannot (HubSpot's batch upsert takes
none), so the upserted rows are associated right after, and a row whose association fails ends in the
failure report with both facts: what the upsert did, and why the association failed. Until then its
upsert's journal record is held back (`HeldJournal`): a retry after a kill sends the row again, and
both writes are idempotent.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_provider_appointments.api.batches import ChunkObserver
from airflow_provider_appointments.api.results import BatchResult, RecordOutcome
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.operators.run import WriteRun
from airflow_provider_appointments.operators.windows import Window, row_key


def target_properties(columns: dict[str, str], to_object_id_property: str | dict[str, str] | None) -> dict[str, str]:
    """``{column: unique property}`` of the columns that hold a natural key (the others hold ids)."""
    if not to_object_id_property:
        return {}
    if isinstance(to_object_id_property, str):
        return dict.fromkeys(columns, to_object_id_property)
    unknown = sorted(set(to_object_id_property) - set(columns))
    if unknown:
        raise HubSpotInputError(f"to_object_id_property names {', '.join(map(repr, unknown))}, which "
                                "association_columns does not have")
    return dict(to_object_id_property)


@dataclass
class RowTargets:
    """The association targets of a window's rows: ``(object type, record id)`` per input row, and why
    a row cannot be associated (a value no record holds)."""

    pairs: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    problems: dict[int, str] = field(default_factory=dict)


def window_targets(run: WriteRun, window: Window, columns: dict[str, str], properties: dict[str, str]) -> RowTargets:
    """Each row's targets: ids as they are, natural keys looked up per (object type, property), once each."""
    frame, targets = window.frame, RowTargets()
    if not columns:
        return targets
    cells = {column: [row_key(value) for value in frame[column].tolist()] for column in columns}
    found: dict[tuple[str, str, str], str | None] = {}
    for (kind, prop), values in _wanted(columns, properties, cells).items():
        ids, _, requests = run.client.find_object_ids(kind, prop, sorted(values))
        run.reads += requests
        found.update({(kind, prop, value): ids.get(value) for value in values})
    for position in range(len(frame)):
        row = window.row(position)
        pairs: list[tuple[str, str]] = []
        problems: list[str] = []
        for column, kind in columns.items():
            value = cells[column][position]
            if value is None:
                continue
            natural = properties.get(column)
            target: str | None = found.get((kind, natural, value)) if natural else value
            if target is None:
                problems.append(f"no {kind} record with {natural} {value!r} (column {column})")
            else:
                pairs.append((kind, target))
        targets.pairs[row] = pairs
        if problems:
            targets.problems[row] = "; ".join(problems)
    return targets


def with_problems(refused: list[RecordOutcome], problems: dict[int, str]) -> list[RecordOutcome]:
    """Rows refused already, with their association problem added: every problem of a row in one message."""
    return [replace(outcome, message=f"{outcome.message}; {problems[outcome.input_row]}")
            if outcome.input_row in problems else outcome for outcome in refused]


def _wanted(columns: dict[str, str], properties: dict[str, str],
            cells: dict[str, list[str | None]]) -> dict[tuple[str, str], set[str]]:
    wanted: dict[tuple[str, str], set[str]] = {}
    for column, kind in columns.items():
        if column in properties:
            wanted.setdefault((kind, properties[column]), set()).update(v for v in cells[column] if v is not None)
    return wanted


class HeldJournal:
    """A checkpoint journal whose answers are recorded only once the rows' associations are done: a
    request's rows count as in flight until then, so a retry after a kill writes them again."""

    def __init__(self, inner: ChunkObserver) -> None:
        self.inner = inner
        self._answered: list[list[int]] = []
        self._lock = threading.Lock()

    def sending(self, positions: list[int]) -> None:
        self.inner.sending(positions)

    def settled(self, outcomes: list[RecordOutcome]) -> None:
        with self._lock:
            self._answered.append([outcome.index for outcome in outcomes])

    def release(self, outcomes: list[RecordOutcome]) -> None:
        """Record every answered request with its rows' final outcomes."""
        final = {outcome.index: outcome for outcome in outcomes}
        for indexes in self._answered:
            self.inner.settled([final[index] for index in indexes])


def associate_upserted(run: WriteRun, result: BatchResult, items: list[dict], batch_size: int) -> BatchResult:
    """Associate each upserted row with its targets (``item["associate"]``); a failed association fails
    its row, saying what the upsert did."""
    pairs: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for outcome in result.outcomes:
        if outcome.succeeded and outcome.hubspot_id:
            for kind, target in items[outcome.index].get("associate", ()):
                pairs.setdefault(kind, []).append((outcome.index, {"appointment_id": str(outcome.hubspot_id),
                                                                   "to_object_id": target}))
    failed: dict[int, list[tuple[str, str, RecordOutcome]]] = {}
    for kind, wanted in pairs.items():
        sent = run.client.batch_associate([pair for _, pair in wanted], to_object_type=kind, batch_size=batch_size)
        result.batches += sent.batches
        result.requests += sent.requests
        for outcome in sent.failures():
            index, pair = wanted[outcome.index]
            failed.setdefault(index, []).append((kind, pair["to_object_id"], outcome))
    result.outcomes = [_unassociated(outcome, failed[outcome.index]) if outcome.index in failed else outcome
                       for outcome in result.outcomes]
    return result


def _unassociated(outcome: RecordOutcome, problems: list[tuple[str, str, RecordOutcome]]) -> RecordOutcome:
    done = "created" if outcome.new else "updated"
    reasons = "; ".join(f"with {kind} {target}: {failure.category} {failure.message}" for kind, target, failure
                        in problems)
    first: Any = problems[0][2]
    return replace(outcome, succeeded=False, status=first.status, category=first.category,
                   context=first.context, correlation_id=first.correlation_id,
                   message=f"{outcome.key} was {done} as appointment {outcome.hubspot_id}, but associating it "
                           f"failed ({reasons}); a re-run associates it")
