"""Batch results: one outcome per input, mapped from HubSpot's (multi-status) answers by id or trace id."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from airflow_provider_appointments.api.timestamps import created_ms
from airflow_provider_appointments.errors import HubSpotAmbiguousWriteError, HubSpotAPIError, HubSpotError

BATCH_LIMIT = 100
T = TypeVar("T")

# Categories this provider gives outcomes HubSpot did not answer for (HubSpot's own pass through as sent).
AMBIGUOUS_WRITE = "AMBIGUOUS_WRITE"
DUPLICATE_INPUT_KEY = "DUPLICATE_INPUT_KEY"
TRANSPORT_ERROR = "TRANSPORT_ERROR"
UNMAPPED_RESULT = "UNMAPPED_RESULT"
INVALID_INPUT = "INVALID_INPUT"
# HubSpot's own categories that this provider acts on.
OBJECT_NOT_FOUND = "OBJECT_NOT_FOUND"
CONFLICT = "CONFLICT"


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """Where one input ended: succeeded (with its HubSpot id) or failed (with HubSpot's reason).

    :param index: position of the input in the inputs given to the client call (0-based); -1 for a
        row the operators settled without a request.
    :param key: the input's key: id, idProperty value, or ``"<appointment id>-><object id>"``.
    :param new: the write created the record (True) or changed an existing one (False).
    :param unchanged: succeeded without a write: the record already was as asked (a create whose
        unique value exists, with ``on_existing="skip"``; an id already archived).
    :param input_row: the row of the user's input it belongs to (0-based, in the original input):
        set by the operators through `at_input_rows`, None in the client layer.
    """

    index: int
    key: str | None
    succeeded: bool
    hubspot_id: str | None = None
    new: bool | None = None
    status: int | None = None
    category: str | None = None
    message: str | None = None
    context: dict | None = None
    correlation_id: str | None = None
    unchanged: bool = False
    input_row: int | None = None


def is_transient(outcome: RecordOutcome) -> bool:
    """A failure that sending again may cure (a lasting 5xx, a 429, a dropped connection); never a
    lost create's answer (`AMBIGUOUS_WRITE`), which only a key makes safe to send again."""
    if outcome.succeeded or outcome.category == AMBIGUOUS_WRITE:
        return False
    return outcome.category == TRANSPORT_ERROR or outcome.status == 429 or (outcome.status or 0) >= 500


def at_input_rows(outcomes: Sequence[RecordOutcome], rows: Sequence[int]) -> list[RecordOutcome]:
    """The outcomes of a call whose input at position ``i`` came from input row ``rows[i]``: the one
    place a call position becomes a row of the user's input."""
    return [replace(outcome, input_row=rows[outcome.index]) for outcome in outcomes]


def settled_row(input_row: int, key: str | None, succeeded: bool, **facts: Any) -> RecordOutcome:
    """The outcome of a row settled without a request (refused, superseded, ambiguous)."""
    return RecordOutcome(-1, key, succeeded, input_row=input_row, **facts)


@dataclass
class BatchResult:
    """The outcome of every input of one hook batch call."""

    operation: str
    outcomes: list[RecordOutcome] = field(default_factory=list)
    requests: int = 0
    batches: int = 0
    records: list[dict] = field(default_factory=list)

    @property
    def succeeded(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.succeeded)

    @property
    def failed(self) -> int:
        return len(self.outcomes) - self.succeeded

    @property
    def created(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.succeeded and outcome.new is True)

    @property
    def updated(self) -> int:
        return sum(1 for outcome in self.outcomes
                   if outcome.succeeded and outcome.new is False and not outcome.unchanged)

    def failures(self) -> list[RecordOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.succeeded]


def chunked(items: Sequence[T], size: int = BATCH_LIMIT) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items (HubSpot takes at most 100 inputs per batch)."""
    if not 1 <= size <= BATCH_LIMIT:
        raise ValueError(f"batch size must be between 1 and {BATCH_LIMIT}, got {size}")
    for start in range(0, len(items), size):
        yield items[start:start + size]


def failed_outcome(index: int, key: str | None, error: HubSpotError) -> RecordOutcome:
    """An input that failed because its whole request failed."""
    if isinstance(error, HubSpotAPIError):
        return RecordOutcome(index, key, False, status=error.status, category=error.category, message=error.message,
                             context=error.context or None, correlation_id=error.correlation_id)
    category = AMBIGUOUS_WRITE if isinstance(error, HubSpotAmbiguousWriteError) else TRANSPORT_ERROR
    return RecordOutcome(index, key, False, category=category, message=str(error))


def first_of_each_key(keys: Sequence[str]) -> tuple[list[int], dict[int, int]]:
    """Positions of the first input of each key, and each repeat's position → its key's first position.

    HubSpot refuses a whole batch that names one key twice, and two inputs with one key cannot be told
    apart in its answer: a repeat is never sent with the input it repeats.
    """
    first: dict[str, int] = {}
    repeats: dict[int, int] = {}
    for position, key in enumerate(keys):
        if key in first:
            repeats[position] = first[key]
        else:
            first[key] = position
    return list(first.values()), repeats


def repeated_input(index: int, key: str | None, first_index: int) -> RecordOutcome:
    """An input whose key an earlier input of the same call already has: never sent, never merged."""
    return RecordOutcome(index, key, False, category=DUPLICATE_INPUT_KEY,
                         message=f"input {index} repeats the key {key!r} of input {first_index}; it was not sent")


def map_answer(
    keyed_inputs: Sequence[tuple[int, str]],
    results: list[dict],
    errors: list[dict],
    *,
    result_key: Any,
    error_keys: tuple[str, ...],
    new_default: bool | None = None,
    correlation_id: str | None = None,
    created_since_ms: int | None = None,
) -> list[RecordOutcome]:
    """Map a batch answer back to its inputs by key, never by position.

    :param keyed_inputs: (index, key) of each input sent; the keys must be distinct (an answer cannot
        tell two inputs with one key apart: see `first_of_each_key`).
    :param result_key: function giving the key of a result item.
    :param error_keys: ``context`` entries of an error that name the failing inputs' keys.
    :param created_since_ms: a result whose record was created at or after this moment counts as
        new, whatever HubSpot says (a replayed upsert of a record the interrupted attempt created).
    """
    by_key: dict[str, RecordOutcome] = {}
    pending = {key: index for index, key in keyed_inputs}
    if len(pending) != len(keyed_inputs):
        raise ValueError(f"map_answer needs one key per input; {len(keyed_inputs) - len(pending)} repeated")
    for error in errors:
        context = error.get("context") or {}
        keys = [str(k) for name in error_keys for k in context.get(name, [])]
        for key in keys:
            if key in pending and key not in by_key:
                by_key[key] = RecordOutcome(pending[key], key, False, status=_error_status(error),
                                            category=error.get("category"), message=error.get("message"),
                                            context=context or None, correlation_id=correlation_id)
    for item in results:
        key = result_key(item)
        if key is not None and key in pending and key not in by_key:
            new = item.get("new", new_default)
            if created_since_ms is not None and created_ms(item) >= created_since_ms:
                new = True
            hubspot_id = str(item["id"]) if item.get("id") is not None else None
            by_key[key] = RecordOutcome(pending[key], key, True, hubspot_id=hubspot_id,
                                        new=new if isinstance(new, bool) else new_default)
    outcomes = []
    for index, key in keyed_inputs:
        outcome = by_key.get(key)
        if outcome is None:
            outcome = RecordOutcome(index, key, False, category=UNMAPPED_RESULT,
                                    message="HubSpot's answer named neither a result nor an error for this input")
        outcomes.append(outcome)
    return outcomes


def _error_status(error: dict) -> int | None:
    return {OBJECT_NOT_FOUND: 404, "VALIDATION_ERROR": 400, CONFLICT: 409}.get(error.get("category") or "", 400)
