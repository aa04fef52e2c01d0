"""Windows of input rows: consecutive rows sent and checkpointed together, the client inputs they
become, and the outcomes of rows settled without a request."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from airflow_provider_appointments.api.batches import ChunkObserver
from airflow_provider_appointments.api.results import RecordOutcome, settled_row
from airflow_provider_appointments.operators.checkpoint import Checkpoint


def local_failure(input_row: int, key: str | None, category: str, message: str) -> RecordOutcome:
    """A row that fails before any request (bad value, duplicate key, missing id)."""
    return settled_row(input_row, key, False, category=category, message=message)


def row_of(outcome: RecordOutcome) -> int:
    """The input row an operator-level outcome belongs to (always set once it left `at_input_rows`)."""
    if outcome.input_row is None:
        raise RuntimeError(f"outcome of {outcome.key!r} has no input row: it never passed at_input_rows")
    return outcome.input_row


def row_key(value: Any) -> str | None:
    """An input cell as a key or id: None when missing; ``12.0`` (an id pandas read as float) → ``"12"``."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return text or None


def column_keys(series: pd.Series) -> list[str | None]:
    """`row_key` of every cell of a column, at once for a text column (a key pass reads every row)."""
    if not pd.api.types.is_string_dtype(series.dtype) or series.dtype == object and \
            pd.api.types.infer_dtype(series, skipna=True) not in ("string", "empty"):
        return [row_key(value) for value in series.tolist()]
    text = series.astype(object).where(series.notna(), None)
    stripped = [value.strip() if value is not None else None for value in text.tolist()]
    return [row_key(value) if value and value.endswith(".0") else (value or None) for value in stripped]


@dataclass(frozen=True)
class Window:
    """Consecutive input rows sent together and checkpointed as one.

    :param in_flight: rows an interrupted attempt had sent without learning the answer: they may
        have been written.
    :param resumed_since: epoch ms from which records this window's rows may have created are this
        task's own (the first of those requests; without a checkpoint, the DAG run's start on a
        retry); None on a first try.
    :param checkpoint: where each request of the window is recorded as it goes (None: nowhere).
    """

    number: int
    first_row: int
    frame: pd.DataFrame
    in_flight: frozenset[int] = frozenset()
    resumed_since: int | None = None
    checkpoint: Checkpoint | None = None

    def row(self, position: int) -> int:
        return self.first_row + position

    def observer(self, rows: list[int]) -> ChunkObserver | None:
        """What records the requests of one batch call whose inputs are these `rows`."""
        return self.checkpoint.journal(self.number, rows) if self.checkpoint else None


@dataclass
class WindowInputs:
    """A window made ready to send: client inputs with their input rows, and the rows settled locally."""

    items: list[Any] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    settled: list[RecordOutcome] = field(default_factory=list)

    def add(self, row: int, item: Any) -> None:
        self.items.append(item)
        self.rows.append(row)

    def held_back(self, decide: Any) -> WindowInputs:
        """These inputs less the rows `decide(row)` gives an outcome to instead of sending them (a row
        settled as succeeded without a request, such as an unchanged one, is decided alike; a row refused
        already keeps its refusal, with the decision's problem added: every problem of a row in one message)."""
        kept = WindowInputs(settled=[_decided(outcome, decide(outcome.input_row)) for outcome in self.settled])
        for row, item in zip(self.rows, self.items):
            outcome = decide(row)
            if outcome is None:
                kept.add(row, item)
            else:
                kept.settled.append(outcome)
        return kept

    def without(self, rows: set[int]) -> WindowInputs:
        """These inputs less `rows` (settled by an earlier attempt)."""
        kept = WindowInputs(settled=[outcome for outcome in self.settled if outcome.input_row not in rows])
        for row, item in zip(self.rows, self.items):
            if row not in rows:
                kept.add(row, item)
        return kept


def _decided(outcome: RecordOutcome, decision: RecordOutcome | None) -> RecordOutcome:
    """A settled row's outcome once the duplicate-key policy decided on it too."""
    if decision is None:
        return outcome
    if outcome.succeeded:
        return decision
    if decision.succeeded or not decision.message:  # superseded: the refusal stands as it is
        return outcome
    return replace(outcome, message=f"{outcome.message}; {decision.message}")
