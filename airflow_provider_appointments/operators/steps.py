"""The steps a write operator declares, and the helpers they share (mixed into `HubSpotWriteOperator`).

A write operator is configuration plus the steps of its operation; each step is given the run
(`WriteRun`: the client, the property schema, the context, what `start` learned), and nothing of a run
is kept on the operator. Three steps are required:

- ``build_inputs(run, window)``: the client inputs of a window's rows, and the rows refused locally;
- ``send_inputs(run, inputs, window)``: one outcome per input, at its position in ``inputs.items``;
- ``plan_inputs(run, inputs, window)``: the dry run of those inputs, found by reads only.

Optional: ``start(run)`` (checks before anything is sent; what it returns is ``run.facts``),
``row_keys(frame)`` with ``key_columns()`` (the key each row writes under, and the input columns it
comes from; rows sharing one are duplicates), ``settings()`` (on the operator: what changes what is
sent, so a checkpoint is reused only when its settings match), and for work beyond the rows (the
sync): ``read_keys`` / ``keys_read``, ``window_settled``, ``finish``, ``publish`` / ``abandon``,
``extra_summary``, ``dry_run_settled`` and ``extra_plans``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from airflow_provider_appointments.api.results import (
    BATCH_LIMIT,
    INVALID_INPUT,
    BatchResult,
    RecordOutcome,
    is_transient,
)
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.operators.run import WriteRun
from airflow_provider_appointments.operators.windows import Window, WindowInputs, column_keys, local_failure, row_key
from airflow_provider_appointments.records.compare import changes
from airflow_provider_appointments.records.reports import PlannedRow
from airflow_provider_appointments.records.rules import AMBIGUOUS
from airflow_provider_appointments.records.serialization import SerializedFrame, serialize_frame

if TYPE_CHECKING:
    from airflow_provider_appointments.operators.tally import Tally


def check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, int) or not 1 <= batch_size <= BATCH_LIMIT:
        raise HubSpotInputError(f"batch_size must be between 1 and {BATCH_LIMIT} (HubSpot's limit), got {batch_size!r}")
    return batch_size


def check_source(task_id: Any, records: Any, sql: str | None, sql_conn_id: str | None) -> None:
    if (records is None) == (sql is None):
        raise HubSpotInputError(f"{task_id}: give either records or sql (with sql_conn_id), not both nor neither")
    if sql is not None and not sql_conn_id:
        raise HubSpotInputError(f"{task_id}: sql needs sql_conn_id (a common-sql connection)")


def check_ambiguous(ambiguous: str) -> str:
    if ambiguous not in AMBIGUOUS:
        raise HubSpotInputError(f"ambiguous must be one of {', '.join(AMBIGUOUS)}, got {ambiguous!r}")
    return ambiguous


def as_flag(value: Any, name: str) -> bool:
    """A bool argument that may arrive rendered from a template: ``True``/``False`` or their text."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().casefold()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", "", "none"):
        return False
    raise HubSpotInputError(f"{name} must be true or false, got {value!r}")


def check_ratio(ratio: float | None) -> float | None:
    if ratio is not None and not 0 <= float(ratio) <= 1:
        raise HubSpotInputError(f"max_failed_ratio must be between 0 and 1, got {ratio!r}")
    return None if ratio is None else float(ratio)


