"""What the write operators share: windows of input rows → client batch calls → one outcome per row,
the duplicate-key policy, the failure report, the id map, checkpoints for resuming, the XCom summary
and the failure policy. The steps an operator declares are in `steps`; everything else runs here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from airflow.sdk import AssetAlias, BaseOperator
from airflow.sdk.definitions._internal.types import NOTSET, ArgNotSet
from airflow.sdk.exceptions import AirflowException

from airflow_provider_appointments import DEFAULT_CONN_ID
from airflow_provider_appointments.api.client import AppointmentsClient
from airflow_provider_appointments.api.results import (
    BATCH_LIMIT,
    BatchResult,
    at_input_rows,
)
from airflow_provider_appointments.hooks.hubspot import HubSpotAppointmentsHook
from airflow_provider_appointments.operators.checkpoint import (
    Checkpoint,
    WindowProgress,
    WindowResult,
    default_checkpoint_path,
    fingerprint,
    warn_if_not_shared,
)
from airflow_provider_appointments.operators.duplicates import DuplicateKeys, check_policy, find_duplicates
from airflow_provider_appointments.operators.lineage import announce_assets, write_lineage
from airflow_provider_appointments.operators.progress import Progress
from airflow_provider_appointments.operators.run import WriteRun, is_data, retry_run_start
from airflow_provider_appointments.operators.steps import (
    WriteSteps,
    as_flag,
    check_ambiguous,
    check_batch_size,
    check_ratio,
    check_source,
)
from airflow_provider_appointments.operators.tally import Tally, policy_breach, summary, warn_failures
from airflow_provider_appointments.operators.windows import (
    Window,
    WindowInputs,
    row_of,
)
from airflow_provider_appointments.records.readers import iter_record_frames
from airflow_provider_appointments.records.reports import (
    PlannedRow,
    write_failure_report,
    write_id_map,
    write_plan,
)
from airflow_provider_appointments.records.sql import SqlSource, materialize

if TYPE_CHECKING:
    from airflow.sdk import Context

# A window is what one checkpoint covers: enough chunks to keep every connection busy several
# times over (so checkpoint writes are rare), small enough that a retry redoes little.
CHUNKS_PER_CONNECTION = 4
REPORTS_ASSET_ALIAS = "hubspot_appointments_reports"


class HubSpotWriteOperator(WriteSteps, BaseOperator):
    """The shared run of the write operators; subclasses implement `build_inputs` and `send_inputs`.

    ``records`` is templated only when it is a reference (a path, a URI, an XCom argument): inline rows
    (a DataFrame, a list of dicts) are user data, never rendered by Jinja nor stored as rendered fields.

    Parameters every write operator takes (beyond each one's own):

    :param timezone: IANA time zone (``"Europe/Berlin"``) of naive datetimes, or ``{column: zone}``
        (default: UTC). A local time a DST change skips is refused per row; one it repeats too,
        unless ``ambiguous`` is ``"earliest"`` or ``"latest"``.
    :param value_mapping: ``{column: {value: replacement}}`` applied before the type's rules, e.g.
        ``{"status": {"cancelled": "CANCELED"}}`` (matched as text, case, spaces and underscores aside;
        ``None`` as a replacement makes the value missing). Enumerations also take an option's label.

    :param dry_run: validate and serialize every row as a real run would and read what exists, to
        report per row what would happen (``create``, ``update`` with the changed properties,
        ``unchanged``, ``archive``, ``associate``, ``refused`` with the reason); nothing is written.
        Templated: ``"{{ params.dry_run }}"`` renders as ``True``/``False``.
    :param dry_run_path: where the dry run's report goes (templated; default under
        ``$AIRFLOW_HOME/hubspot_reports/``).
    :param row_offset: the input's first row number in a larger original (a shard of a file), so
        reports and id maps number rows as the original does.
    :param asset_alias: also report the failure report and the id map as Airflow assets of their own
        through this alias (default None: not; e.g. ``hubspot_appointments_reports``). Every ``Asset`` in
        ``outlets`` gets an event whose extra holds the counts, ``failures_path`` and ``id_map_path``.
    :param checkpoint_path: folder or URI of this task's checkpoint (templated). By default one folder
        per task instance under ``[hubspot] checkpoint_base`` (default ``$AIRFLOW_HOME/hubspot_checkpoints``):
        each request is recorded as it is sent and answered, so a killed and retried task sends nothing
        twice. ``None`` turns checkpoints off (a retry then cannot know what the killed try sent).
    :param on_duplicate_keys: rows sharing a key (an id, a unique value, a pair): ``"reject"``
        (default; all of them fail ``DUPLICATE_INPUT_KEY``) or ``"last"`` (only the last is sent, the
        earlier ones are superseded by it).
    :param sql: instead of ``records``, a query (templated; a ``.sql`` file too) whose rows are the
        input, read through ``sql_conn_id`` in chunks (see `records.sql`). With a checkpoint, its
        answer is copied into the checkpoint's folder first, so a retry resumes on the same rows.
    :param sql_conn_id: an Airflow connection whose hook is a common-sql ``DbApiHook``.
    :param sql_parameters: bind parameters of ``sql`` (templated).
    """

    operation = "write"
    keeps_id_map = False
    template_fields: Sequence[str] = ("records", "failures_path", "id_map_path", "checkpoint_path", "column_mapping",
                                      "date_format", "dry_run_path", "sql", "sql_parameters", "timezone",
                                      "is_dry_run")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql"}
    ui_color = "#ff7a59"

    def __init__(
        self,
        *,
        records: Any = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        sql_parameters: Any = None,
        hubspot_conn_id: str = DEFAULT_CONN_ID,
        column_mapping: dict[str, str] | None = None,
        ignore_columns: Sequence[str] = (),
        clear_missing: bool = False,
        date_format: str | dict[str, str] | None = None,
        timezone: str | dict[str, str] | None = None,
        ambiguous: str = "raise",
        value_mapping: dict[str, dict[Any, Any]] | None = None,
        batch_size: int = BATCH_LIMIT,
        failures_path: str | None = None,
        id_map_path: str | None = None,
        checkpoint_path: str | None | ArgNotSet = NOTSET,
        on_duplicate_keys: str = "reject",
        max_failed_records: int = 0,
        max_failed_ratio: float | None = None,
        window_rows: int | None = None,
        row_offset: int = 0,
        dry_run: bool = False,
        dry_run_path: str | None = None,
        asset_alias: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_source(kwargs.get("task_id"), records, sql, sql_conn_id)
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.sql_parameters = sql_parameters
        self.records = None if is_data(records) else records
        self.inline_records = records if is_data(records) else None
        self.hubspot_conn_id = hubspot_conn_id
        self.column_mapping = column_mapping
        self.ignore_columns = list(ignore_columns)
        self.clear_missing = clear_missing
        self.date_format = date_format
        self.timezone = timezone
        self.ambiguous = check_ambiguous(ambiguous)
        self.value_mapping = value_mapping
        self.batch_size = check_batch_size(batch_size)
        self.failures_path = failures_path
        self.id_map_path = id_map_path
        self.checkpoint_path = checkpoint_path
        self.max_failed_records = max_failed_records
        self.max_failed_ratio = check_ratio(max_failed_ratio)
        self.on_duplicate_keys = check_policy(on_duplicate_keys)
        self.window_rows = window_rows
        self.row_offset = int(row_offset)
        # Not self.dry_run: BaseOperator.dry_run() is a method Airflow calls. A template is read once
        # rendered; anything else is checked now, so dry_run="False" is False and "nope" an error.
        self.is_dry_run = dry_run if isinstance(dry_run, str) and "{" in dry_run else as_flag(dry_run, "dry_run")
        self.dry_run_path = dry_run_path
        self.asset_alias = asset_alias
        if asset_alias:  # report paths are known only once rendered: attached to the alias at run time
            self.outlets = [*self.outlets, AssetAlias(asset_alias)]
        self._lineage: tuple[str, dict[str, Any]] | None = None  # the last run's result, for OpenLineage

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        if is_data(self.records):  # rows that arrived through XCom: data, not a rendered field
            self.inline_records, self.records = self.records, None

    @property
    def input_records(self) -> Any:
        """The input as given: rows, a reference, or the (rendered) query as a `SqlSource`."""
        if self.sql is not None:
            return SqlSource(str(self.sql).strip().rstrip(";"), str(self.sql_conn_id), self.sql_parameters)
        return self.inline_records if self.inline_records is not None else self.records

    def settings(self) -> dict[str, Any]:
        """Everything that changes what a window sends: a checkpoint is reused only when it matches."""
        return {"operation": self.operation, "batch_size": self.batch_size, "mapping": self.column_mapping,
                "ignore": self.ignore_columns, "clear": self.clear_missing, "dates": self.date_format,
                "duplicates": self.on_duplicate_keys, "timezone": self.timezone, "ambiguous": self.ambiguous,
                "values": {column: {str(k): v for k, v in mapping.items()} for column, mapping in
                           (self.value_mapping or {}).items()} if isinstance(self.value_mapping, dict) else None}

    # -- the shared run ------------------------------------------------------------------------
    def frames(self, run: WriteRun, chunk_rows: int) -> Iterator[tuple[int, pd.DataFrame]]:
        """The input in chunks, each with the row number of its first row in the original input."""
        for first_row, frame in iter_record_frames(run.source, chunk_rows=chunk_rows):
            yield first_row + self.row_offset, frame

    def execute(self, context: Context) -> dict[str, Any]:
        return self.write_with(HubSpotAppointmentsHook(self.hubspot_conn_id).get_conn(), context)

    def write_with(self, client: AppointmentsClient, context: Context) -> dict[str, Any]:
        """The write through `client` (an archive by search passes its search's: one schema read)."""
        # "{{ params.dry_run }}" renders as text "True"/"False"; an unrendered template is refused.
        self.is_dry_run = as_flag(self.is_dry_run, "dry_run")
        run = WriteRun(client, client.get_property_schema(), context, self.is_dry_run, source=self.input_records)
        checkpoint = None if self.is_dry_run else self._checkpoint(run)
        if checkpoint and (finished := checkpoint.finished()) is not None:
            self.log.info("%s already finished in an earlier try (checkpoint %s): nothing is sent again",
                          self.operation, checkpoint.path)
            checkpoint.clear()
            return finished
        window_rows = checkpoint.window_rows(self._window_rows(client)) if checkpoint else self._window_rows(client)
        scratch = None
        if isinstance(run.source, SqlSource):  # every pass (and a retry after a kill) reads the same rows
            if checkpoint is not None:
                # Requests in flight when an earlier try was killed: its retry must see exactly its rows.
                in_flight = bool(checkpoint.scan()[1])
                run.source = materialize(run.source, checkpoint.path, window_rows, reuse=in_flight)
                checkpoint = checkpoint.for_content(run.source.digest)
                how = "the copy the killed try made" if in_flight else "copied"
            else:  # without a checkpoint (or in a dry run), a copy for this try only
                scratch = tempfile.mkdtemp(prefix="hubspot-sql-source-")
                run.source = materialize(run.source, scratch, window_rows)
                how = "copied"
            self.log.info("%s: %d rows (%s, in %s)", run.source, run.source.rows, how, run.source.folder)
        try:
            return self._execute(run, checkpoint, window_rows)
        except BaseException:
            self.abandon(run)
            raise
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

    def _execute(self, run: WriteRun, checkpoint: Checkpoint | None, window_rows: int) -> dict[str, Any]:
        client = run.client
        run.facts = self.start(run)
        run.duplicates = self._duplicate_keys(run)
        self.keys_read(run)
        if self.is_dry_run:
            return self._dry_run(run)
        if checkpoint:
            done, unfinished = checkpoint.scan()
            if done or unfinished:
                self.log.info("resuming from checkpoint %s: %d window(s) already done; window(s) %s have requests "
                              "from the previous attempt, whose answered rows keep their outcome", checkpoint.path,
                              done, unfinished or "none")
        retry_since = retry_run_start(run.context)
        tally = Tally()
        keep_id_map = self.keeps_id_map and self.id_map_path is not None
        progress = self._progress(client)
        for number, (first_row, frame) in enumerate(self.frames(run, window_rows)):
            result = checkpoint.load(number) if checkpoint else None
            seeded = None
            if result is not None and any(self.resendable(o) for o in result.outcomes):
                # A finished window whose transient failures an Airflow retry should cure: send those again.
                seeded = WindowProgress(settled={row_of(o): o for o in result.outcomes if not self.resendable(o)},
                                        requests=result.requests, answered=result.batches)
                result = None
            if result is None:
                window = Window(number, first_row, frame, checkpoint=checkpoint)
                result = self._run_window(run, window, retry_since, seeded)
            tally.batches += result.batches
            tally.requests += result.requests
            settled = run.duplicates.settle(result.outcomes)
            tally.add(settled, keep_id_map)
            self.window_settled(run, first_row, frame, settled)
            progress.add(len(frame))
        settled = run.duplicates.settle([], last=True)
        tally.add(settled, keep_id_map)
        self.window_settled(run, None, None, settled)
        breach = policy_breach(tally, self.max_failed_records, self.max_failed_ratio)
        self.finish(run, tally, failing=breach is not None)
        return self._report(run, tally, checkpoint)

    def _checkpoint(self, run: WriteRun) -> Checkpoint | None:
        """This task instance's checkpoint: the given path, the default one, or none (``checkpoint_path=None``)."""
        path = self.checkpoint_path
        if isinstance(path, ArgNotSet):
            ti = run.context["ti"]
            path = default_checkpoint_path(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)
        if not path:
            self.log.warning("%s without a checkpoint (checkpoint_path=None): if this try is killed, a retry cannot "
                             "know which requests it sent%s", self.operation, self.unkeyed_risk)
            return None
        self.log.info("checkpoint: %s", path)
        warn_if_not_shared(str(path), self.log)
        settings = {**self.settings(), "row_offset": self.row_offset}  # the rows' numbers are in the records
        source = run.source.identity() if isinstance(run.source, SqlSource) else run.source
        return Checkpoint(str(path), fingerprint(source, settings))

    unkeyed_risk = ""

    def _duplicate_keys(self, run: WriteRun) -> DuplicateKeys:
        """The keys that repeat, found before anything is sent (a later row decides an earlier one's fate).
        Rows in memory are keyed as they are; a file is read once more, but only its key columns."""
        columns = self.key_columns()
        if not columns:  # rows without a key are never duplicates
            return DuplicateKeys(())

        def keyed() -> Iterator[tuple[int, list[str | None]]]:
            for first_row, frame in self._key_frames(run, columns):
                yield first_row + self.row_offset, self.row_keys(frame) or []

        return find_duplicates(keyed, lambda keys: self.read_keys(run, keys), self.on_duplicate_keys, self.key_name)

    def _key_frames(self, run: WriteRun, columns: list[str]) -> Iterator[tuple[int, pd.DataFrame]]:
        source = run.source
        if isinstance(source, pd.DataFrame):
            return iter([(0, source)])
        return iter_record_frames(source, chunk_rows=50_000, columns=columns)

    def _inputs(self, run: WriteRun, window: Window) -> WindowInputs:
        """The window's inputs, less the rows the duplicate-key policy holds back."""
        inputs = self.build_inputs(run, window)
        if not run.duplicates:
            return inputs
        keys = self.row_keys(window.frame) or []
        return inputs.held_back(lambda row: run.duplicates.held_back(row, keys[row - window.first_row]))

    def _window_rows(self, client: AppointmentsClient) -> int:
        return self.window_rows or self.batch_size * client.concurrency * CHUNKS_PER_CONNECTION

    def _progress(self, client: AppointmentsClient) -> Progress:
        records = self.input_records
        total = len(records) if is_data(records) else None
        return Progress(self.log, self.operation + (" (dry run)" if self.is_dry_run else ""), total,
                        lambda: (client.stats().rate_limited, client.stats().retries))

    def _dry_run(self, run: WriteRun) -> dict[str, Any]:
        """Validate and serialize every row as a real run would, read what exists, write nothing."""
        client = run.client
        planned: list[PlannedRow] = []
        progress = self._progress(client)
        for number, (first_row, frame) in enumerate(self.frames(run, self._window_rows(client))):
            window = Window(number, first_row, frame)
            inputs = self._inputs(run, window)
            plans = self.plan_inputs(run, inputs, window) if inputs.items else []
            planned += [replace(plan, input_row=inputs.rows[plan.input_row]) for plan in plans]
            planned += [self.dry_run_settled(run, o) or PlannedRow(
                row_of(o), o.key, "unchanged" if o.unchanged else "superseded" if o.succeeded else "refused",
                reason=o.message) for o in inputs.settled]
            progress.add(len(frame))
        planned.sort(key=lambda plan: plan.input_row)
        planned += self.extra_plans(run)
        path = self.dry_run_path or self._default_report_path(run.context, "dry_run")
        write_plan(path, planned)
        actions = dict(Counter(plan.action for plan in planned))
        self.log.info("%s dry run: %d records would be: %s; nothing was written. Report: %s", self.operation,
                      len(planned), ", ".join(f"{action} {count}" for action, count in sorted(actions.items())), path)
        return {"operation": self.operation, "dry_run": True, "records": len(planned), "actions": actions,
                "requests": client.stats().requests, "report_path": path}

    def _run_window(self, run: WriteRun, window: Window, retry_since: int | None,
                    progress: WindowProgress | None = None) -> WindowResult:
        """Send what of the window is not settled yet; every row ends with exactly one outcome."""
        if progress is None:
            progress = window.checkpoint.progress(window.number, self.resendable) if window.checkpoint \
                else WindowProgress()
        window = replace(window, in_flight=progress.in_flight,
                         resumed_since=progress.since if progress.since is not None else retry_since)
        inputs = self._inputs(run, window)
        if progress.settled:  # answered before the previous attempt stopped: never sent again
            inputs = inputs.without(set(progress.settled))
        sent = self.send_inputs(run, inputs, window) if inputs.items else BatchResult(self.operation)
        outcomes = at_input_rows(sent.outcomes, inputs.rows)
        result = WindowResult(sorted(outcomes + inputs.settled + list(progress.settled.values()),
                                     key=row_of), sent.batches + progress.answered,
                             sent.requests + progress.requests)
        if len({row_of(o) for o in result.outcomes}) != len(window.frame) or len(result.outcomes) != len(window.frame):
            raise RuntimeError(f"{self.operation}: {len(result.outcomes)} outcomes for {len(window.frame)} rows")
        if window.checkpoint:
            window.checkpoint.save(window.number, result)
        return result

    def _report(self, run: WriteRun, tally: Tally, checkpoint: Checkpoint | None) -> dict[str, Any]:
        context = run.context
        id_map_path = self.id_map_path if self.keeps_id_map else None
        failed = tally.failed or tally.other_failures
        failures_path = self.failures_path or (self._default_report_path(context, "failures") if failed else None)
        if failures_path is not None:
            write_failure_report(failures_path, sorted(tally.failures, key=lambda row: row.input_row)
                                 + tally.other_failures)
        if id_map_path is not None:
            write_id_map(id_map_path, sorted(tally.id_map))
        tally.requests += run.reads
        result = {**summary(self.operation, tally, failures_path, id_map_path), **self.extra_summary(run)}
        self._lineage = (run.client.settings.base_url, result)
        self._announce_reports(context, result)
        self.log.info("%s: %d records, %d succeeded (%d created, %d updated, %d unchanged), %d failed; "
                      "%d batches, %d requests", self.operation, result["records"], result["succeeded"],
                      result["created"], result["updated"], result["unchanged"], result["failed"], result["batches"],
                      result["requests"])
        warn_failures(self.log, tally.failures)
        breach = policy_breach(tally, self.max_failed_records, self.max_failed_ratio)
        if breach:
            raise AirflowException(f"{self.operation}: {breach}. Failure report: {failures_path}")
        self.publish(run, result)
        if checkpoint:
            checkpoint.finish(result)
            checkpoint.clear()
        return result

    def _announce_reports(self, context: Context, result: dict[str, Any]) -> None:
        """Asset events: the summary for every ``Asset`` in ``outlets``; with `asset_alias`, the failure
        report and the id map as assets of their own."""
        counts = {key: result[key] for key in ("operation", "records", "succeeded", "failed")}
        summary = {**counts, **{key: result.get(key) for key in ("created", "updated", "unchanged",
                                                                  "failures_path", "id_map_path")}}
        files = [(path, {**counts, "report": kind}) for kind, path in
                 (("failures", result["failures_path"]), ("id_map", result["id_map_path"])) if path]
        announce_assets(context, self.outlets, self.asset_alias, summary, files)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: read the input file or the tables of ``sql`` (a DataFrame or list has no dataset),
        wrote HubSpot's appointments and the reports, with the counts as facets."""
        if self._lineage is None:
            return None
        base_url, result = self._lineage
        source = self.input_records
        if isinstance(source, dict):
            source = source.get("path")
        path = str(source) if isinstance(source, (str, os.PathLike)) else None
        tables = source.lineage_tables() if isinstance(source, SqlSource) else []
        return write_lineage(base_url, self.operation, path, result,
                             [result.get("failures_path"), result.get("id_map_path")], input_tables=tables)

    def _default_report_path(self, context: Context, kind: str) -> str:
        home = os.environ.get("AIRFLOW_HOME", "~/airflow")
        ti = context["ti"]
        suffix = f"-{ti.map_index}" if ti.map_index is not None and ti.map_index >= 0 else ""
        run = str(ti.run_id).replace(":", "_").replace("+", "_")
        name = f"{ti.task_id}{suffix}.{kind}.parquet"
        return str(Path(home).expanduser() / "hubspot_reports" / ti.dag_id / run / name)


