"""The change-aware sync: a source table (rows, a file, a query) made HubSpot's, sending only what changed.

Per key (``id_property``, a unique-value property) each source row is compared with what this sync
wrote last time (its state, `sync_state`) or with what HubSpot holds (``compare="hubspot"``); unchanged
rows cost no request, changed rows send only their changed properties, new keys are created, and in
``mirror`` mode the keys this sync wrote that left the source are archived, behind a guard that refuses
a run that would archive too much before it writes anything.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
from airflow.sdk.exceptions import AirflowException

from airflow_provider_appointments.api.results import (
    INVALID_INPUT,
    OBJECT_NOT_FOUND,
    BatchResult,
    RecordOutcome,
    settled_row,
)
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.operators._write import HubSpotWriteOperator
from airflow_provider_appointments.operators.changes import compare_with_hubspot
from airflow_provider_appointments.operators.run import WriteRun
from airflow_provider_appointments.operators.steps import KeyedByUniqueValue
from airflow_provider_appointments.operators.sync_state import StateWriter, SyncState
from airflow_provider_appointments.operators.tally import Tally
from airflow_provider_appointments.operators.windows import Window, WindowInputs, column_keys, local_failure
from airflow_provider_appointments.records.fingerprints import (
    changed_properties,
    decode_hashes,
    encode_hashes,
    property_hashes,
    row_hashes,
)
from airflow_provider_appointments.records.reports import FailureRow, PlannedRow

MODES = ("upsert", "update", "mirror")
COMPARES = ("state", "hubspot")
# Unchanged rows cost nothing, so a sync's windows are large: its few changed rows then fill whole
# 100-record batches instead of one partial batch per window.
SYNC_WINDOW_ROWS = 25_000


def _check_choice(name: str, value: Any, choices: tuple[str, ...], rendered: bool = False) -> None:
    """A value among `choices`; a template (``{{ … }}``) is checked once rendered."""
    if not rendered and isinstance(value, str) and "{{" in value:
        return
    if value not in choices:
        raise HubSpotInputError(f"{name} must be one of {choices}, got {value!r}")


@dataclass(slots=True)
class _Row:
    """A source row made ready: its key, the properties it sends, and its hash (its properties' hashes
    are computed only when needed: for a row that changed)."""

    key: str
    properties: dict[str, str]
    hash: str
    _hashes: dict[str, str] | None = None

    @property
    def hashes(self) -> dict[str, str]:
        if self._hashes is None:
            self._hashes = property_hashes(self.properties)
        return self._hashes


@dataclass
class SyncFacts:
    """What one sync run knows: the previous state (None on a first run), how it compares, what it archives."""

    state: SyncState | None
    compare: str
    archive: pd.DataFrame
    refusal: str | None
    writer: StateWriter | None = None
    # Prepared rows not yet settled, by input row; None: settled unchanged, its state entry carried over.
    rows: dict[int, _Row | None] = field(default_factory=dict)
    plans: dict[int, PlannedRow] = field(default_factory=dict)  # dry run: by input row
    archived: int = 0
    archive_failures: list[FailureRow] = field(default_factory=list)
    archive_requests: int = 0


class HubSpotAppointmentsSyncOperator(KeyedByUniqueValue, HubSpotWriteOperator):  # type: ignore[override]
    """Make HubSpot's appointments equal a source table, writing only what changed.

    :param id_property: a unique-value property that keys the source's rows (e.g. ``external_appointment_id``).
    :param id_column: the source column holding the key (default: ``id_property``).
    :param mode: ``"upsert"`` (default): create new keys, update changed rows; ``"update"``: update
        existing keys only (a key HubSpot does not have fails ``OBJECT_NOT_FOUND``); ``"mirror"``:
        upsert, and archive the records this sync wrote whose key has left the source.
    :param state_path: local path or URI (templated) of the sync's state; after each successful run it
        holds, per key, the HubSpot id and fingerprints of what was written. Needed by ``mirror``.
    :param compare: ``"state"`` (default): a row equal to the state costs no request (edits made in
        HubSpot since are not seen); ``"hubspot"``: read each key's current values (one batch read per
        100 rows) and compare per property type. A run without a state compares with HubSpot.
    :param max_archive_ratio: mirror refuses, before writing anything, a run that would archive more
        than this share of the records it owns (default 0.1).
    :param max_archive: and more than this many (default: no count limit).

    Other parameters as for `HubSpotAppointmentsUpsertOperator` (``records`` or ``sql``/``sql_conn_id``,
    ``column_mapping``, ``dry_run``, ``failures_path``, ``id_map_path``, checkpoints, the failure policy).
    Returns to XCom ``{"operation": "sync", "mode", "compare", "records", "succeeded", "failed", "created",
    "updated", "unchanged", "archived", "batches", "requests", "failures_path", "id_map_path", "state_path"}``.
    """

    operation = "sync"
    keeps_id_map = True
    template_fields: Sequence[str] = (*HubSpotWriteOperator.template_fields, "state_path", "compare", "mode")

    def __init__(self, *, id_property: str, id_column: str | None = None, mode: str = "upsert",
                 state_path: str | None = None, compare: str = "state", max_archive_ratio: float = 0.1,
                 max_archive: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("window_rows", SYNC_WINDOW_ROWS)
        super().__init__(**kwargs)
        _check_choice("mode", mode, MODES)
        _check_choice("compare", compare, COMPARES)
        if mode == "mirror" and not state_path:
            raise HubSpotInputError("mode='mirror' needs state_path: it archives only records this sync wrote, "
                                    "and the state is where it keeps them")
        if not 0 <= float(max_archive_ratio) <= 1:
            raise HubSpotInputError(f"max_archive_ratio must be between 0 and 1, got {max_archive_ratio!r}")
        self.id_property = id_property
        self.id_column = id_column or id_property
        self.mode = mode
        self.state_path = state_path
        self.compare = compare
        self.max_archive_ratio = float(max_archive_ratio)
        self.max_archive = max_archive

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "id": [self.id_property, self.id_column], "mode": self.mode,
                "compare": self.compare, "state": self.state_path}

    # -- before anything is sent ---------------------------------------------------------------
    def start(self, run: WriteRun) -> SyncFacts:
        self.mode, self.compare = str(self.mode).strip(), str(self.compare).strip()  # as rendered
        _check_choice("mode", self.mode, MODES, rendered=True)
        _check_choice("compare", self.compare, COMPARES, rendered=True)
        if self.mode == "mirror" and not self.state_path:
            raise HubSpotInputError("mode='mirror' needs state_path (it rendered empty)")
        run.schema.require_unique(self.id_property, "id_property")
        state = SyncState.load(str(self.state_path)) if self.state_path else None
        compare = "hubspot" if state is None else self.compare
        if state is None:
            self.log.info("sync: no state%s, so rows are compared with HubSpot's records (a batch read per 100)",
                          f" at {self.state_path} yet" if self.state_path else " (state_path is not set)")
        facts = SyncFacts(state, compare, pd.DataFrame(), None)
        if not run.dry_run and self.state_path:
            facts.writer = StateWriter(str(self.state_path))
        return facts

    def read_keys(self, run: WriteRun, keys: list[str | None]) -> None:
        if run.facts.state is not None:  # which keys the sync wrote are still in the source
            run.facts.state.mark_seen(keys)

    def keys_read(self, run: WriteRun) -> None:
        """Mirror: the guard, once every key of the source is known and before anything is written."""
        facts: SyncFacts = run.facts
        if self.mode != "mirror" or facts.state is None:
            return
        facts.archive = facts.state.unseen()
        facts.refusal = self._guard(len(facts.archive), len(facts.state))
        if facts.refusal and not run.dry_run:
            raise AirflowException(facts.refusal)

    def _guard(self, archiving: int, owned: int) -> str | None:
        """Why archiving `archiving` of the `owned` records is refused, or None when it may go ahead."""
        if not archiving:
            return None
        if self.max_archive is not None and archiving > self.max_archive:
            limit = f"max_archive={self.max_archive}"
        elif archiving / max(owned, 1) > self.max_archive_ratio:
            limit = f"max_archive_ratio={self.max_archive_ratio:g}"
        else:
            return None
        return (f"sync refused: it would archive {archiving} of the {owned} records it owns "
                f"({archiving / max(owned, 1):.1%}), past {limit}. A source that suddenly lacks that many keys is "
                "more often a broken query or an empty staging table than real deletions; nothing was written. "
                f"If the deletions are real, raise {limit.split('=')[0]} for this run")

    # -- per window ----------------------------------------------------------------------------
    def _prepare(self, run: WriteRun, window: Window) -> tuple[dict[int, _Row], list[RecordOutcome]]:
        """The window's rows that serialize, by input row, and the refusals of the rest."""
        serialized, refused = self.serialize_window(run, window,
                                                    extra_ignore=self.key_column_ignored(self.column_mapping),
                                                    key_column=self.id_column)
        hashes = row_hashes(serialized.columns, len(window.frame))
        rows: dict[int, _Row] = {}
        keys = column_keys(window.frame[self.id_column])
        for position, properties in enumerate(serialized.rows):
            if position in serialized.errors:
                continue
            row, key = window.row(position), keys[position]
            if key is None:
                refused.append(local_failure(row, None, INVALID_INPUT, f"row {row}: {self.id_column} is empty"))
                continue
            rows[row] = _Row(key, properties, hashes[position])
        return rows, refused

    def build_inputs(self, run: WriteRun, window: Window) -> WindowInputs:
        facts: SyncFacts = run.facts
        rows, refused = self._prepare(run, window)
        facts.rows.update(rows)
        inputs = WindowInputs(settled=refused)
        if facts.compare == "state":
            self._against_state(run, rows, inputs, window)
        else:
            self._against_hubspot(run, rows, inputs, window)
        return inputs

    def _against_state(self, run: WriteRun, rows: dict[int, _Row], inputs: WindowInputs, window: Window) -> None:
        facts: SyncFacts = run.facts
        assert facts.state is not None
        state = facts.state
        positions = state.positions(row.key for row in rows.values())
        ids, hashes = state.values("hubspot_id", positions), state.values("row_hash", positions)
        # The per-property hashes, read at once for the rows whose hash differs (few, on most nights).
        differing = [position for position, old_hash, row in zip(positions, hashes, rows.values())
                     if position >= 0 and old_hash != row.hash]
        previous_hashes = dict(zip(differing, state.values("property_hashes", differing)))
        unknown: dict[int, _Row] = {}
        for (number, row), position, hubspot_id, old_hash in zip(rows.items(), positions, ids, hashes):
            if position < 0:  # a key this sync never wrote: created (or, in mode update, HubSpot says)
                if run.dry_run:  # the plan says what HubSpot would do with it
                    unknown[number] = row
                else:
                    inputs.add(number, {"id": row.key, "properties": row.properties})
                continue
            if old_hash == row.hash:
                inputs.settled.append(settled_row(number, row.key, True, hubspot_id=hubspot_id, new=False,
                                                  unchanged=True))
                self._plan(run, number, row.key, "unchanged")
                if not run.duplicates.key_of.get(number):  # a repeated key settles by its policy instead
                    facts.rows[number] = None
                continue
            previous = decode_hashes(previous_hashes[position])
            changed = changed_properties(row.properties, row.hashes, previous)
            if not changed:  # only properties dropped from the source: a write would leave them anyway
                inputs.settled.append(settled_row(number, row.key, True, hubspot_id=hubspot_id, new=False,
                                                  unchanged=True))
                self._plan(run, number, row.key, "unchanged")
                continue
            self._plan(run, number, row.key, "update", {name: {"to": value} for name, value in changed.items()})
            inputs.add(number, {"id": row.key, "properties": changed})
        if unknown:
            self._against_hubspot(run, unknown, inputs, window)

    def _against_hubspot(self, run: WriteRun, rows: dict[int, _Row], inputs: WindowInputs, window: Window) -> None:
        numbers = list(rows)
        items = [{"id": rows[number].key, "properties": rows[number].properties} for number in numbers]
        compared = compare_with_hubspot(run, self.id_property, numbers, items, created_since=window.resumed_since)
        for position, number in enumerate(numbers):
            item, key = items[position], rows[number].key
            if position in compared.failed:
                inputs.settled.append(compared.failed[position])
                self._plan(run, number, key, "refused", reason=compared.failed[position].message)
            elif position in compared.unchanged:
                inputs.settled.append(compared.unchanged[position])
                self._plan(run, number, key, "unchanged")
            elif position in compared.changed:
                _, diff = compared.changed[position]
                self._plan(run, number, key, "update", diff)
                inputs.add(number, {"id": key, "properties": {name: change["to"] for name, change in diff.items()}})
            elif self.mode == "update":
                message = f"row {number}: no appointment with {self.id_property} {key!r} (mode='update' creates none)"
                inputs.settled.append(local_failure(number, key, OBJECT_NOT_FOUND, message))
                self._plan(run, number, key, "refused", reason=message)
            else:
                self._plan(run, number, key, "create")
                inputs.add(number, item)

    def _plan(self, run: WriteRun, row: int, key: str, action: str, diff: dict | None = None,
              reason: str | None = None) -> None:
        if run.dry_run:
            run.facts.plans[row] = PlannedRow(row, key, action, changes=diff or None, reason=reason)

    def send_inputs(self, run: WriteRun, inputs: WindowInputs, window: Window) -> BatchResult:
        if self.mode == "update":
            return run.client.batch_update(inputs.items, id_property=self.id_property, batch_size=self.batch_size,
                                           observer=window.observer(inputs.rows))
        sent = run.client.batch_upsert(inputs.items, id_property=self.id_property, batch_size=self.batch_size,
                                       created_since=window.resumed_since, observer=window.observer(inputs.rows))
        return self._complete_recreated(run, inputs, window, sent)

    def _complete_recreated(self, run: WriteRun, inputs: WindowInputs, window: Window,
                            sent: BatchResult) -> BatchResult:
        """A row sent with only its changed properties whose record HubSpot no longer had (purged, or
        deleted for good) was just created with only those: its whole row follows at once."""
        facts: SyncFacts = run.facts
        whole: dict[int, dict[str, str]] = {}
        for outcome in sent.outcomes:
            row = facts.rows.get(inputs.rows[outcome.index])
            if outcome.succeeded and outcome.new and row is not None and \
                    len(inputs.items[outcome.index]["properties"]) < len(row.properties):
                whole[outcome.index] = row.properties
        if not whole:
            return sent
        partial = sorted(whole)
        self.log.warning("sync: %d records this sync wrote were gone from HubSpot and were created again; their "
                         "whole rows are sent", len(partial))
        items = [{"id": inputs.items[i]["id"], "properties": whole[i]} for i in partial]
        again = run.client.batch_upsert(items, id_property=self.id_property, batch_size=self.batch_size,
                                        observer=window.observer([inputs.rows[i] for i in partial]))
        by_index = {outcome.index: outcome for outcome in sent.outcomes}
        for outcome in again.outcomes:
            first = by_index[partial[outcome.index]]
            by_index[first.index] = replace(outcome, index=first.index, new=True) if outcome.succeeded else \
                replace(outcome, index=first.index)
        return BatchResult(sent.operation, [by_index[i] for i in sorted(by_index)], sent.requests + again.requests,
                           sent.batches + again.batches)

    def plan_inputs(self, run: WriteRun, inputs: WindowInputs, window: Window) -> list[PlannedRow]:
        plans = run.facts.plans
        return [replace(plans.pop(row), input_row=position) for position, row in enumerate(inputs.rows)]

    def dry_run_settled(self, run: WriteRun, outcome: RecordOutcome) -> PlannedRow | None:
        """A row settled without a request: its plan (``unchanged``, ``refused``) as `build_inputs` made it,
        unless the duplicate-key policy settled it (then the shared plan: ``refused`` or ``superseded``)."""
        plan = run.facts.plans.pop(outcome.input_row, None)
        row = outcome.input_row if outcome.input_row is not None else -1
        key = run.duplicates.key_of.get(row)
        if key is not None and (run.duplicates.policy == "reject" or run.duplicates.superseded(row, key)):
            return None
        return plan

    def extra_plans(self, run: WriteRun) -> list[PlannedRow]:
        facts: SyncFacts = run.facts
        action = "refused" if facts.refusal else "archive"
        return [PlannedRow(-1, str(key), action, reason=facts.refusal) for key in facts.archive.index]

    # -- as rows settle, and at the end ----------------------------------------------------------
    def window_settled(self, run: WriteRun, first_row: int | None, frame: pd.DataFrame | None,
                       outcomes: list[RecordOutcome]) -> None:
        facts: SyncFacts = run.facts
        if facts.writer is None:  # nothing to record (no state_path, or a dry run): only let the rows go
            for outcome in outcomes:
                facts.rows.pop(outcome.input_row if outcome.input_row is not None else -1, None)
            return
        missing = [o.input_row for o in outcomes
                   if o.succeeded and o.input_row is not None and o.input_row not in facts.rows]
        if missing and frame is not None and first_row is not None:  # a window an earlier try finished
            prepared, _ = self._prepare(run, Window(-1, first_row, frame))
            facts.rows.update(prepared)
        state, now = facts.state, int(time.time() * 1000)
        ready = []
        for outcome in outcomes:
            number = outcome.input_row
            row = facts.rows.pop(number, None) if number is not None else None
            if number is None or row is None or not outcome.succeeded or run.duplicates.superseded(number, row.key):
                continue  # unchanged and carried over, or failed: a failed row keeps its previous entry
            ready.append((number, outcome, row))
        ready.sort(key=lambda item: item[0])
        positions = state.positions(row.key for _, _, row in ready) if state is not None else [-1] * len(ready)
        old_hashes = state.values("row_hash", positions) if state is not None else [None] * len(ready)
        columns: dict[str, list] = {"key": [], "hubspot_id": [], "row_hash": [], "property_hashes": [],
                                    "synced_at": []}
        for (_, outcome, row), position, old_hash in zip(ready, positions, old_hashes):
            if state is not None and position >= 0:
                if outcome.unchanged and old_hash == row.hash:
                    continue  # its entry is carried over as it is (`SyncState.kept`)
                state.rewritten[position] = True
            columns["key"].append(row.key)
            columns["hubspot_id"].append(outcome.hubspot_id)
            columns["row_hash"].append(row.hash)
            columns["property_hashes"].append(encode_hashes(row.hashes))
            columns["synced_at"].append(now)
        facts.writer.add_columns(columns)

    def finish(self, run: WriteRun, tally: Tally, failing: bool) -> None:
        """Mirror: archive the records this sync wrote whose key left the source (the guard passed in `start`).

        Not when the rows broke the failure policy: that run keeps the previous state, which must still
        list every record it owns (archived ones included) for the next run to see them."""
        facts: SyncFacts = run.facts
        if self.mode != "mirror" or facts.state is None or not len(facts.archive):
            return
        if failing:
            self.log.warning("sync: the rows broke the failure policy, so the %d records to archive are left as "
                             "they are (the state keeps them; the next run archives them)", len(facts.archive))
            return
        keys = [str(key) for key in facts.archive.index]
        ids = [str(value) for value in facts.archive["hubspot_id"]]
        self.log.info("sync: archiving %d records this sync wrote whose %s left the source", len(ids),
                      self.id_property)
        result = run.client.batch_archive(ids, batch_size=self.batch_size)
        positions = facts.state.positions(keys)
        for outcome in result.outcomes:
            key = keys[outcome.index]
            if outcome.succeeded:
                facts.state.archived[positions[outcome.index]] = True
                facts.archived += 1
            else:
                facts.archive_failures.append(FailureRow(
                    -1, key, outcome.status, outcome.category,
                    f"archiving appointment {ids[outcome.index]} ({self.id_property} {key!r}, no longer in the "
                    f"source) failed: {outcome.message}", outcome.context, outcome.correlation_id))
        tally.batches += result.batches
        tally.requests += result.requests
        tally.other_failures.extend(facts.archive_failures)
        for failure in facts.archive_failures[:20]:
            self.log.warning("%s", failure.message)

    def extra_summary(self, run: WriteRun) -> dict[str, Any]:
        facts: SyncFacts = run.facts
        return {"mode": self.mode, "compare": facts.compare, "archived": facts.archived,
                "archive_failed": len(facts.archive_failures), "state_path": self.state_path}

    def publish(self, run: WriteRun, result: dict[str, Any]) -> None:
        """The new state: this run's rows, and the previous entries no row rewrote and no archive removed."""
        facts: SyncFacts = run.facts
        if facts.writer is None:
            return
        if facts.state is not None:
            for table in facts.state.iter_kept():
                facts.writer.add_table(table)
        facts.writer.commit()
        self.log.info("sync: state of %d keys published to %s", facts.writer.rows, self.state_path)
        if facts.archive_failures:  # after the state, which keeps them: the next run tries them again
            raise AirflowException(f"sync: {len(facts.archive_failures)} of {len(facts.archive)} archives failed "
                                   f"(they stay in the state and the next run tries them again). Failure report: "
                                   f"{result.get('failures_path')}")
    def abandon(self, run: WriteRun) -> None:
        """The run failed: the new state is dropped, the previous one stays."""
        if isinstance(run.facts, SyncFacts) and run.facts.writer is not None:
            run.facts.writer.abort()