class WriteSteps:
    """The declared steps (defaults: none required ones) and the helpers of a write operator's steps.
    The attributes the helpers read (``column_mapping`` …) are the operator's arguments."""

    task_id: str
    column_mapping: dict[str, str] | None
    clear_missing: bool
    date_format: str | dict[str, str] | None
    timezone: str | dict[str, str] | None
    ambiguous: str
    value_mapping: dict[str, dict[Any, Any]] | None
    ignore_columns: list[str]
    key_name = "key"

    def build_inputs(self, run: WriteRun, window: Window) -> WindowInputs:
        """The client inputs of a window's rows, and the rows refused (or settled) without a request."""
        raise NotImplementedError

    def send_inputs(self, run: WriteRun, inputs: WindowInputs, window: Window) -> BatchResult:
        """Send the inputs; one outcome per item, at its position in ``inputs.items`` (`RecordOutcome.index`)."""
        raise NotImplementedError

    def plan_inputs(self, run: WriteRun, inputs: WindowInputs, window: Window) -> list[PlannedRow]:
        """Dry run: what sending the inputs would do, one row per item (`input_row` = position in items),
        found by reads only."""
        raise NotImplementedError

    def start(self, run: WriteRun) -> Any:
        """Checks before anything is sent; what it returns is the run's `facts`."""
        return None

    def key_columns(self) -> list[str]:
        """The input columns `row_keys` reads (none: rows have no key). The duplicate-key pass reads only
        these where the input allows it (a Parquet or CSV file; rows in memory are not copied)."""
        return []

    def row_keys(self, frame: pd.DataFrame) -> list[str | None] | None:
        """The key each row of `frame` writes under (rows sharing one are duplicates), or None when
        rows have no key (a create without a unique property)."""
        return None

    def window_settled(self, run: WriteRun, first_row: int | None, frame: pd.DataFrame | None,
                       outcomes: list[RecordOutcome]) -> None:
        """Called with the outcomes of rows as they are settled (a window's, or at the end, with no
        frame, those the duplicate-key policy held until the last row of their key)."""

    def finish(self, run: WriteRun, tally: Tally, failing: bool) -> None:
        """After the last window, before the report: work on what no input row names (a sync's archives).
        `failing`: the rows broke the failure policy, so the task is about to fail."""

    def publish(self, run: WriteRun, result: dict[str, Any]) -> None:
        """The run succeeded (within its failure policy): publish what the next run starts from."""

    def abandon(self, run: WriteRun) -> None:
        """The run failed or was stopped: drop what `publish` would have published."""

    def extra_summary(self, run: WriteRun) -> dict[str, Any]:
        """Fields of this operation's XCom summary beyond the shared ones."""
        return {}

    def dry_run_settled(self, run: WriteRun, outcome: RecordOutcome) -> PlannedRow | None:
        """A dry run's plan of a row settled without a request (None: the shared one)."""
        return None

    def extra_plans(self, run: WriteRun) -> list[PlannedRow]:
        """A dry run's plans of work no input row names (a sync's archives)."""
        return []

    def resendable(self, outcome: RecordOutcome) -> bool:
        """A recorded failure a retry sends again rather than replays (see `is_transient`)."""
        return is_transient(outcome)

    def read_keys(self, run: WriteRun, keys: list[str | None]) -> None:
        """The keys of the input's rows, a chunk at a time, as the duplicate-key pass reads them."""

    def keys_read(self, run: WriteRun) -> None:
        """After the duplicate-key pass (every key read), before anything is sent."""

    # -- helpers for the steps -----------------------------------------------------------------
    def serialize(self, run: WriteRun, window: Window, extra_ignore: Sequence[str] = (),
                  key_column: str | None = None) -> tuple[list[tuple[int, dict[str, str]]], list[RecordOutcome]]:
        """Rows → properties: (input row, properties) of each row that serialized, and the refusals of the rest."""
        serialized, refused = self.serialize_window(run, window, extra_ignore, key_column)
        sendable = [(window.row(position), properties) for position, properties in enumerate(serialized.rows)
                    if position not in serialized.errors]
        return sendable, refused

    def serialize_window(self, run: WriteRun, window: Window, extra_ignore: Sequence[str] = (),
                         key_column: str | None = None) -> tuple[SerializedFrame, list[RecordOutcome]]:
        """The window serialized (by row and by column), and the refusals of the rows that did not."""
        frame = window.frame
        serialized = serialize_frame(frame, run.schema, column_mapping=self.column_mapping,
                                     clear_missing=self.clear_missing, date_format=self.date_format,
                                     timezone=self.timezone, ambiguous=self.ambiguous, value_mapping=self.value_mapping,
                                     ignore_columns=[*self.ignore_columns, *extra_ignore], first_row=window.first_row)
        keys = frame[key_column].tolist() if key_column in frame.columns else None
        refused = [local_failure(window.row(position), row_key(keys[position]) if keys is not None else None,
                                 INVALID_INPUT, message)
                   for position, message in sorted(serialized.errors.items())]
        return serialized, refused

    def column_keys(self, frame: pd.DataFrame, column: str) -> list[str | None]:
        """Each row's key from one column (`row_key`: None when empty)."""
        self.require_columns(frame, column)
        return column_keys(frame[column])

    def require_columns(self, frame: pd.DataFrame, *columns: str) -> None:
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise HubSpotInputError(f"{self.task_id}: input has no column {', '.join(map(repr, missing))} "
                                    f"(columns: {', '.join(map(str, frame.columns))})")


class KeyedByUniqueValue:
    """What the operators keyed by a unique-value property share (upsert, sync): each row's key is in
    ``id_column`` and is the record's ``id_property`` value."""

    id_property: str
    id_column: str

    if TYPE_CHECKING:  # from WriteSteps, after this class in the operators' bases
        def column_keys(self, frame: pd.DataFrame, column: str) -> list[str | None]: ...

    @property
    def key_name(self) -> str:
        return self.id_property

    def key_columns(self) -> list[str]:
        return [self.id_column]

    def row_keys(self, frame: pd.DataFrame) -> list[str | None]:
        return self.column_keys(frame, self.id_column)

    def key_column_ignored(self, column_mapping: dict[str, str] | None) -> list[str]:
        """The key column, unless it maps to ``id_property`` itself (then it is sent as that property)."""
        return [] if (column_mapping or {}).get(self.id_column, self.id_column) == self.id_property \
            else [self.id_column]


def planned_write(schema: Any, position: int, key: str | None, properties: dict[str, str],
                  record: dict) -> PlannedRow:
    """Dry run: what writing `properties` to an existing `record` would do (compared per property type)."""
    diff = changes(schema, properties, record.get("properties") or {})
    return PlannedRow(position, key, "update" if diff else "unchanged", changes=diff or None)
