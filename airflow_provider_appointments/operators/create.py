"""The batch-create operator: creates that are never written twice, with a natural or a derived key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from airflow_provider_appointments.api.client import association_input
from airflow_provider_appointments.api.creates import check_on_existing
from airflow_provider_appointments.api.results import (
    AMBIGUOUS_WRITE,
    INVALID_INPUT,
    OBJECT_NOT_FOUND,
    BatchResult,
    RecordOutcome,
    settled_row,
)
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.operators._write import HubSpotWriteOperator
from airflow_provider_appointments.operators.linking import target_properties, window_targets, with_problems
from airflow_provider_appointments.operators.run import WriteRun
from airflow_provider_appointments.operators.steps import planned_write
from airflow_provider_appointments.operators.windows import Window, WindowInputs, local_failure, row_key
from airflow_provider_appointments.records.reports import PlannedRow

if TYPE_CHECKING:
    from airflow.sdk import Context


def idempotency_key(namespace: str, row: int, properties: dict[str, str]) -> str:
    """The same row of the same input in the same namespace always gets the same key."""
    content = json.dumps([namespace, row, properties], sort_keys=True, ensure_ascii=False)
    return "af1-" + hashlib.sha256(content.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class CreateFacts:
    """What a create learns before sending: the derived keys' namespace, whether the key property
    exists yet (a dry run does not create it), and the association type of each associated object type."""

    namespace: str = ""
    key_property_exists: bool = True
    association_types: dict[str, int] = field(default_factory=dict)


def default_namespace(context: Context) -> str:
    """One namespace per task instance: a retry or re-run of the same DAG run shares it; other runs do not."""
    ti = context["ti"]
    return f"{ti.dag_id}/{ti.task_id}/{ti.run_id}/{ti.map_index}"


class HubSpotAppointmentsBatchCreateOperator(HubSpotWriteOperator):
    """Create appointments from a DataFrame, a list of dicts or a Parquet/CSV/JSON Lines file.

    Nothing is created twice when each row has a unique key: either a natural one (``dedupe_property``)
    or one the operator derives (``idempotency_property``). A create whose answer was lost is then read
    back instead of replayed, the requests an interrupted attempt had in flight are reconciled on retry
    (records they created count as ``created``), and a row whose key already exists resolves to that
    record (``on_existing``). Without a key, the checkpoint (on by default) still makes a retry send
    nothing twice: the rows of requests in flight when the previous attempt was killed (at most
    ``concurrency × batch_size``) are reported ``AMBIGUOUS_WRITE`` and never sent again.

    :param records: the input (a path or URI is templated; inline rows are not).
    :param dedupe_property: a unique-value property every row carries (e.g. ``external_appointment_id``).
    :param idempotency_property: a unique-value text property (created when missing, which needs the
        ``crm.schemas.appointments.write`` scope) that receives a key derived from
        ``idempotency_namespace``, the row number and the row's values.
    :param idempotency_namespace: (templated) default ``<dag_id>/<task_id>/<run_id>/<map_index>``: a
        retry or re-run of the same DAG run writes nothing twice; another run creates its own records.
    :param on_existing: a row whose ``dedupe_property`` value already exists: ``"skip"`` (default;
        succeeded with the existing id, ``new=False``), ``"update"`` (its values are written to that
        record) or ``"fail"`` (``CONFLICT`` in the failure report).
    :param association_columns: ``{column: object type}``; each row is associated on create with the
        record whose id is in that column (default association type; an empty cell: none).
    :param to_object_id_property: the ``association_columns`` hold this unique property of their target
        (e.g. ``"email"`` of contacts), or ``{column: property}`` for some of them, not ids: the records
        are found by batch reads, and a value no record holds refuses its row, naming it.
    :param id_map_path: where to write the id map (input row, key, HubSpot id, new) (templated).
    :param failures_path: where to write the failure report (templated; Parquet or CSV).
    :param column_mapping: ``{column: property}`` for columns not named after their property.
    :param ignore_columns: input columns that are not properties.
    :param clear_missing: send empty strings for missing values (clears them) instead of leaving them out.
    :param date_format: strptime format of date/datetime columns that are not ISO 8601 (e.g.
        ``"%d/%m/%Y"``), or ``{column: format}``; ambiguous dates are refused without it.
    :param batch_size: inputs per request (at most 100).
    :param checkpoint_path: folder or URI of this task's checkpoint (default: one per task instance
        under ``[hubspot] checkpoint_base``); ``None`` turns it off.
    :param on_duplicate_keys: rows sharing a ``dedupe_property`` value: ``"reject"`` (default) or ``"last"``.
    :param max_failed_records: failures tolerated before the task fails (after writing the reports).
    :param max_failed_ratio: or the fraction of records allowed to fail.

    Returns to XCom ``{"operation": "create", "records", "succeeded", "failed", "created", "updated",
    "unchanged", "batches", "requests", "failures_path", "id_map_path"}``.
    """

    operation = "create"
    keeps_id_map = True
    template_fields: Sequence[str] = (*HubSpotWriteOperator.template_fields, "idempotency_namespace")

    def __init__(self, *, dedupe_property: str | None = None, idempotency_property: str | None = None,
                 idempotency_namespace: str | None = None, on_existing: str = "skip",
                 association_columns: dict[str, str] | None = None,
                 to_object_id_property: str | dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if dedupe_property and idempotency_property:
            raise HubSpotInputError("give dedupe_property (a natural key) or idempotency_property (a derived "
                                    "key), not both")
        check_on_existing(on_existing)
        self.dedupe_property = dedupe_property
        self.idempotency_property = idempotency_property
        self.idempotency_namespace = idempotency_namespace
        self.on_existing = on_existing
        self.association_columns = dict(association_columns or {})
        self.to_object_id_property = to_object_id_property
        self.target_properties = target_properties(self.association_columns, to_object_id_property)

    @property
    def unique_property(self) -> str | None:
        return self.dedupe_property or self.idempotency_property

    def start(self, run: WriteRun) -> CreateFacts:
        client, namespace, exists = run.client, "", True
        if self.idempotency_property:
            # A dry run only looks: a missing property means no row can exist yet.
            exists = client.ensure_property(
                self.idempotency_property, label="Airflow idempotency key", has_unique_value=True,
                create=not run.dry_run,
                description="Set by the Airflow HubSpot provider so a retried create is not written twice") is not None
            run.schema = client.get_property_schema()
            namespace = self.idempotency_namespace or default_namespace(run.context)
        if self.dedupe_property:
            run.schema.require_unique(self.dedupe_property, "dedupe_property")
        return CreateFacts(namespace, exists, {kind: client.default_association_type_id(kind)
                                               for kind in set(self.association_columns.values())})

    @property
    def key_name(self) -> str:  # type: ignore[override]
        return self.dedupe_property or "key"

    @property
    def unkeyed_risk(self) -> str:  # type: ignore[override]
        if self.unique_property:
            return ""
        return ("; without dedupe_property or idempotency_property, a retry after a kill creates every row of "
                "the killed try again")

    def resendable(self, outcome: RecordOutcome) -> bool:
        """With a key, a create whose answer was lost is read back before it is sent again: safe."""
        return super().resendable(outcome) or (bool(self.unique_property) and outcome.category == AMBIGUOUS_WRITE)

    def key_columns(self) -> list[str]:
        """The input column holding `dedupe_property` (through `column_mapping`)."""
        if not self.dedupe_property:
            return []
        mapping = self.column_mapping or {}
        return [next((source for source, target in mapping.items() if target == self.dedupe_property),
                     self.dedupe_property)]

    def row_keys(self, frame: pd.DataFrame) -> list[str | None] | None:
        """A natural key's value per row (a derived key is unique by construction)."""
        if not self.dedupe_property:
            return None
        column = self.key_columns()[0]
        if column not in frame.columns:
            return [None] * len(frame)
        return [row_key(value) for value in frame[column].tolist()]

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "dedupe": self.dedupe_property,
                "assoc": [self.association_columns, self.target_properties],
                "idempotency": [self.idempotency_property, self.idempotency_namespace], "existing": self.on_existing}

    def build_inputs(self, run: WriteRun, window: Window) -> WindowInputs:
        facts: CreateFacts = run.facts
        self.require_columns(window.frame, *self.association_columns)
        sendable, refused = self.serialize(run, window, extra_ignore=list(self.association_columns),
                                           key_column=self.dedupe_property)
        targets = window_targets(run, window, self.association_columns, self.target_properties)
        inputs = WindowInputs(settled=with_problems(refused, targets.problems))
        for row, properties in sendable:
            if row in targets.problems:
                inputs.settled.append(local_failure(row, row_key(properties.get(self.dedupe_property or "")),
                                                    OBJECT_NOT_FOUND, f"row {row}: {targets.problems[row]}"))
                continue
            if self.dedupe_property and not properties.get(self.dedupe_property):
                inputs.settled.append(local_failure(row, None, INVALID_INPUT, f"row {row}: {self.dedupe_property} "
                                                    "is empty; it is needed to create safely"))
                continue
            if self.idempotency_property:
                properties = {**properties, self.idempotency_property: idempotency_key(facts.namespace, row,
                                                                                       properties)}
            inputs.add(row, {"properties": properties,
                             "associations": [association_input(target, facts.association_types[kind])
                                              for kind, target in targets.pairs.get(row, [])]})
        if window.in_flight and not self.unique_property:
            # Without a key nobody can tell which of these the interrupted attempt created.
            return inputs.held_back(lambda row: settled_row(row, str(row), False, category=AMBIGUOUS_WRITE, message=(
                f"row {row} was in a request the previous attempt sent without learning HubSpot's answer; "
                "without dedupe_property or idempotency_property it cannot be known whether HubSpot created it, "
                "so it is not sent again")) if row in window.in_flight else None)
        return inputs

    def send_inputs(self, run: WriteRun, inputs: WindowInputs, window: Window) -> BatchResult:
        since = window.resumed_since
        if since is not None and self.idempotency_property:
            since = 0  # a record holding one of this run's keys was created by an attempt of this run
        result = run.client.batch_create(inputs.items, dedupe_property=self.unique_property, created_since=since,
                                     on_existing="skip" if self.idempotency_property else self.on_existing,
                                     batch_size=self.batch_size, observer=window.observer(inputs.rows))
        if not self.dedupe_property:  # the key users recognise is the row itself, or its derived key
            keys = [item["properties"].get(self.idempotency_property or "") or str(row)
                    for item, row in zip(inputs.items, inputs.rows)]
            result.outcomes = [replace(outcome, key=keys[outcome.index]) for outcome in result.outcomes]
        return result

    def plan_inputs(self, run: WriteRun, inputs: WindowInputs, window: Window) -> list[PlannedRow]:
        unique = self.unique_property
        keys = [str(item["properties"].get(unique or "")) for item in inputs.items] if unique else \
            [str(row) for row in inputs.rows]
        wanted = sorted({name for item in inputs.items for name in item["properties"]})
        found = run.client.read_by_unique(unique, keys, wanted) if unique and run.facts.key_property_exists else {}
        plans = []
        for position, (item, key) in enumerate(zip(inputs.items, keys)):
            record = found.get(key)
            if record is None:
                plans.append(PlannedRow(position, key, "create"))
                continue
            exists = f"{unique} {key!r} exists as appointment {record['id']}"
            if self.idempotency_property or self.on_existing == "skip":
                plans.append(PlannedRow(position, key, "unchanged", reason=exists))
            elif self.on_existing == "fail":
                plans.append(PlannedRow(position, key, "refused", reason=f"{exists} (on_existing='fail')"))
            else:
                plans.append(planned_write(run.schema, position, key, item["properties"], record))
        return plans
