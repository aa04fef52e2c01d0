"""Paging as small strategy objects, so the loop that walks pages is written once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol


class Paginator(Protocol):
    def next_cursor(self, body: dict) -> str | None:
        """The cursor of the next page, or None after the last one."""


class NextAfterPaginator:
    """HubSpot's ``paging.next.after`` (list: an opaque record cursor; search: an offset)."""

    def next_cursor(self, body: dict) -> str | None:
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        return str(after) if after not in (None, "") else None


class CappedOffsetPaginator(NextAfterPaginator):
    """Search: stops before an offset HubSpot would refuse (10,000 results per query)."""

    def __init__(self, page_size: int, cap: int = 10_000) -> None:
        self.page_size = page_size
        self.cap = cap
        self.capped = False

    def next_cursor(self, body: dict) -> str | None:
        cursor = super().next_cursor(body)
        if cursor is not None and int(cursor) + self.page_size > self.cap:
            self.capped = True
            return None
        return cursor


def walk_pages(fetch: Callable[[str | None], dict], paginator: Paginator) -> Iterator[dict]:
    """Fetch page after page: `fetch(cursor)` gets one page (cursor None for the first)."""
    cursor: str | None = None
    while True:
        body: Any = fetch(cursor)
        yield body
        cursor = paginator.next_cursor(body)
        if cursor is None:
            return
