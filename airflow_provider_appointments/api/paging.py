"""Paging as small strategy objects: a paginator reads its cursor from each answer (`update_state`)
and writes it on the next request (`update_request`), so the loop that walks pages is written once
(`paginate`) and no endpoint handles ``after`` itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_appointments.api.timestamps import MODIFIED, modified_filters, modified_ms
from airflow_provider_appointments.errors import HubSpotError

SEARCH_RESULT_CAP = 10_000


@dataclass
class PageRequest:
    """What one page request carries: query parameters (list) or a JSON body (search)."""

    params: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None


class Paginator(Protocol):
    has_next: bool

    def update_state(self, answer: dict) -> None:
        """Read the next cursor from an answer (or learn that it was the last page)."""

    def update_request(self, request: PageRequest) -> None:
        """Put the cursor on the next request."""


def _next_after(answer: dict) -> str | None:
    after = ((answer.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after not in (None, "") else None


class CursorPaginator:
    """List endpoints: ``paging.next.after`` is an opaque cursor sent back as the ``after`` parameter."""

    def __init__(self) -> None:
        self.cursor: str | None = None
        self.has_next = True

    def update_state(self, answer: dict) -> None:
        self.cursor = _next_after(answer)
        self.has_next = self.cursor is not None

    def update_request(self, request: PageRequest) -> None:
        request.params["after"] = self.cursor


class OffsetPaginator:
    """Search: ``after`` is an offset in the body; it stops before an offset HubSpot refuses (10,000
    results per query) and says so in `capped`, so the caller can restart the query past it."""

    def __init__(self, page_size: int, cap: int = SEARCH_RESULT_CAP) -> None:
        self.page_size = page_size
        self.cap = cap
        self.offset: str | None = None
        self.has_next = True
        self.capped = False

    def update_state(self, answer: dict) -> None:
        self.offset = _next_after(answer)
        if self.offset is not None and int(self.offset) + self.page_size > self.cap:
            self.capped, self.offset = True, None
        self.has_next = self.offset is not None

    def update_request(self, request: PageRequest) -> None:
        assert request.body is not None
        request.body["after"] = self.offset


class KeysetPaginator:
    """Search past its 10,000-result cap: sorted by record id, each next page asks for ids above the
    last one seen (added to every filter group), never for an offset. The groups of the first
    request are kept; the paginator owns the id filter."""

    def __init__(self, filter_groups: list[dict], page_size: int, id_property: str = "hs_object_id") -> None:
        self.filter_groups = [dict(group) for group in filter_groups]
        self.page_size = page_size
        self.id_property = id_property
        self.last: int | None = None
        self.has_next = True

    def first_request(self, body: dict) -> PageRequest:
        body = {**body, "limit": self.page_size, "sorts": [{"propertyName": self.id_property,
                                                             "direction": "ASCENDING"}]}
        body.pop("after", None)
        request = PageRequest(body=body)
        self._write_groups(request)
        return request

    def update_state(self, answer: dict) -> None:
        results = answer.get("results") or []
        if results:
            self.last = int(results[-1]["id"])
        # `total` counts what is left above the last id asked for: a full last page needs no empty one after it.
        self.has_next = len(results) == self.page_size and len(results) < int(answer.get("total", len(results) + 1))

    def update_request(self, request: PageRequest) -> None:
        self._write_groups(request)

    def _write_groups(self, request: PageRequest) -> None:
        assert request.body is not None
        above = [] if self.last is None else [
            {"propertyName": self.id_property, "operator": "GT", "value": str(self.last)}]
        groups = self.filter_groups or [{"filters": []}]
        request.body["filterGroups"] = [{**group, "filters": [*(group.get("filters") or []), *above]}
                                        for group in groups]


def paginate(send: Callable[[PageRequest], dict], request: PageRequest, paginator: Paginator) -> Iterator[dict]:
    """Send `request`, then the next page's, until the paginator has no next page; yields each answer."""
    while True:
        answer = send(request)
        yield answer
        paginator.update_state(answer)
        if not paginator.has_next:
            return
        paginator.update_request(request)


class TimestampFrontier:
    """Where a ``hs_lastmodifieddate``-sorted search has got to: the last timestamp and the ids seen at it."""

    def __init__(self, lower: int, seen_at_lower: set[str]) -> None:
        self.lower, self.seen_at_lower = lower, seen_at_lower
        self.ms, self.ids = lower, set(seen_at_lower)
        self.emitted = 0

    def advance(self, records: list[dict]) -> list[dict]:
        """The records not emitted by an earlier pass (those at the restart timestamp already seen)."""
        fresh = []
        for record in records:
            modified = modified_ms(record)
            if modified == self.lower and record["id"] in self.seen_at_lower:
                continue
            if modified > self.ms:
                self.ms, self.ids = modified, set()
            self.ids.add(record["id"])
            fresh.append(record)
        self.emitted += len(fresh)
        return fresh


class ModifiedWindowPaginator:
    """Search over ``lower <= hs_lastmodifieddate < upper`` past the 10,000-result cap: offset pages
    sorted by ``hs_lastmodifieddate``; when the offset would pass the cap, the query restarts from the
    last timestamp seen (inclusive). The caller passes each page through `fresh`, which drops the
    records an earlier pass already gave at that timestamp, so nothing is lost or repeated."""

    def __init__(self, lower: int, upper: int | None, page_size: int, cap: int = SEARCH_RESULT_CAP) -> None:
        self.lower, self.upper = lower, upper
        self.offsets = OffsetPaginator(page_size, cap)
        self.frontier = TimestampFrontier(lower, set())
        self.has_next = True
        self._restart = False

    def first_request(self, body: dict) -> PageRequest:
        request = PageRequest(body={**body, "limit": self.offsets.page_size,
                                    "sorts": [{"propertyName": MODIFIED, "direction": "ASCENDING"}]})
        self._write_window(request)
        return request

    def fresh(self, records: list[dict]) -> list[dict]:
        """The records of a page not given by an earlier pass (call it for every page, in order)."""
        return self.frontier.advance(records)

    def update_state(self, answer: dict) -> None:
        self.offsets.update_state(answer)
        self._restart = self.offsets.capped
        if self._restart:
            if self.frontier.ms == self.lower and not self.frontier.emitted:
                raise HubSpotError(f"more than {self.offsets.cap} appointments share hs_lastmodifieddate "
                                   f"{self.lower}; narrow the query with more filters")
            self.lower = self.frontier.ms
            self.frontier = TimestampFrontier(self.frontier.ms, self.frontier.ids)
            self.offsets = OffsetPaginator(self.offsets.page_size, self.offsets.cap)
        self.has_next = self._restart or self.offsets.has_next

    def update_request(self, request: PageRequest) -> None:
        if self._restart:
            self._write_window(request)
        else:
            self.offsets.update_request(request)

    def _write_window(self, request: PageRequest) -> None:
        assert request.body is not None
        request.body["filterGroups"] = [{"filters": modified_filters(self.lower, self.upper)}]
        request.body.pop("after", None)
