"""The write operators: upsert, archive and associate appointments (batch-create is in `create.py`).

Each declares how a window of input rows becomes client inputs and how they are sent; the shared run in
`HubSpotWriteOperator` does the rest (windows, checkpoints, reports, the summary, the failure policy).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from airflow.sdk import Context

from airflow_provider_appointments.api.results import INVALID_INPUT, OBJECT_NOT_FOUND, BatchResult, RecordOutcome
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.hooks.hubspot import HubSpotAppointmentsHook
from airflow_provider_appointments.operators._write import HubSpotWriteOperator
from airflow_provider_appointments.operators.archive_search import (
    existence,
    plan_archive,
    search_groups,
    wait_for_search,
    write_found_ids,
)
from airflow_provider_appointments.operators.changes import compare_with_hubspot
from airflow_provider_appointments.operators.linking import (
    HeldJournal,
    associate_upserted,
    target_properties,
    window_targets,
    with_problems,
)
from airflow_provider_appointments.operators.run import WriteRun
from airflow_provider_appointments.operators.steps import KeyedByUniqueValue, planned_write
from airflow_provider_appointments.operators.windows import Window, WindowInputs, local_failure, row_key
from airflow_provider_appointments.records.reports import PlannedRow
from airflow_provider_appointments.records.writers import read_extract


class HubSpotAppointmentsUpsertOperator(KeyedByUniqueValue, HubSpotWriteOperator):  # type: ignore[override]
    """Create or update appointments by a unique property (``id_property``); replays are harmless.

    :param id_property: a unique-value property (e.g. ``external_appointment_id``).
    :param id_column: the input column holding the key (default: ``id_property``).
    :param on_duplicate_keys: ``"reject"`` (default): rows sharing a key all go to the failure report
        (``DUPLICATE_INPUT_KEY``) and none is sent; ``"last"``: only the last row of each key is sent
        and the earlier ones are superseded by it (same HubSpot id, not counted again).
    :param id_map_path: where to write input row → HubSpot id (templated).
    :param skip_unchanged: read the existing records by key first (one batch read per 100 rows) and
        send only the rows whose values differ, with only the changed properties (compared per
        property type); an unchanged row costs no write, keeps its ``hs_lastmodifieddate`` and counts
        as ``unchanged``. Default False: every row is written.
    :param association_columns: ``{column: object type}``: each upserted row is then associated with the
        record in that column (a batch association after each upsert request's window; an empty cell:
        none). A row whose association fails goes to the failure report saying what the upsert did.
    :param to_object_id_property: those columns hold this unique property of their target (e.g.
        ``"email"``), or ``{column: property}``, instead of ids; a value no record holds refuses its row.

    Other parameters as for `HubSpotAppointmentsBatchCreateOperator`. Returns to XCom
    ``{"operation": "upsert", "records", "succeeded", "failed", "created", "updated", "unchanged",
    "batches", "requests", "failures_path", "id_map_path"}``.
    """

    operation = "upsert"
    keeps_id_map = True

    def __init__(self, *, id_property: str, id_column: str | None = None, skip_unchanged: bool = False,
                 association_columns: dict[str, str] | None = None,
                 to_object_id_property: str | dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.id_property = id_property
        self.id_column = id_column or id_property
        self.skip_unchanged = skip_unchanged
        self.association_columns = dict(association_columns or {})
        self.to_object_id_property = to_object_id_property
        self.target_properties = target_properties(self.association_columns, to_object_id_property)
        if self.association_columns and skip_unchanged:
            raise HubSpotInputError(f"{self.task_id}: skip_unchanged does not associate the rows it skips; give "
                                    "association_columns or skip_unchanged, not both")

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "id": [self.id_property, self.id_column], "skip": self.skip_unchanged,
                "assoc": [self.association_columns, self.target_properties]}

    def start(self, run: WriteRun) -> None:
        run.schema.require_unique(self.id_property, "id_property")

    def build_inputs(self, run: WriteRun, window: Window) -> WindowInputs:
        self.require_columns(window.frame, *self.association_columns)
        sendable, refused = self.serialize(run, window, extra_ignore=[*self.key_column_ignored(self.column_mapping),
                                                                      *self.association_columns],
                                           key_column=self.id_column)
        targets = window_targets(run, window, self.association_columns, self.target_properties)
        inputs = WindowInputs(settled=with_problems(refused, targets.problems))
        keys = window.frame[self.id_column].tolist()
        for row, properties in sendable:
            key = row_key(keys[row - window.first_row])
            if key is None:
                problems = "; ".join(p for p in (f"{self.id_column} is empty", targets.problems.get(row)) if p)
                inputs.settled.append(local_failure(row, None, INVALID_INPUT, f"row {row}: {problems}"))
            elif row in targets.problems:
                inputs.settled.append(local_failure(row, key, OBJECT_NOT_FOUND, f"row {row}: {targets.problems[row]}"))
            elif self.association_columns:
                inputs.add(row, {"id": key, "properties": properties, "associate": targets.pairs.get(row, [])})
            else:
                inputs.add(row, {"id": key, "properties": properties})
        return self._only_changes(run, inputs, window) if self.skip_unchanged else inputs

    def _only_changes(self, run: WriteRun, inputs: WindowInputs, window: Window) -> WindowInputs:
        """`skip_unchanged`: unchanged rows settle without a write; changed rows keep only what changed."""
        compared = compare_with_hubspot(run, self.id_property, inputs.rows, inputs.items,
                                        created_since=window.resumed_since)
        kept = WindowInputs(settled=[*inputs.settled, *compared.unchanged.values(), *compared.failed.values()])
        for position, (row, item) in enumerate(zip(inputs.rows, inputs.items)):
            if position in compared.failed or position in compared.unchanged:
                continue
            if position in compared.changed:
                _, diff = compared.changed[position]
                kept.add(row, {"id": item["id"], "properties": {name: change["to"] for name, change in diff.items()}})
            else:
                kept.add(row, item)
        return kept

    def send_inputs(self, run: WriteRun, inputs: WindowInputs, window: Window) -> BatchResult:
        # On resume, records the interrupted attempt created still count as created.
        observer = window.observer(inputs.rows)
        if not self.association_columns:
            return run.client.batch_upsert(inputs.items, id_property=self.id_property, batch_size=self.batch_size,
                                           created_since=window.resumed_since, observer=observer)
        held = HeldJournal(observer) if observer else None  # answers recorded once associated too
        result = run.client.batch_upsert(inputs.items, id_property=self.id_property, batch_size=self.batch_size,
                                         created_since=window.resumed_since, observer=held)
        result = associate_upserted(run, result, inputs.items, self.batch_size)
        if held:
            held.release(result.outcomes)
        return result

    def plan_inputs(self, run: WriteRun, inputs: WindowInputs, window: Window) -> list[PlannedRow]:
        keys = [str(item["id"]) for item in inputs.items]
        wanted = sorted({name for item in inputs.items for name in item["properties"]})
        found = run.client.read_by_unique(self.id_property, keys, wanted)
        plans = []
        for position, (item, key) in enumerate(zip(inputs.items, keys)):
            record = found.get(key)
            if record is None:
                plans.append(PlannedRow(position, key, "create"))
            else:
                plans.append(planned_write(run.schema, position, key, item["properties"], record))
        return plans


FOUND_BY_SEARCH = "<the ids filter_groups finds>"


class HubSpotAppointmentsArchiveOperator(HubSpotWriteOperator):
    """Archive (move to HubSpot's recycling bin) the appointments whose ids are in ``id_column``.

    HubSpot answers 204 even for ids that do not exist, so by default the ids are read first (one
    batch read per 100 ids, about a third more requests): ids that do not exist go to the failure
    report as ``OBJECT_NOT_FOUND``; ids already archived succeed (the state asked for holds), which
    also makes a retry or re-run converge. ``verify_exists=False`` skips the reads. A read HubSpot
    refuses keeps HubSpot's own category and message.

    Instead of ``records``, ``filter_groups`` (search's ``filterGroups``) and/or ``modified_after`` /
    ``modified_before`` (a window on ``hs_lastmodifieddate``, as the extract's) archive what the search
    finds, keyset-paged past search's 10,000-result cap; ``dry_run=True`` reports them without archiving.

    :param id_column: the column of appointment ids (default ``id``).
    :param verify_exists: check the ids before archiving (default True).
    :param filter_groups: search filter groups, e.g. ``[{"filters": [{"propertyName": "hs_appointment_status",
        "operator": "EQ", "value": "CANCELED"}]}]`` (templated; at most five filters per group with the window).
    :param modified_after: only appointments last modified at or after this moment (templated).
    :param modified_before: only appointments last modified before this moment (templated).
    :param on_duplicate_keys: a repeated id: ``"reject"`` (default; its rows fail ``DUPLICATE_INPUT_KEY``)
        or ``"last"`` (archived once; the earlier rows share that outcome).

    Returns to XCom ``{"operation": "archive", "records", "succeeded", "failed", "created", "updated",
    "unchanged", "batches", "requests", "failures_path", "id_map_path"}``.
    """

    operation = "archive"
    template_fields: Sequence[str] = (*HubSpotWriteOperator.template_fields, "filter_groups", "modified_after",
                                      "modified_before")

    def __init__(self, *, id_column: str = "id", verify_exists: bool = True, filter_groups: list[dict] | None = None,
                 modified_after: Any = None, modified_before: Any = None, **kwargs: Any) -> None:
        self.searches = bool(filter_groups or modified_after or modified_before)
        if self.searches:
            if kwargs.get("records") is not None or kwargs.get("sql") is not None:
                raise HubSpotInputError(f"{kwargs.get('task_id')}: give records (or sql), or filter_groups and a "
                                        "window to search, not both")
            kwargs["records"] = FOUND_BY_SEARCH  # the search's ids, found when the task runs
            id_column = "id"
        super().__init__(**kwargs)
        self.id_column = id_column
        self.verify_exists = verify_exists
        self.filter_groups = filter_groups
        self.modified_after = modified_after
        self.modified_before = modified_before

    def execute(self, context: Context) -> dict[str, Any]:
        """With filter_groups or a window, the appointments the search finds (keyset-paged, past 10,000)."""
        if not self.searches:
            return super().execute(context)
        groups = search_groups(self.filter_groups, self.modified_after, self.modified_before)
        client = HubSpotAppointmentsHook(self.hubspot_conn_id).get_conn()
        # A misspelled property is refused with suggestions before the wait, not as the search's 400.
        client.get_property_schema().require_known(
            [item["propertyName"] for group in groups for item in group["filters"]], "filter_groups")
        wait_for_search(self.log, self.modified_before)
        with tempfile.TemporaryDirectory(prefix="hubspot-archive-search-") as folder:
            path = f"{folder}/found_ids.parquet"
            found = write_found_ids(client, groups, path)
            self.log.info("archive: the search found %d appointments to archive", found)
            self.records = path
            try:
                return self.write_with(client, context)
            finally:
                self.records = FOUND_BY_SEARCH

    @property
    def key_name(self) -> str:  # type: ignore[override]
        return self.id_column

    def key_columns(self) -> list[str]:
        return [self.id_column]

    def row_keys(self, frame: pd.DataFrame) -> list[str | None]:
        return self.column_keys(frame, self.id_column)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "id": self.id_column, "verify": self.verify_exists}

    def build_inputs(self, run: WriteRun, window: Window) -> WindowInputs:
        self.require_columns(window.frame, self.id_column)
        inputs = WindowInputs()
        for position, value in enumerate(window.frame[self.id_column].tolist()):
            key, row = row_key(value), window.row(position)
            if key is None:
                inputs.settled.append(local_failure(row, None, INVALID_INPUT,
                                                    f"row {row}: {self.id_column} is empty"))
            else:
                inputs.add(row, key)
        return inputs

    def plan_inputs(self, run: WriteRun, inputs: WindowInputs, window: Window) -> list[PlannedRow]:
        return plan_archive(run.client, inputs.items)

    def send_inputs(self, run: WriteRun, inputs: WindowInputs, window: Window) -> BatchResult:
        client = run.client
        if not self.verify_exists:
            return client.batch_archive(inputs.items, batch_size=self.batch_size,
                                        observer=window.observer(inputs.rows))
        found = existence(client, inputs.items)
        result = BatchResult(self.operation)
        for position, outcome in found.settled.items():
            result.outcomes.append(
                RecordOutcome(position, outcome.key, True, hubspot_id=outcome.key, unchanged=True)
                if outcome.succeeded else replace(outcome, index=position, message=(
                    f"appointment {outcome.key} does not exist (HubSpot would answer 204 all the same)"))
                if outcome.category == OBJECT_NOT_FOUND else replace(outcome, index=position))
        sent = client.batch_archive([inputs.items[i] for i in found.active], batch_size=self.batch_size,
                                    observer=window.observer([inputs.rows[i] for i in found.active]))
        result.outcomes += [replace(outcome, index=found.active[outcome.index]) for outcome in sent.outcomes]
        result.batches = found.batches + sent.batches
        result.requests = found.requests + sent.requests
        return result


class HubSpotAppointmentsAssociateOperator(HubSpotWriteOperator):
    """Associate appointments with contacts, companies or deals (associating twice is harmless).

    Each row names ``appointment_id`` (or ``appointment_key``, resolved through a batch-create
    ``id_map``), the target's id (``to_object_id_column``), and optionally its object type
    (``to_object_type_column``, else ``to_object_type``) and ``association_type_id`` (else the
    default type from HubSpot's labels endpoint).

    :param to_object_type: object type for rows without a type column (e.g. ``contacts``).
    :param id_map: path of an id map written by the batch-create operator (templated).
    :param appointment_key: column holding the key the id map knows (e.g. ``external_appointment_id``).
    :param to_object_id_property: ``to_object_id_column`` holds this unique property of the target
        (e.g. ``email`` of contacts), not its id: ids are found by batch reads on the target object, and
        a value no record holds fails its row naming it.

    Returns to XCom ``{"operation": "associate", "records", "succeeded", "failed", "created",
    "updated", "unchanged", "batches", "requests", "failures_path", "id_map_path"}``.
    """

    operation = "associate"
    template_fields: Sequence[str] = (*HubSpotWriteOperator.template_fields, "id_map")

    def __init__(
        self,
        *,
        to_object_type: str | None = None,
        appointment_id_column: str = "appointment_id",
        to_object_id_column: str = "to_object_id",
        to_object_type_column: str = "to_object_type",
        association_type_id_column: str = "association_type_id",
        id_map: str | None = None,
        appointment_key: str | None = None,
        to_object_id_property: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.to_object_id_property = to_object_id_property
        if id_map and not appointment_key:
            raise HubSpotInputError("id_map needs appointment_key: the column whose values the id map knows")
        self.to_object_type = to_object_type
        self.appointment_id_column = appointment_id_column
        self.to_object_id_column = to_object_id_column
        self.to_object_type_column = to_object_type_column
        self.association_type_id_column = association_type_id_column
        self.id_map = id_map
        self.appointment_key = appointment_key

    key_name = "pair"

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "target_property": self.to_object_id_property}

    def key_columns(self) -> list[str]:
        return [self.appointment_key or self.appointment_id_column, self.to_object_type_column,
                self.to_object_id_column]

    def row_keys(self, frame: pd.DataFrame) -> list[str | None]:
        """A pair is the appointment (id or key) and the target's object type and id."""
        values = [frame[column].tolist() if column in frame.columns else [None] * len(frame)
                  for column in self.key_columns()]
        keys: list[str | None] = []
        for source, kind, target in zip(*values):
            source_key, target_key = row_key(source), row_key(target)
            # What the client keys a pair by (and HubSpot's answer names): appointment and target, not
            # the association type, so rows that differ only in type are one pair under the policy too.
            keys.append(None if source_key is None or target_key is None else
                        f"{source_key}->{row_key(kind) or self.to_object_type}:{target_key}")
        return keys

    def start(self, run: WriteRun) -> dict[str, str]:
        """The id map's appointment ids by key (empty without ``id_map``)."""
        if not self.id_map:
            return {}
        mapping = read_extract(self.id_map)
        return {str(key): str(hubspot_id) for key, hubspot_id in zip(mapping["input_key"], mapping["hubspot_id"])
                if hubspot_id is not None}

    def build_inputs(self, run: WriteRun, window: Window) -> WindowInputs:
        frame, ids_by_key = window.frame, run.facts
        source_column = self.appointment_key or self.appointment_id_column
        self.require_columns(frame, source_column, self.to_object_id_column)
        if self.to_object_type is None:
            self.require_columns(frame, self.to_object_type_column)
        inputs = WindowInputs()
        targets = self._find_targets(run, frame)
        for position in range(len(frame)):
            row = window.row(position)
            source = row_key(frame[source_column].iloc[position])
            appointment_id = ids_by_key.get(source or "") if self.appointment_key else source
            target = row_key(frame[self.to_object_id_column].iloc[position])
            kind = self.to_object_type if self.to_object_type_column not in frame.columns else \
                (row_key(frame[self.to_object_type_column].iloc[position]) or self.to_object_type)
            if not appointment_id:
                reason = (f"{self.appointment_key} {source!r} is not in the id map (was it created?)"
                          if self.appointment_key else f"{self.appointment_id_column} is empty")
                inputs.settled.append(local_failure(row, source, INVALID_INPUT, f"row {row}: {reason}"))
                continue
            if not target or not kind:
                inputs.settled.append(local_failure(
                    row, f"{appointment_id}->{target}", INVALID_INPUT,
                    f"row {row}: {self.to_object_id_column} or the object type is empty"))
                continue
            if self.to_object_id_property:  # a natural key: its record's id, found below for the window
                target, unknown = self._resolved(targets, kind, target)
                if unknown:
                    inputs.settled.append(local_failure(row, f"{appointment_id}->{target}", OBJECT_NOT_FOUND,
                                                        f"row {row}: {unknown}"))
                    continue
            item: dict[str, Any] = {"appointment_id": appointment_id, "to_object_id": target}
            type_id = row_key(frame[self.association_type_id_column].iloc[position]) \
                if self.association_type_id_column in frame.columns else None
            if type_id and not type_id.isdigit():
                inputs.settled.append(local_failure(row, f"{appointment_id}->{target}", INVALID_INPUT,
                                                    f"row {row}: {self.association_type_id_column} {type_id!r} is not "
                                                    "an association type id (a whole number)"))
                continue
            if type_id:
                item["association_type_id"] = int(type_id)
            inputs.add(row, (kind, item))
        return inputs

    def _find_targets(self, run: WriteRun, frame: pd.DataFrame) -> dict[tuple[str, str], tuple[str | None, str | None]]:
        """With `to_object_id_property`: the window's target values looked up per object type, once each:
        (object type, value) → (record id, None) or (None, why not found)."""
        targets: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        if not self.to_object_id_property:
            return targets
        kinds = [row_key(value) or self.to_object_type for value in frame[self.to_object_type_column]] \
            if self.to_object_type_column in frame.columns else [self.to_object_type] * len(frame)
        wanted: dict[str, set[str]] = {}
        for kind, value in zip(kinds, frame[self.to_object_id_column].tolist()):
            if kind and (key := row_key(value)):
                wanted.setdefault(kind, set()).add(key)
        for kind, values in wanted.items():
            found, missing, requests = run.client.find_object_ids(kind, self.to_object_id_property, sorted(values))
            run.reads += requests
            targets.update({(kind, value): (record_id, None) for value, record_id in found.items()})
            targets.update({(kind, value): (None, reason) for value, reason in missing.items()})
        return targets

    def _resolved(self, targets: dict[tuple[str, str], tuple[str | None, str | None]], kind: str,
                  value: str) -> tuple[str, str | None]:
        """(the target's id, None), or (the value, why no record holds it)."""
        record_id, reason = targets.get((kind, value), (None, f"no {kind} record with "
                                                              f"{self.to_object_id_property} {value!r}"))
        return (record_id, None) if record_id else (value, reason)

    def plan_inputs(self, run: WriteRun, inputs: WindowInputs, window: Window) -> list[PlannedRow]:
        return [PlannedRow(position, f"{item['appointment_id']}->{item['to_object_id']}", "associate")
                for position, (_, item) in enumerate(inputs.items)]

    def send_inputs(self, run: WriteRun, inputs: WindowInputs, window: Window) -> BatchResult:
        groups: dict[str, list[int]] = {}
        for position, (kind, _) in enumerate(inputs.items):
            groups.setdefault(kind, []).append(position)
        result = BatchResult(self.operation)
        for kind, positions in groups.items():
            sent = run.client.batch_associate([inputs.items[i][1] for i in positions], to_object_type=kind,
                                          batch_size=self.batch_size,
                                          observer=window.observer([inputs.rows[i] for i in positions]))
            result.outcomes += [replace(outcome, index=positions[outcome.index]) for outcome in sent.outcomes]
            result.batches += sent.batches
            result.requests += sent.requests
        return result
