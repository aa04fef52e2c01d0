"""The archive operator's other input: the appointments a search finds, instead of a list of ids.

The search is keyset-paged by id (`AppointmentsClient.iter_search_all`), so it is not capped at
search's 10,000 results, and its ids are written to a Parquet file page by page (flat memory), which
the archive then reads as it reads any input. A retry searches again: what an earlier try archived
is no longer found, so the retry archives the rest.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_appointments.api.client import AppointmentsClient
from airflow_provider_appointments.api.timestamps import modified_filters, parse_moment, to_epoch_ms
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.operators.extract import (
    DEFAULT_MAX_SEARCH_WAIT,
    DEFAULT_SEARCH_LAG,
    check_wait,
    check_window,
)

# HubSpot allows five filters per group; the keyset paging adds one (hs_object_id GT ...).
MAX_OWN_FILTERS = 5
_IDS = pa.schema([("id", pa.string())])


def check_filter_groups(filter_groups: Any) -> list[dict]:
    """Search's ``filterGroups`` as given (a list of ``{"filters": [...]}``), checked before any request."""
    if not isinstance(filter_groups, Sequence) or isinstance(filter_groups, (str, bytes)) or not filter_groups:
        raise HubSpotInputError("filter_groups must be a non-empty list of {'filters': [...]} as HubSpot's search "
                                f"takes them, got {filter_groups!r}")
    for number, group in enumerate(filter_groups):
        filters = group.get("filters") if isinstance(group, Mapping) else None
        if not isinstance(filters, Sequence) or not filters:
            raise HubSpotInputError(f"filter_groups[{number}] must be {{'filters': [...]}} with at least one filter, "
                                    f"got {group!r}")
        for item in filters:
            if not isinstance(item, Mapping) or not item.get("propertyName") or not item.get("operator"):
                raise HubSpotInputError(f"filter_groups[{number}]: each filter needs propertyName and operator, "
                                        f"got {item!r}")
    return [dict(group) for group in filter_groups]


def search_groups(filter_groups: Any, modified_after: Any, modified_before: Any) -> list[dict]:
    """The groups to search: each given group, within the ``hs_lastmodifieddate`` window if one is given."""
    after = parse_moment(modified_after, "modified_after")
    before = parse_moment(modified_before, "modified_before")
    check_window(after, before)
    window = modified_filters(to_epoch_ms(after) if after else None, to_epoch_ms(before) if before else None)
    groups = check_filter_groups(filter_groups) if filter_groups else [{"filters": []}]
    if not window and not filter_groups:
        raise HubSpotInputError("archive by search needs filter_groups or a modified_after/modified_before window")
    searched = [{**group, "filters": [*group["filters"], *window]} for group in groups]
    for number, group in enumerate(searched):
        if len(group["filters"]) > MAX_OWN_FILTERS:
            raise HubSpotInputError(f"filter_groups[{number}] has {len(group['filters'])} filters with the window; "
                                    f"at most {MAX_OWN_FILTERS} (the keyset paging adds one of HubSpot's six)")
    return searched


def write_found_ids(client: AppointmentsClient, groups: list[dict], path: str) -> int:
    """Every id the search finds, into a Parquet file at `path` (one column ``id``); how many."""
    found = 0
    with pq.ParquetWriter(path, _IDS) as writer:
        for page in client.iter_search_all(groups):
            writer.write_table(pa.table({"id": [str(record["id"]) for record in page]}, schema=_IDS))
            found += len(page)
    return found


def wait_for_search(log: Any, modified_before: Any) -> None:
    """A window ending moments ago is searched once HubSpot's index holds its last writes (as the extract
    does), or appointments modified in its last seconds would be missed by this run and the next."""
    before = parse_moment(modified_before, "modified_before")
    if before is None:
        return
    now = datetime.now(timezone.utc)
    wait = check_wait(before, before + timedelta(seconds=DEFAULT_SEARCH_LAG), now, DEFAULT_MAX_SEARCH_WAIT)
    if wait > 0:
        log.info("archive: the window ends %s; HubSpot's search index lags writes, so it is searched in %.1f s",
                 before.isoformat(), wait)
        time.sleep(wait)
