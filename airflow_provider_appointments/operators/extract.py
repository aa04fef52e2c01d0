"""The extract operator: appointments to Parquet, CSV or JSON Lines, page by page with flat memory."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import AssetAlias, BaseOperator

from airflow_provider_appointments import DEFAULT_CONN_ID
from airflow_provider_appointments.api.client import AppointmentsClient
from airflow_provider_appointments.api.extraction import ExtractPlan, iter_everything, iter_window
from airflow_provider_appointments.api.timestamps import modified_filters, parse_moment, to_epoch_ms
from airflow_provider_appointments.errors import HubSpotError, HubSpotInputError
from airflow_provider_appointments.hooks.hubspot import HubSpotAppointmentsHook
from airflow_provider_appointments.operators.lineage import announce_assets, extract_lineage
from airflow_provider_appointments.operators.progress import Progress
from airflow_provider_appointments.records.formats import FORMATS, format_of
from airflow_provider_appointments.records.writers import ExtractWriter, read_extract

# HubSpot documents its search index as lagging writes by "a few seconds"; two minutes covers the
# slow days with room to spare, and is nothing against a daily or hourly schedule.
DEFAULT_SEARCH_LAG = 120.0
# Longer than any wait an on-time run of an hourly or daily schedule has; a window ending far in the
# future ("everything up to 2030") is a mistake to report, not a wait to sit through.
DEFAULT_MAX_SEARCH_WAIT = 3600.0
DEFERRED_AT = "search_wait_started_at"
EXTRACT_ASSET_ALIAS = "hubspot_appointments_extract"  # the alias the README suggests, when one is wanted

if TYPE_CHECKING:
    from airflow.sdk import Context


def check_window(after: datetime | None, before: datetime | None) -> None:
    """Refuse a window that can hold no record: it would succeed with 0 rows and hide the mistake."""
    if after is None or before is None or after < before:
        return
    if after == before:
        raise HubSpotInputError(
            f"modified_after and modified_before are both {after.isoformat()}: the window is empty. On Airflow 3 "
            "a cron schedule such as '@daily' uses CronTriggerTimetable, whose data interval has zero length "
            "(data_interval_start == data_interval_end). Schedule with "
            "CronDataIntervalTimetable('@daily', timezone='UTC') (or DeltaDataIntervalTimetable) to get real "
            "intervals, or pass explicit bounds")
    raise HubSpotInputError(f"modified_after ({after.isoformat()}) is after modified_before ({before.isoformat()}): "
                            "the window is inverted; swap the bounds")


def seconds(value: float | timedelta, name: str) -> float:
    """A duration given as seconds or a timedelta, never negative."""
    number = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if number < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return number


def check_wait(before: datetime, searchable_at: datetime, now: datetime, limit_s: float) -> float:
    """Seconds to wait until the window ending `before` is searchable; a wait past `limit_s` is refused."""
    wait = (searchable_at - now).total_seconds()
    if wait <= limit_s:
        return wait
    future = f"is {(before - now).total_seconds():.0f} s in the future" if before > now else "is recent"
    raise HubSpotInputError(
        f"the window ends {before.isoformat()}, which {future}: HubSpot's search index can be trusted for it "
        f"only from {searchable_at.isoformat()}, a wait of {wait:.0f} s, past max_search_wait ({limit_s:.0f} s). "
        "Give modified_before a moment in the past (or none: the window then ends search_lag ago), or raise "
        "max_search_wait")


class HubSpotAppointmentsExtractOperator(BaseOperator):
    """Extract appointments to Parquet (default), CSV or JSON Lines, page by page with flat memory.

    Without ``modified_after``/``modified_before`` every appointment is extracted: the list stream and
    keyset-paged searches over id ranges run at once, so both of HubSpot's read budgets are used.
    With them, only appointments whose ``hs_lastmodifieddate`` is in ``[modified_after,
    modified_before)`` (half-open: use ``{{ data_interval_start }}`` and ``{{ data_interval_end }}``
    with a timetable that has real intervals, such as ``CronDataIntervalTimetable``; Airflow 3's
    default cron timetable gives zero-length intervals), searched as concurrent sub-windows. An empty
    or inverted window fails the task before any request. With ``archived=True`` archived
    appointments are extracted instead (within the window by ``archivedAt`` when one is given).

    HubSpot's search index lags writes by a few seconds, so a window is not searched until its end
    is ``search_lag`` old: the task waits (``deferrable=True``: in the triggerer, holding no worker
    slot). A window without an end ends ``search_lag`` ago. After the extract, search's ``total`` for
    the window is compared with the rows written (a warning on mismatch, or a failure with
    ``fail_on_incomplete=True``).

    :param output_path: local path or URI (templated).
    :param modified_after: inclusive lower bound (templated).
    :param modified_before: exclusive upper bound (templated).
    :param properties: property columns; default every property the properties API lists.
    :param properties_with_history: properties whose change history becomes a nested column.
    :param associations: object types (e.g. ``["contacts"]``) whose ids become list columns.
    :param archived: extract archived appointments.
    :param file_format: ``parquet``, ``csv`` or ``jsonl``; default from the path's extension.
    :param search_lag: seconds (or a timedelta) a window's end must be in the past before it is searched.
    :param max_search_wait: the longest wait for the search lag (seconds or a timedelta; default one
        hour): a window whose end is searchable only later fails at once, naming its end and the wait.
    :param deferrable: wait for the search lag in the triggerer instead of sleeping in a worker slot.
    :param fail_on_incomplete: fail when the rows written differ from search's total for the window.
    :param search_streams: concurrent search streams (they share search's budget of 5 requests/s).
    :param asset_alias: also report each output file as an Airflow asset of its own through this alias
        (default None: not), e.g. ``"hubspot_appointments_extract"`` for a DAG scheduled on
        ``AssetAlias("hubspot_appointments_extract")``. Every ``Asset`` in ``outlets`` gets an event
        whose extra holds ``path``, ``records``, ``archived`` and the window, with no alias needed.
    :param return_dataframe: return the records as a DataFrame instead of the summary (small extracts).
    :param hubspot_conn_id: the HubSpot connection.

    Returns to XCom ``{"records", "pages", "path", "columns", "max_updated_at", "file_format",
    "modified_after", "modified_before", "archived", "search_total", "complete", "waited_for_search_s"}``.
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
        search_lag: float | timedelta = DEFAULT_SEARCH_LAG,
        max_search_wait: float | timedelta = DEFAULT_MAX_SEARCH_WAIT,
        deferrable: bool = False,
        fail_on_incomplete: bool = False,
        search_streams: int = 2,
        asset_alias: str | None = None,
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
        self.file_format = file_format or format_of(str(output_path), default="parquet")
        if self.file_format not in FORMATS:
            raise ValueError(f"file_format must be one of {FORMATS}, got {self.file_format!r}")
        lag = seconds(search_lag, "search_lag")
        self.search_lag_s = lag
        self.max_search_wait_s = seconds(max_search_wait, "max_search_wait")
        self.deferrable = deferrable
        self.fail_on_incomplete = fail_on_incomplete
        self.search_streams = max(1, int(search_streams))
        self.return_dataframe = return_dataframe
        self.hubspot_conn_id = hubspot_conn_id
        self.asset_alias = asset_alias
        if asset_alias:  # the file is known only once rendered: it is attached to the alias at run time
            self.outlets = [*self.outlets, AssetAlias(asset_alias)]
        self.announces = True  # asset events for this run's file (the to-SQL load announces its own)
        self.lineage: tuple | None = None
        self._connection: AppointmentsClient | None = None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: read HubSpot's appointments (with the extracted columns), wrote the output file."""
        return extract_lineage(*self.lineage) if self.lineage else None

    def execute(self, context: Context) -> Any:
        after, before = self._window()
        self._check_properties()
        if self.archived or (after is None and before is None):
            return self._extract(context, after, before, waited_s=0.0)
        now = datetime.now(timezone.utc)
        if before is None:  # an open window ends where search is complete
            before = now - timedelta(seconds=self.search_lag_s)
            check_window(after, before)
        searchable_at = before + timedelta(seconds=self.search_lag_s)
        wait = check_wait(before, searchable_at, now, self.max_search_wait_s)
        if wait > 0:
            self.log.info("the window ends %s; HubSpot's search index lags writes, so it is searched from %s "
                          "(in %.1f s)", before.isoformat(), searchable_at.isoformat(), wait)
            if self.deferrable:
                from airflow.providers.standard.triggers.temporal import DateTimeTrigger

                # Kept in XCom, not in the resume kwargs: `dag.test()` replaces those with the event.
                context["ti"].xcom_push(key=DEFERRED_AT, value=now.isoformat())
                self.defer(trigger=DateTimeTrigger(moment=searchable_at), method_name="execute_complete")
            time.sleep(wait)
        return self._extract(context, after, before, waited_s=max(wait, 0.0))

    def execute_complete(self, context: Context, event: Any = None, **kwargs: Any) -> Any:
        """Resumes after the triggerer waited out the search lag (the window had an end, so it is the same)."""
        after, before = self._window()
        ti = context["ti"]
        deferred_at = ti.xcom_pull(task_ids=ti.task_id, key=DEFERRED_AT, map_indexes=ti.map_index)
        waited = (datetime.now(timezone.utc) - datetime.fromisoformat(deferred_at)).total_seconds() \
            if deferred_at else 0.0
        return self._extract(context, after, before, waited_s=waited)

    def _window(self) -> tuple[datetime | None, datetime | None]:
        after = parse_moment(self.modified_after, "modified_after")
        before = parse_moment(self.modified_before, "modified_before")
        check_window(after, before)
        return after, before

    def _client(self) -> AppointmentsClient:
        if self._connection is None:
            self._connection = HubSpotAppointmentsHook(self.hubspot_conn_id).get_conn()
        return self._connection

    def _check_properties(self) -> None:
        """Named properties must exist, before any wait or page (one read of the schema, which the extract
        needs anyway)."""
        if self.properties or self.properties_with_history:
            schema = self._client().get_property_schema()
            schema.require_known(list(self.properties or []), "properties")
            schema.require_known(self.properties_with_history, "properties_with_history")

    def _extract(self, context: Context, after: datetime | None, before: datetime | None, waited_s: float) -> Any:
        client = self._client()
        schema = client.get_property_schema()
        self._check_properties()
        properties = list(self.properties or schema.names())
        # A full extract needs the id range anyway; its answer carries search's total too.
        bounds = client.id_bounds() if self._is_full(after, before) else None
        total = (bounds[2] if bounds else 0) if self._is_full(after, before) else \
            self._search_total(client, after, before)
        progress = Progress(self.log, "extract", total,
                            lambda: (client.stats().rate_limited, client.stats().retries))
        pages = 0
        # Written under a temporary name and published by close(): a failure leaves output_path as it was.
        with ExtractWriter(self.output_path, self.file_format, schema, properties, self.associations,
                           self.properties_with_history) as writer:
            for page in self._pages(client, properties, after, before, bounds):
                writer.write_page(page)
                pages += 1
                progress.add(len(page))
            complete = total is None or total == writer.written
            if not complete:
                message = (f"wrote {writer.written} appointments but search counts {total} in the window "
                           "(records written during the extract move between windows; a lasting difference "
                           "means records were missed)")
                if self.fail_on_incomplete:
                    raise HubSpotError(message)
                self.log.warning("%s", message)
            result = writer.close()
        progress.report()
        self.log.info("extracted %d appointments in %d pages to %s", result["records"], pages, result["path"])
        columns = [(name, str(schema.arrow_type(name)) if name in schema else "string") for name in result["columns"]]
        self.lineage = (client.settings.base_url, result["path"], columns, result["records"])
        if self.announces:
            window = {"records": result["records"], "archived": self.archived,
                      "modified_after": after.isoformat() if after else None,
                      "modified_before": before.isoformat() if before else None}
            announce_assets(context, self.outlets, self.asset_alias, {"path": result["path"], **window},
                            [(result["path"], window)])
        if self.return_dataframe:
            return read_extract(result["path"])
        return {**result, "pages": pages, "file_format": self.file_format,
                "modified_after": after.isoformat() if after else None,
                "modified_before": before.isoformat() if before else None, "archived": self.archived,
                "search_total": total, "complete": complete, "waited_for_search_s": round(waited_s, 3)}

    def _search_total(self, client: AppointmentsClient, after: datetime | None, before: datetime | None) -> int | None:
        """Search's count of what this extract should hold (None for archived extracts: search has none)."""
        if self.archived:
            return None
        filters = modified_filters(to_epoch_ms(after) if after else None, to_epoch_ms(before) if before else None)
        return client.search_total([{"filters": filters}] if filters else [])

    def _is_full(self, after: datetime | None, before: datetime | None) -> bool:
        return not self.archived and after is None and before is None

    def _pages(self, client: AppointmentsClient, properties: list[str], after: datetime | None,
               before: datetime | None, bounds: tuple[int, int, int] | None) -> Iterator[list[dict]]:
        if self.archived:
            for page in client.iter_appointments(properties=properties, archived=True,
                                                 properties_with_history=self.properties_with_history,
                                                 associations=self.associations):
                if after or before:
                    page = [r for r in page if _in_window(r.get("archivedAt") or r.get("updatedAt"), after, before)]
                yield page
        elif after is None and before is None:
            if bounds is not None:  # None: the account has no appointments
                yield from iter_everything(client, properties=properties, associations=self.associations,
                                           properties_with_history=self.properties_with_history,
                                           plan=ExtractPlan(search_streams=self.search_streams), bounds=bounds)
        else:
            assert before is not None
            yield from iter_window(client, after, before, properties=properties, associations=self.associations,
                                   properties_with_history=self.properties_with_history, streams=self.search_streams)


def _in_window(stamp: str | None, after: datetime | None, before: datetime | None) -> bool:
    moment = parse_moment(stamp, "archivedAt")
    if moment is None:
        return False
    return (after is None or moment >= after) and (before is None or moment < before)
