"""Operators for HubSpot CRM appointments: extract, batch-create, upsert, archive, associate.

They are thin: arguments are checked in ``__init__``, input rows are read in windows, serialized and
sent through `HubSpotAppointmentsHook`, and every input row ends in exactly one place: succeeded, or
the failure report.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from airflow_provider_appointments import DEFAULT_CONN_ID
from airflow_provider_appointments.api.results import BATCH_LIMIT, RecordOutcome
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.hooks.hubspot import HubSpotAppointmentsHook
from airflow_provider_appointments.operators._write import (
    Checkpoint,
    Tally,
    check_batch_size,
    duplicate_positions,
    fingerprint,
    local_failure,
    policy_breach,
    shift,
    summary,
    write_reports,
)
from airflow_provider_appointments.records.readers import iter_record_frames
from airflow_provider_appointments.records.serialization import serialize_frame
from airflow_provider_appointments.records.writers import FORMATS, ExtractWriter, read_extract

if TYPE_CHECKING:
    from airflow.sdk import Context


def _parse_moment(value: Any) -> datetime | None:
    if value in (None, "", "None"):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _key(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    if text.endswith(".0") and text[:-2].isdigit():  # ids that pandas read as floats
        text = text[:-2]
    return text or None


class HubSpotAppointmentsExtractOperator(BaseOperator):
    """Extract appointments to Parquet (default), CSV or JSON Lines, page by page with flat memory.

    Without ``modified_after``/``modified_before`` every appointment is listed; with them, only those
    whose ``hs_lastmodifieddate`` is in ``[modified_after, modified_before)`` (half-open, so consecutive
    scheduled runs neither miss nor repeat a record: use ``{{ data_interval_start }}`` and
    ``{{ data_interval_end }}``). With ``archived=True`` archived appointments are extracted instead
    (within the window by ``archivedAt`` when one is given).

    :param output_path: local path or URI (templated).
    :param modified_after: inclusive lower bound (templated).
    :param modified_before: exclusive upper bound (templated).
    :param properties: property columns; default every property the properties API lists.
    :param properties_with_history: properties whose change history becomes a nested column.
    :param associations: object types (e.g. ``["contacts"]``) whose ids become list columns.
    :param archived: extract archived appointments.
    :param file_format: ``parquet``, ``csv`` or ``jsonl``; default from the path's extension.
    :param return_dataframe: return the records as a DataFrame instead of the summary (small extracts).
    :param hubspot_conn_id: the HubSpot connection.

    Returns to XCom ``{"records", "pages", "path", "columns", "max_updated_at", "file_format",
    "modified_after", "modified_before", "archived"}``.
    """

    template_fields: Sequence[str] = ("output_path", "modified_after", "modified_before", "properties")
    ui_color = "#ff7a59"

    def __init__(
        self,
        *,
        output_path: str,
        modified_after: str | datetime | None = None,
        modified_before: str | datetime | None = None,
        properties: Sequence[str] | None = None,
        properties_with_history: Sequence[str] | None = None,
        associations: Sequence[str] | None = None,
        archived: bool = False,
        file_format: str | None = None,
        return_dataframe: bool = False,
        hubspot_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.output_path = output_path
        self.modified_after = modified_after
        self.modified_before = modified_before
        self.properties = properties
        self.properties_with_history = list(properties_with_history or [])
        self.associations = list(associations or [])
        self.archived = archived
        suffix = Path(str(output_path).split("?")[0]).suffix.lstrip(".").lower()
        self.file_format = file_format or {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}.get(suffix, "parquet")
        if self.file_format not in FORMATS:
            raise ValueError(f"file_format must be one of {FORMATS}, got {self.file_format!r}")
        self.return_dataframe = return_dataframe
        self.hubspot_conn_id = hubspot_conn_id

    def execute(self, context: Context) -> Any:
        hook = HubSpotAppointmentsHook(self.hubspot_conn_id)
        schema = hook.get_property_schema()
        properties = list(self.properties or schema.names())
        after, before = _parse_moment(self.modified_after), _parse_moment(self.modified_before)
        writer = ExtractWriter(self.output_path, self.file_format, schema, properties, self.associations,
                               self.properties_with_history)
        pages = 0
        for page in self._pages(hook, properties, after, before):
            writer.write_page(page)
            pages += 1
        result = writer.close()
        self.log.info("extracted %d appointments in %d pages to %s", result["records"], pages, result["path"])
        if self.return_dataframe:
            return read_extract(result["path"])
        return {**result, "pages": pages, "file_format": self.file_format,
                "modified_after": after.isoformat() if after else None,
                "modified_before": before.isoformat() if before else None, "archived": self.archived}

    def _pages(self, hook: HubSpotAppointmentsHook, properties: list[str], after: datetime | None,
               before: datetime | None) -> Any:
        if self.archived or (after is None and before is None):
            for page in hook.iter_appointments(properties=properties, properties_with_history=self.properties_with_history,
                                               associations=self.associations, archived=self.archived):
                if self.archived and (after or before):
                    page = [r for r in page if _in_window(r.get("archivedAt") or r.get("updatedAt"), after, before)]
                yield page
            return
        # Search returns neither associations nor history: complete each page with batch reads.
        for page in hook.iter_modified(after, before, properties=properties):
            ids = [record["id"] for record in page]
            for kind in self.associations:
                linked = hook.read_associations(ids, kind)
                for record in page:
                    record.setdefault("associations", {})[kind] = {"results": [{"id": i} for i in linked.get(record["id"], [])]}
            if self.properties_with_history:
                history = {r["id"]: r.get("propertiesWithHistory") for r in hook.batch_read(
                    ids, properties_with_history=self.properties_with_history).records}
                for record in page:
                    record["propertiesWithHistory"] = history.get(record["id"]) or {}
            yield page


def _in_window(stamp: str | None, after: datetime | None, before: datetime | None) -> bool:
    moment = _parse_moment(stamp)
    if moment is None:
        return False
    return (after is None or moment >= after) and (before is None or moment < before)


class _HubSpotWriteOperator(BaseOperator):
    """Shared machinery of the write operators; subclasses implement `_send_window`."""

    operation = "write"
    keeps_id_map = False
    template_fields: Sequence[str] = ("records", "failures_path", "id_map_path", "checkpoint_path", "column_mapping")
    ui_color = "#ff7a59"

    def __init__(
        self,
        *,
        records: Any,
        hubspot_conn_id: str = DEFAULT_CONN_ID,
        column_mapping: dict[str, str] | None = None,
        ignore_columns: Sequence[str] = (),
        clear_missing: bool = False,
        batch_size: int = BATCH_LIMIT,
        failures_path: str | None = None,
        id_map_path: str | None = None,
        checkpoint_path: str | None = None,
        max_failed_records: int = 0,
        max_failed_ratio: float | None = None,
        window_rows: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.records = records
        self.hubspot_conn_id = hubspot_conn_id
        self.column_mapping = column_mapping
        self.ignore_columns = list(ignore_columns)
        self.clear_missing = clear_missing
        self.batch_size = check_batch_size(batch_size)
        self.failures_path = failures_path
        self.id_map_path = id_map_path
        self.checkpoint_path = checkpoint_path
        if max_failed_ratio is not None and not 0 <= float(max_failed_ratio) <= 1:
            raise HubSpotInputError(f"max_failed_ratio must be between 0 and 1, got {max_failed_ratio!r}")
        self.max_failed_records = max_failed_records
        self.max_failed_ratio = None if max_failed_ratio is None else float(max_failed_ratio)
        self.window_rows = window_rows

    # -- what subclasses provide ---------------------------------------------------------------
    def _send_window(self, hook: HubSpotAppointmentsHook, first_row: int, frame: pd.DataFrame) -> tuple[list[RecordOutcome], int, int]:
        """Send one window of rows; return one outcome per row (indexed by input row), batches, requests."""
        raise NotImplementedError

    def _prepare(self, hook: HubSpotAppointmentsHook) -> None:
        """Checks and passes over the whole input before anything is sent."""

    def _settings(self) -> dict[str, Any]:
        return {"operation": self.operation, "batch_size": self.batch_size, "mapping": self.column_mapping,
                "ignore": self.ignore_columns, "clear": self.clear_missing}

    # -- the shared run ------------------------------------------------------------------------
    def _default_report_path(self, context: Context, kind: str) -> str:
        home = os.environ.get("AIRFLOW_HOME", "~/airflow")
        ti = context["ti"]
        suffix = f"-{ti.map_index}" if ti.map_index >= 0 else ""
        run = str(ti.run_id).replace(":", "_").replace("+", "_")
        return str(Path(home).expanduser() / "hubspot_reports" / ti.dag_id / run / f"{ti.task_id}{suffix}.{kind}.parquet")

    def execute(self, context: Context) -> dict[str, Any]:
        hook = HubSpotAppointmentsHook(self.hubspot_conn_id)
        self._schema = hook.get_property_schema()
        self._prepare(hook)
        window = self.window_rows or self.batch_size * max(hook.concurrency, 1) * 4
        checkpoint = Checkpoint(self.checkpoint_path, fingerprint(self.records, self._settings())) \
            if self.checkpoint_path else None
        tally = Tally()
        resumed = 0
        for number, (first_row, frame) in enumerate(iter_record_frames(self.records, chunk_rows=window)):
            saved = checkpoint.load(number) if checkpoint else None
            if saved is not None:
                outcomes, batches, requests = saved
                resumed += 1
            else:
                outcomes, batches, requests = self._send_window(hook, first_row, frame)
                if len(outcomes) != len(frame):
                    raise RuntimeError(f"{self.operation}: {len(outcomes)} outcomes for {len(frame)} rows")
                if checkpoint:
                    checkpoint.save(number, outcomes, batches, requests)
            tally.batches += batches
            tally.requests += requests
            tally.add(self._finalize(outcomes), self.keeps_id_map and self.id_map_path is not None)
        tally.add(self._finalize([], last=True), self.keeps_id_map and self.id_map_path is not None)
        if resumed:
            self.log.info("resumed from checkpoint: %d window(s) were already done", resumed)
        failures_path = self.failures_path or (self._default_report_path(context, "failures") if tally.failed else None)
        write_reports(tally, failures_path, self.id_map_path if self.keeps_id_map else None)
        result = summary(self.operation, tally, failures_path, self.id_map_path if self.keeps_id_map else None)
        self.log.info("%s: %d records, %d succeeded (%d created, %d updated), %d failed; %d batches, %d requests",
                      self.operation, result["records"], result["succeeded"], result["created"], result["updated"],
                      result["failed"], result["batches"], result["requests"])
        for row in tally.failures[:20]:
            self.log.warning("row %s (%s) failed: %s %s", row.input_row, row.input_key, row.category, row.message)
        breach = policy_breach(tally, self.max_failed_records, self.max_failed_ratio)
        if breach:
            raise AirflowException(f"{self.operation}: {breach}. Failure report: {failures_path}")
        if checkpoint:
            checkpoint.clear()
        return result

    def _finalize(self, outcomes: list[RecordOutcome], last: bool = False) -> list[RecordOutcome]:
        """Outcomes ready to count; `last` is the call after the final window."""
        return outcomes

    def _serialize(self, first_row: int, frame: pd.DataFrame, extra_ignore: Sequence[str] = (),
                   key_column: str | None = None) -> tuple[list[dict], list[int], list[RecordOutcome]]:
        """Rows → properties; returns (properties of sendable rows, their input rows, failures of the rest)."""
        serialized = serialize_frame(frame, self._schema, column_mapping=self.column_mapping, clear_missing=self.clear_missing,
                                     ignore_columns=[*self.ignore_columns, *extra_ignore], first_row=first_row)
        sendable, rows, failures = [], [], []
        for position, properties in enumerate(serialized.rows):
            if position in serialized.errors:
                key = _key(frame[key_column].iloc[position]) if key_column in frame.columns else None
                failures.append(local_failure(first_row + position, key, "INVALID_INPUT", serialized.errors[position]))
            else:
                sendable.append(properties)
                rows.append(first_row + position)
        return sendable, rows, failures

    def _require_columns(self, frame: pd.DataFrame, *columns: str) -> None:
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise HubSpotInputError(f"{self.task_id}: input has no column {', '.join(map(repr, missing))} "
                                    f"(columns: {', '.join(map(str, frame.columns))})")


class HubSpotAppointmentsBatchCreateOperator(_HubSpotWriteOperator):
    """Create appointments from a DataFrame, a list of dicts or a Parquet/CSV/JSON Lines file.

    :param records: the input (templated: an upstream path can flow in through XCom).
    :param dedupe_property: a unique property every row carries (e.g. ``external_appointment_id``):
        a create whose answer was lost is then reconciled instead of replayed, so nothing is created
        twice; without it such rows are reported as ``AMBIGUOUS_WRITE`` failures.
    :param association_columns: ``{column: object type}``; each row is associated on create with the
        record whose id is in that column (default association type).
    :param id_map_path: where to write the id map (input row, key, new HubSpot id) (templated).
    :param failures_path: where to write the failure report (templated; Parquet or CSV).
    :param column_mapping: ``{column: property}`` for columns not named after their property.
    :param ignore_columns: input columns that are not properties.
    :param clear_missing: send empty strings for missing values (clears them) instead of leaving them out.
    :param batch_size: inputs per request (at most 100).
    :param checkpoint_path: directory or URI of per-window checkpoints, so a retried task resumes.
    :param max_failed_records: failures tolerated before the task fails (after writing the reports).
    :param max_failed_ratio: or the fraction of records allowed to fail.

    Returns to XCom ``{"operation": "create", "records", "succeeded", "failed", "created", "updated",
    "batches", "requests", "failures_path", "id_map_path"}``.
    """

    operation = "create"
    keeps_id_map = True

    def __init__(self, *, dedupe_property: str | None = None, association_columns: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dedupe_property = dedupe_property
        self.association_columns = dict(association_columns or {})

    def _prepare(self, hook: HubSpotAppointmentsHook) -> None:
        if self.dedupe_property and self.dedupe_property not in self._schema.unique_properties():
            raise HubSpotInputError(f"dedupe_property {self.dedupe_property!r} is not a unique-value property; "
                                    f"unique properties: {self._schema.unique_properties()}")
        self._association_types = {column: hook.default_association_type_id(kind)
                                   for column, kind in self.association_columns.items()}

    def _settings(self) -> dict[str, Any]:
        return {**super()._settings(), "dedupe": self.dedupe_property, "assoc": self.association_columns}

    def _send_window(self, hook: HubSpotAppointmentsHook, first_row: int, frame: pd.DataFrame) -> tuple[list[RecordOutcome], int, int]:
        self._require_columns(frame, *self.association_columns)
        properties, rows, failures = self._serialize(first_row, frame, extra_ignore=list(self.association_columns),
                                                     key_column=self.dedupe_property)
        inputs, input_rows = [], []
        for props, row in zip(properties, rows):
            associations = []
            for column, type_id in self._association_types.items():
                target = _key(frame[column].iloc[row - first_row])
                if target:
                    category = "HUBSPOT_DEFINED" if type_id < 1000 else "USER_DEFINED"
                    associations.append({"to": {"id": target}, "types": [{"associationCategory": category, "associationTypeId": type_id}]})
            if self.dedupe_property and not props.get(self.dedupe_property):
                failures.append(local_failure(row, None, "INVALID_INPUT",
                                              f"row {row}: {self.dedupe_property} is empty; it is needed to create safely"))
                continue
            inputs.append({"properties": props, "associations": associations})
            input_rows.append(row)
        result = hook.batch_create(inputs, dedupe_property=self.dedupe_property, batch_size=self.batch_size)
        outcomes = shift(result.outcomes, input_rows)
        if not self.dedupe_property:  # the key users recognise is the row itself
            outcomes = [replace(outcome, key=str(outcome.index)) for outcome in outcomes]
        return sorted(outcomes + failures, key=lambda o: o.index), result.batches, result.requests


class HubSpotAppointmentsUpsertOperator(_HubSpotWriteOperator):
    """Create or update appointments by a unique property (``id_property``); replays are harmless.

    :param id_property: a unique-value property (e.g. ``external_appointment_id``).
    :param id_column: the input column holding the key (default: ``id_property``).
    :param on_duplicate_keys: ``"reject"`` (default): rows sharing a key all go to the failure report
        (``DUPLICATE_INPUT_KEY``) and none is sent; ``"last"``: only the last row of each key is sent
        and the earlier ones take its outcome.
    :param id_map_path: where to write input row → HubSpot id (templated).

    Other parameters as for `HubSpotAppointmentsBatchCreateOperator`. Returns to XCom
    ``{"operation": "upsert", "records", "succeeded", "failed", "created", "updated", "batches",
    "requests", "failures_path", "id_map_path"}``.
    """

    operation = "upsert"
    keeps_id_map = True

    def __init__(self, *, id_property: str, id_column: str | None = None, on_duplicate_keys: str = "reject",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if on_duplicate_keys not in ("reject", "last"):
            raise HubSpotInputError(f"on_duplicate_keys must be 'reject' or 'last', got {on_duplicate_keys!r}")
        self.id_property = id_property
        self.id_column = id_column or id_property
        self.on_duplicate_keys = on_duplicate_keys

    def _settings(self) -> dict[str, Any]:
        return {**super()._settings(), "id": [self.id_property, self.id_column, self.on_duplicate_keys]}

    def _prepare(self, hook: HubSpotAppointmentsHook) -> None:
        unique = self._schema.unique_properties()
        if self.id_property not in unique:
            raise HubSpotInputError(f"id_property {self.id_property!r} is not a unique-value property; "
                                    f"unique properties: {unique}")
        keys = []
        for first_row, frame in iter_record_frames(self.records, chunk_rows=50_000):
            self._require_columns(frame, self.id_column)
            keys.extend((first_row + position, _key(value)) for position, value in enumerate(frame[self.id_column].tolist()))
        self._duplicates, self._last_row = duplicate_positions(iter(keys))
        self._shared: dict[str, RecordOutcome] = {}
        self._waiting: list[RecordOutcome] = []

    def _send_window(self, hook: HubSpotAppointmentsHook, first_row: int, frame: pd.DataFrame) -> tuple[list[RecordOutcome], int, int]:
        mapped_to_id = (self.column_mapping or {}).get(self.id_column, self.id_column) == self.id_property
        extra = [] if mapped_to_id else [self.id_column]
        properties, rows, failures = self._serialize(first_row, frame, extra_ignore=extra, key_column=self.id_column)
        inputs, input_rows = [], []
        for props, row in zip(properties, rows):
            key = _key(frame[self.id_column].iloc[row - first_row])
            if key is None:
                failures.append(local_failure(row, None, "INVALID_INPUT", f"row {row}: {self.id_column} is empty"))
            elif key in self._duplicates and self.on_duplicate_keys == "reject":
                others = [r for r in self._duplicates[key] if r != row][:10]
                failures.append(local_failure(row, key, "DUPLICATE_INPUT_KEY",
                                              f"row {row}: {self.id_property} {key!r} also appears in rows {others}"))
            elif key in self._duplicates and self._last_row[key] != row:
                failures.append(RecordOutcome(row, key, True, message=f"superseded by row {self._last_row[key]}"))
            else:
                inputs.append({"id": key, "properties": props})
                input_rows.append(row)
        result = hook.batch_upsert(inputs, id_property=self.id_property, batch_size=self.batch_size)
        outcomes = shift(result.outcomes, input_rows)
        return sorted(outcomes + failures, key=lambda o: o.index), result.batches, result.requests

    def _finalize(self, outcomes: list[RecordOutcome], last: bool = False) -> list[RecordOutcome]:
        """With ``on_duplicate_keys="last"`` earlier rows take the outcome of their key's last row,
        which may come in a later window: until then they wait here."""
        if self.on_duplicate_keys != "last" or not self._duplicates:
            return outcomes
        ready = []
        for outcome in outcomes:
            if outcome.key in self._last_row and self._last_row[outcome.key] == outcome.index:
                self._shared[outcome.key] = outcome
            if outcome.succeeded and (outcome.message or "").startswith("superseded"):
                self._waiting.append(outcome)
            else:
                ready.append(outcome)
        still_waiting = []
        for outcome in self._waiting:
            final = self._shared.get(outcome.key)
            if final is not None:
                ready.append(replace(final, index=outcome.index, message=outcome.message if final.succeeded else final.message))
            elif last:  # cannot happen when the input is read twice the same way; never drop a row
                ready.append(replace(outcome, succeeded=False, category="INVALID_INPUT",
                                     message=f"{outcome.message}, whose outcome is unknown"))
            else:
                still_waiting.append(outcome)
        self._waiting = still_waiting
        return ready


class HubSpotAppointmentsArchiveOperator(_HubSpotWriteOperator):
    """Archive (move to HubSpot's recycling bin) the appointments whose ids are in ``id_column``.

    HubSpot answers 204 even for ids that do not exist; with ``verify_exists=True`` the ids are read
    first and those that do not exist (or are already archived) go to the failure report as
    ``OBJECT_NOT_FOUND`` (one extra request per batch).

    :param id_column: the column of appointment ids (default ``id``).
    :param verify_exists: check the ids before archiving.

    Returns to XCom ``{"operation": "archive", "records", "succeeded", "failed", "created", "updated",
    "batches", "requests", "failures_path", "id_map_path"}``.
    """

    operation = "archive"

    def __init__(self, *, id_column: str = "id", verify_exists: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.id_column = id_column
        self.verify_exists = verify_exists

    def _send_window(self, hook: HubSpotAppointmentsHook, first_row: int, frame: pd.DataFrame) -> tuple[list[RecordOutcome], int, int]:
        self._require_columns(frame, self.id_column)
        ids, rows, failures = [], [], []
        for position, value in enumerate(frame[self.id_column].tolist()):
            key = _key(value)
            if key is None:
                failures.append(local_failure(first_row + position, None, "INVALID_INPUT",
                                              f"row {first_row + position}: {self.id_column} is empty"))
            else:
                ids.append(key)
                rows.append(first_row + position)
        batches = requests = 0
        if self.verify_exists and ids:
            read = hook.batch_read(ids)
            batches, requests = read.batches, read.requests
            missing = {outcome.index for outcome in read.outcomes if not outcome.succeeded}
            for outcome in read.outcomes:
                if not outcome.succeeded:
                    failures.append(replace(outcome, index=rows[outcome.index],
                                            message=f"appointment {outcome.key} does not exist or is already archived"))
            ids = [key for position, key in enumerate(ids) if position not in missing]
            rows = [row for position, row in enumerate(rows) if position not in missing]
        result = hook.batch_archive(ids, batch_size=self.batch_size)
        outcomes = shift(result.outcomes, rows)
        return sorted(outcomes + failures, key=lambda o: o.index), batches + result.batches, requests + result.requests


class HubSpotAppointmentsAssociateOperator(_HubSpotWriteOperator):
    """Associate appointments with contacts, companies or deals.

    Each row names ``appointment_id`` (or ``appointment_key``, resolved through a batch-create
    ``id_map``), the target's id (``to_object_id_column``), and optionally its object type
    (``to_object_type_column``, else ``to_object_type``) and ``association_type_id`` (else the
    default type from HubSpot's labels endpoint).

    :param to_object_type: object type for rows without a type column (e.g. ``contacts``).
    :param id_map: path of an id map written by the batch-create operator (templated).
    :param appointment_key: column holding the key the id map knows (e.g. ``external_appointment_id``).

    Returns to XCom ``{"operation": "associate", "records", "succeeded", "failed", "created",
    "updated", "batches", "requests", "failures_path", "id_map_path"}``.
    """

    operation = "associate"
    template_fields: Sequence[str] = (*_HubSpotWriteOperator.template_fields, "id_map")

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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if id_map and not appointment_key:
            raise HubSpotInputError("id_map needs appointment_key: the column whose values the id map knows")
        self.to_object_type = to_object_type
        self.appointment_id_column = appointment_id_column
        self.to_object_id_column = to_object_id_column
        self.to_object_type_column = to_object_type_column
        self.association_type_id_column = association_type_id_column
        self.id_map = id_map
        self.appointment_key = appointment_key

    def _prepare(self, hook: HubSpotAppointmentsHook) -> None:
        self._ids_by_key: dict[str, str] = {}
        if self.id_map:
            mapping = read_extract(self.id_map)
            self._ids_by_key = {str(k): str(v) for k, v in zip(mapping["input_key"], mapping["hubspot_id"]) if v is not None}

    def _send_window(self, hook: HubSpotAppointmentsHook, first_row: int, frame: pd.DataFrame) -> tuple[list[RecordOutcome], int, int]:
        source_column = self.appointment_key or self.appointment_id_column
        self._require_columns(frame, source_column, self.to_object_id_column)
        if self.to_object_type is None:
            self._require_columns(frame, self.to_object_type_column)
        groups: dict[str, tuple[list[dict], list[int]]] = {}
        failures = []
        for position in range(len(frame)):
            row = first_row + position
            source = _key(frame[source_column].iloc[position])
            appointment_id = self._ids_by_key.get(source or "") if self.appointment_key else source
            target = _key(frame[self.to_object_id_column].iloc[position])
            kind = self.to_object_type if self.to_object_type_column not in frame.columns else \
                (_key(frame[self.to_object_type_column].iloc[position]) or self.to_object_type)
            if not appointment_id:
                reason = (f"{self.appointment_key} {source!r} is not in the id map (was it created?)"
                          if self.appointment_key else f"{self.appointment_id_column} is empty")
                failures.append(local_failure(row, source, "INVALID_INPUT", f"row {row}: {reason}"))
                continue
            if not target or not kind:
                failures.append(local_failure(row, f"{appointment_id}->{target}", "INVALID_INPUT",
                                              f"row {row}: {self.to_object_id_column} or the object type is empty"))
                continue
            item = {"appointment_id": appointment_id, "to_object_id": target}
            if self.association_type_id_column in frame.columns:
                type_id = _key(frame[self.association_type_id_column].iloc[position])
                if type_id:
                    item["association_type_id"] = int(type_id)
            inputs, rows = groups.setdefault(kind, ([], []))
            inputs.append(item)
            rows.append(row)
        outcomes, batches, requests = list(failures), 0, 0
        for kind, (inputs, rows) in groups.items():
            result = hook.batch_associate(inputs, to_object_type=kind, batch_size=self.batch_size)
            outcomes.extend(shift(result.outcomes, rows))
            batches += result.batches
            requests += result.requests
        return sorted(outcomes, key=lambda o: o.index), batches, requests
