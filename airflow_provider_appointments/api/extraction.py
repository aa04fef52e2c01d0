"""Extracts that use the account's whole read budget, with documented endpoints only.

HubSpot gives reads two budgets: the 10-second one (list pages of 100) and search's own 5 requests
per second (pages of 200). A list cursor is opaque, so the list is one sequential stream; to use
both budgets at once a full extract runs that stream from the lowest id upwards while keyset-paged
searches over ``hs_object_id`` (``GT`` the last id seen, ascending, no offsets, so the 10,000 cap
never applies) take id ranges from the top downwards. Both sides claim ids under one lock, so every
record is emitted exactly once. A windowed extract splits its window into sub-windows searched
concurrently within the search budget.

Pages go through a bounded queue to the caller, so memory stays flat whatever the extract's size.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_appointments.api.timestamps import to_epoch_ms

if TYPE_CHECKING:
    from airflow_provider_appointments.api.client import AppointmentsClient

# Pages waiting for the writer: enough to keep every stream busy, few enough to keep memory flat.
QUEUE_PAGES = 16
# Ids a search stream claims at a time, in records (two pages): small, so that the faster side takes
# most of the ids and the two sides meet close to where the list has got to.
RECORDS_PER_CLAIM = 400
_DONE = object()


@dataclass
class ExtractPlan:
    """How many streams of each kind an extract runs (search streams share search's budget)."""

    search_streams: int = 2
    list_stream: bool = True


@dataclass
class _Frontier:
    """The ids each side has taken: the list owns ``[.., floor)``, searches own ``[floor, top]``."""

    floor: int
    list_position: int = -1
    list_done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keep_listed(self, records: list[dict]) -> tuple[list[dict], bool]:
        """The listed records below the floor, and whether the list has reached the searched ids."""
        with self.lock:
            kept = [record for record in records if int(record["id"]) < self.floor]
            if kept:
                self.list_position = max(self.list_position, max(int(record["id"]) for record in kept))
            return kept, len(kept) < len(records)

    def claim(self, step: int) -> tuple[int, int] | None:
        """The next id range ``[low, high)`` for a search stream, or None when none is left."""
        with self.lock:
            low = max(self.floor - step, self.list_position + 1)
            if self.list_done or low >= self.floor:
                return None
            claimed = (low, self.floor)
            self.floor = low
            return claimed


class _Streams:
    """Runs producer threads that put pages on one bounded queue; the caller iterates the pages."""

    def __init__(self) -> None:
        self.pages: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_PAGES)
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, name: str, produce: Callable[[], None]) -> None:
        def run() -> None:
            try:
                produce()
            except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
                self.put(error)
            finally:
                self.put(_DONE)

        thread = threading.Thread(target=run, name=f"hubspot-extract-{name}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def put(self, item: Any) -> None:
        while not self.stopped.is_set():
            try:
                self.pages.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[list[dict]]:
        running = len(self.threads)
        try:
            while running:
                item = self.pages.get()
                if item is _DONE:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                elif item:
                    yield item
        finally:
            self.stopped.set()


def iter_everything(client: AppointmentsClient, *, properties: Sequence[str] | None = None,
                    properties_with_history: Sequence[str] | None = None, associations: Sequence[str] = (),
                    plan: ExtractPlan | None = None,
                    bounds: tuple[int, int, int] | None = None) -> Iterator[list[dict]]:
    """Every (unarchived) appointment exactly once: the list stream and keyset searches at once.

    :param bounds: `AppointmentsClient.id_bounds()` when the caller has read them already.
    """
    plan = plan or ExtractPlan()
    bounds = bounds or client.id_bounds()
    if bounds is None:
        return
    lowest, highest, total = bounds
    frontier = _Frontier(floor=highest + 1)
    # Ids are sparse: claim enough of the id space to hold about RECORDS_PER_CLAIM records.
    step = max(1, math.ceil((highest - lowest + 1) / max(total, 1) * RECORDS_PER_CLAIM))
    selection = list(properties or [])
    streams = _Streams()

    def listing() -> None:
        try:
            for page in client.iter_appointments(properties=properties, associations=associations,
                                                 properties_with_history=properties_with_history):
                if streams.stopped.is_set():
                    return
                kept, reached = frontier.keep_listed(page)
                streams.put(kept)
                if reached:
                    return
        finally:
            with frontier.lock:
                frontier.list_done = True

    def searching() -> None:
        while not streams.stopped.is_set() and (claimed := frontier.claim(step)) is not None:
            for page in client.iter_id_range(*claimed, properties=selection):
                streams.put(client.complete(page, properties_with_history=properties_with_history,
                                            associations=associations))

    if plan.list_stream:
        streams.start("list", listing)
    else:  # the searches take every id
        frontier.list_position = lowest - 1
    for number in range(plan.search_streams if plan.list_stream else max(1, plan.search_streams)):
        streams.start(f"search-{number}", searching)
    yield from streams


def iter_window(client: AppointmentsClient, modified_after: datetime | int | str | None,
                modified_before: datetime | int | str, *, properties: Sequence[str] | None = None,
                properties_with_history: Sequence[str] | None = None, associations: Sequence[str] = (),
                streams: int = 2) -> Iterator[list[dict]]:
    """Appointments modified in ``[modified_after, modified_before)``, each exactly once, searched as
    `streams` consecutive sub-windows at once (half-open, so none overlaps another)."""
    lower = to_epoch_ms(modified_after) if modified_after is not None else 0
    upper = to_epoch_ms(modified_before)
    cuts = [lower + (upper - lower) * part // max(streams, 1) for part in range(max(streams, 1))] + [upper]
    running = _Streams()
    for number, (start, end) in enumerate(zip(cuts, cuts[1:])):
        if end <= start:
            continue

        def search(start: int = start, end: int = end) -> None:
            for page in client.iter_modified(start, end, properties=properties, associations=associations,
                                             properties_with_history=properties_with_history):
                running.put(page)

        running.start(f"window-{number}", search)
    yield from running
