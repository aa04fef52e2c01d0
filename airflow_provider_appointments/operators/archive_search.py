"""The archive operator's checks: which ids exist (HubSpot answers 204 for any id), and its other
input, the appointments a search finds instead of a list of ids.

The search is keyset-paged by id (`AppointmentsClient.iter_search_all`), so it is not capped at
search's 10,000 results, and its ids are written to a Parquet file page by page (flat memory), which
the archive then reads as it reads any input. A retry searches again: what an earlier try archived
is no longer found, so the retry archives the rest.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_appointments.api.client import AppointmentsClient
from airflow_provider_appointments.api.results import OBJECT_NOT_FOUND, BatchResult, RecordOutcome
from airflow_provider_appointments.api.timestamps import modified_filters, parse_moment, to_epoch_ms
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.operators.extract import (
    DEFAULT_MAX_SEARCH_WAIT,
    DEFAULT_SEARCH_LAG,
    check_wait,
    check_window,
)
from airflow_provider_appointments.records.reports import PlannedRow

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


@dataclass(frozen=True)
class _Existence:
    """Where archive's ids stand: positions of active ones, and the outcome of the rest (succeeded:
    already archived; ``OBJECT_NOT_FOUND``: no such appointment; else the read's own failure)."""

    active: list[int]
    settled: dict[int, RecordOutcome]
    batches: int
    requests: int


def existence(client: AppointmentsClient, ids: list[str]) -> _Existence:
    """Two batch reads: the ids as active records, then the ones HubSpot did not find as archived records.
    A read that failed for another reason (a refused batch, a lasting 5xx) keeps its own outcome."""
    active = client.batch_read(ids)
    failed = {outcome.index: outcome for outcome in active.outcomes if not outcome.succeeded}
    missing = [index for index, outcome in failed.items() if outcome.category == OBJECT_NOT_FOUND]
    archived = client.batch_read([ids[i] for i in missing], archived=True) if missing else BatchResult("read")
    settled = {index: outcome for index, outcome in failed.items() if index not in missing}
    for index, outcome in zip(missing, archived.outcomes):
        settled[index] = outcome if outcome.succeeded or outcome.category == OBJECT_NOT_FOUND else \
            replace(outcome, index=index)
    return _Existence([outcome.index for outcome in active.outcomes if outcome.succeeded], settled,
                      active.batches + archived.batches, active.requests + archived.requests)


def plan_archive(client: AppointmentsClient, ids: list[str]) -> list[PlannedRow]:
    """Archive's dry run: ids that exist would be archived, archived ones stay, unknown ones are refused."""
    found = existence(client, ids)
    plans = []
    for position, key in enumerate(ids):
        outcome = found.settled.get(position)
        if outcome is None:
            plans.append(PlannedRow(position, key, "archive"))
        elif outcome.succeeded:
            plans.append(PlannedRow(position, key, "unchanged", reason="already archived"))
        elif outcome.category == OBJECT_NOT_FOUND:
            plans.append(PlannedRow(position, key, "refused", reason=f"appointment {key} does not exist"))
        else:
            plans.append(PlannedRow(position, key, "refused", reason=f"{outcome.category}: {outcome.message}"))
    return plans
