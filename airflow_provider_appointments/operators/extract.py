"""The extract operator: appointments to Parquet, CSV or JSON Lines, page by page with flat memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_appointments import DEFAULT_CONN_ID
from airflow_provider_appointments.api.client import AppointmentsClient
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.hooks.hubspot import HubSpotAppointmentsHook
from airflow_provider_appointments.records.writers import FORMATS, ExtractWriter, read_extract

if TYPE_CHECKING:
    from airflow.sdk import Context


def parse_moment(value: Any, name: str = "moment") -> datetime | None:
    """An ISO 8601 string or datetime as an aware datetime (naive = UTC); `name` is for the error."""
    if value in (None, "", "None"):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise HubSpotInputError(f"{name} must be an ISO 8601 date or datetime (e.g. 2026-03-01T00:00:00+00:00 "
                                f"or {{{{ data_interval_start }}}}), got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


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


class HubSpotAppointmentsExtractOperator(BaseOperator):
    """Extract appointments to Parquet (default), CSV or JSON Lines, page by page with flat memory.

    Without ``modified_after``/``modified_before`` every appointment is listed; with them, only those
    whose ``hs_lastmodifieddate`` is in ``[modified_after, modified_before)`` (half-open, so consecutive
    scheduled runs neither miss nor repeat a record: use ``{{ data_interval_start }}`` and
    ``{{ data_interval_end }}`` with a timetable that has real intervals, such as
    ``CronDataIntervalTimetable``; Airflow 3's default cron timetable gives zero-length intervals). An
    empty or inverted window fails the task before any request. With ``archived=True`` archived
    appointments are extracted instead (within the window by ``archivedAt`` when one is given).

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
        self.file_format = file_format or {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}.get(suffix, "parquet")
        if self.file_format not in FORMATS:
            raise ValueError(f"file_format must be one of {FORMATS}, got {self.file_format!r}")
        self.return_dataframe = return_dataframe
        self.hubspot_conn_id = hubspot_conn_id

    def execute(self, context: Context) -> Any:
        after = parse_moment(self.modified_after, "modified_after")
        before = parse_moment(self.modified_before, "modified_before")
        check_window(after, before)
        client = HubSpotAppointmentsHook(self.hubspot_conn_id).get_conn()
        schema = client.get_property_schema()
        properties = list(self.properties or schema.names())
        writer = ExtractWriter(self.output_path, self.file_format, schema, properties, self.associations,
                               self.properties_with_history)
        pages = 0
        for page in self._pages(client, properties, after, before):
            writer.write_page(page)
            pages += 1
        result = writer.close()
        self.log.info("extracted %d appointments in %d pages to %s", result["records"], pages, result["path"])
        if self.return_dataframe:
            return read_extract(result["path"])
        return {**result, "pages": pages, "file_format": self.file_format,
                "modified_after": after.isoformat() if after else None,
                "modified_before": before.isoformat() if before else None, "archived": self.archived}

    def _pages(self, client: AppointmentsClient, properties: list[str], after: datetime | None,
               before: datetime | None) -> Iterator[list[dict]]:
        if self.archived or (after is None and before is None):
            for page in client.iter_appointments(properties=properties, archived=self.archived,
                                                 properties_with_history=self.properties_with_history,
                                                 associations=self.associations):
                if self.archived and (after or before):
                    page = [r for r in page if _in_window(r.get("archivedAt") or r.get("updatedAt"), after, before)]
                yield page
            return
        yield from client.iter_modified(after, before, properties=properties, associations=self.associations,
                                        properties_with_history=self.properties_with_history)


def _in_window(stamp: str | None, after: datetime | None, before: datetime | None) -> bool:
    moment = parse_moment(stamp, "archivedAt")
    if moment is None:
        return False
    return (after is None or moment >= after) and (before is None or moment < before)
