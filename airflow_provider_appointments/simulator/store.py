"""The simulator's in-memory CRM: records of each object type, unique values, associations, history.

Seeded records live in numpy columns (`seed.SeededTable`); `get` assembles a read-only view of one.
The first write to a seeded record *materialises* it: it becomes a `Record` held in `records` and
its row is marked *shadowed*, so every later read finds the stored object. Records created through
the API get ids after the seeded range.

Associations follow the same overlay idea: seeded links are read from the seeded columns (in both
directions) until a record's links are written; from then on that record, and every record it was
linked to, keeps its links in `links`, which is then the whole truth for them.

All methods take `lock` (re-entrant), so the server's event loop and a test thread can both use
the store; handlers hold the lock across a whole request.

Search lag: HubSpot's search index trails writes by a few seconds. With `search_lag_ms` > 0 every
write that changes what search sees (create, update with real changes, archive, restore, GDPR
delete) is queued per record as (moment it becomes searchable, the record's state before it);
`search_overrides` tells search which state of each such record it may see now. Reads, lists and
batch reads always see the current state. ``version`` counts writes, so search can cache.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from airflow_provider_appointments.simulator import seed as seeding
from airflow_provider_appointments.simulator.links import Links, StoredLinks
from airflow_provider_appointments.simulator.properties import DAY_MS, PropertyDefinition, iso_ms
from airflow_provider_appointments.simulator.schema import (
    APPOINTMENTS,
    SCHEMAS,
    ObjectSchema,
    object_schema,
)

SEED_SOURCE = "simulator-seed"
# (moment in epoch ms, sourceType, sourceId, the values that write set; "" clears a value)
WriteEvent = tuple[int, str, str, dict[str, str]]


@dataclass(slots=True, eq=False)
class Record:
    """One CRM record.

    :param id: record id (``hs_object_id``).
    :param schema: its object type.
    :param properties: current values (the read-only system properties are derived, not stored).
    :param created_ms: creation moment.
    :param updated_ms: last modification moment (``hs_lastmodifieddate``, ``updatedAt``).
    :param archived_ms: when it went to the recycling bin; None while active.
    :param events: every write, oldest first; None until loaded by `write_events`.
    :param loader: produces `events` for seeded records, whose history is generated on demand.
    """

    id: int
    schema: ObjectSchema
    properties: dict[str, str]
    created_ms: int
    updated_ms: int
    archived_ms: int | None = None
    events: list[WriteEvent] | None = field(default_factory=list)
    loader: Callable[[], list[WriteEvent]] | None = None

    @property
    def object_type(self) -> str:
        return self.schema.name

    @property
    def archived(self) -> bool:
        return self.archived_ms is not None

    def value(self, name: str) -> str | None:
        """A property's current value as HubSpot returns it, system properties included."""
        if name == "hs_object_id":
            return str(self.id)
        if name == self.schema.created_property:
            return iso_ms(self.created_ms)
        if name == self.schema.modified_property:
            return iso_ms(self.updated_ms)
        return self.properties.get(name)

    def write_events(self) -> list[WriteEvent]:
        """The writes that made the record, oldest first (loaded on first use for seeded records)."""
        if self.events is None:
            assert self.loader is not None
            self.events, self.loader = self.loader(), None
        return self.events

    def history_of(self, name: str) -> list[dict]:
        """HubSpot's `propertiesWithHistory` entries for one property, newest first."""
        events = self.write_events()
        if name == self.schema.modified_property:
            entries = [(iso_ms(moment), moment, source, source_id) for moment, source, source_id, _ in events]
        elif name in ("hs_object_id", self.schema.created_property):
            moment, source, source_id, _ = events[0] if events else (self.created_ms, "API", SEED_SOURCE, {})
            entries = [(self.value(name) or "", moment, source, source_id)]
        else:
            entries = [(values[name], moment, source, source_id)
                       for moment, source, source_id, values in events if name in values]
        return [{"value": value, "timestamp": iso_ms(moment), "sourceType": source, "sourceId": source_id}
                for value, moment, source, source_id in reversed(entries)]


class Store(StoredLinks):
    """All CRM state of one simulator.

    :param seed: seed of the generated records.
    :param counts: seeded records per object type (see `seed.default_counts`).
    :param origin_ms: the clock origin seeded history ends at; default: midnight UTC today.
    """

    def __init__(self, seed: int = 7, counts: dict[str, int] | None = None, origin_ms: int | None = None,
                 search_lag_ms: int | Callable[[], int] = 0) -> None:
        self.lock = threading.RLock()
        self.search_lag_ms = search_lag_ms
        self.version = 0
        self.reset(seed, counts, origin_ms)

    def reset(self, seed: int, counts: dict[str, int] | None = None, origin_ms: int | None = None) -> None:
        """Forget every write and re-seed."""
        with self.lock:
            now = int(time.time() * 1000)
            self.seed = seed
            self.origin_ms = origin_ms if origin_ms is not None else now - now % DAY_MS
            self.tables = seeding.generate(seed, counts or seeding.default_counts(0), self.origin_ms)
            # Each store has its own copy of the schema: properties created through the API land here.
            self.schemas = {kind: replace(schema, properties=dict(schema.properties))
                            for kind, schema in SCHEMAS.items()}
            self.records: dict[str, dict[int, Record]] = {kind: {} for kind in SCHEMAS}
            self.shadowed = {kind: np.zeros(table.size, dtype=bool) for kind, table in self.tables.items()}
            self.created_ids: dict[str, list[int]] = {kind: [] for kind in SCHEMAS}
            self.archived_ids: dict[str, set[int]] = {kind: set() for kind in SCHEMAS}
            self.next_id = {kind: table.id_base + table.size + 1 for kind, table in self.tables.items()}
            self.unique_index: dict[tuple[str, str], dict[str, int]] = {
                (kind, name): {} for kind, schema in SCHEMAS.items() for name in schema.unique_properties}
            self.links: dict[tuple[str, int], Links] = {}
            self._reverse_index: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
            self._last_ms = 0
            # kind -> id -> [(moment the write becomes searchable, the state before it; None: absent)]
            self._search_pending: dict[str, dict[int, list[tuple[int, Record | None]]]] = {kind: {} for kind in SCHEMAS}
            self.search_cache: dict = {}  # search's indexes of the seeded tables and overlays (search.py)
            self.version += 1

    # -- search lag ------------------------------------------------------------------------------
    def lag_ms(self) -> int:
        """The current search lag (`search_lag_ms` may be a number or a callable giving one)."""
        lag = self.search_lag_ms
        return max(0, int(lag() if callable(lag) else lag or 0))

    def _before_search_change(self, kind: str, record_id: int, before: Record | None) -> None:
        """Called before a write changes what search sees of a record: queue its old state."""
        self.version += 1
        lag = self.lag_ms()
        if lag <= 0:
            return
        snapshot = None if before is None else _snapshot(before)
        self._search_pending[kind].setdefault(record_id, []).append((self.now_ms() + lag, snapshot))

    def search_overrides(self, kind: str, now_ms: int | None = None) -> tuple[dict[int, Record | None], int | None]:
        """({id: the state search sees instead of the current one (None: not found)}, when that next
        changes), for the records whose latest writes search does not see yet."""
        with self.lock:
            now = self.now_ms() if now_ms is None else now_ms
            pending = self._search_pending[kind]
            overrides: dict[int, Record | None] = {}
            next_change = None
            for record_id in list(pending):
                queue = pending[record_id]
                while queue and queue[0][0] <= now:
                    queue.pop(0)
                if not queue:
                    del pending[record_id]
                    self.version += 1
                    continue
                overrides[record_id] = queue[0][1]
                next_change = queue[0][0] if next_change is None else min(next_change, queue[0][0])
            return overrides, next_change

    # -- schema ----------------------------------------------------------------------------------
    def schema(self, name: str) -> ObjectSchema:
        """This account's schema of the object type a path names, with the properties created in it."""
        return self.schemas[object_schema(name).name]

    def add_property(self, kind: str, definition: PropertyDefinition) -> None:
        """A new (custom) property; unique ones get an index of their own."""
        with self.lock:
            self.schemas[kind].properties[definition.name] = definition
            if definition.has_unique_value:
                self.unique_index.setdefault((kind, definition.name), {})

    # -- clock -----------------------------------------------------------------------------------
    def now_ms(self) -> int:
        """The store's clock: wall time in epoch milliseconds, never going backwards."""
        with self.lock:
            self._last_ms = max(int(time.time() * 1000), self._last_ms)
            return self._last_ms

    # -- reading ---------------------------------------------------------------------------------
    def _view(self, kind: str, row: int) -> Record:
        table = self.tables[kind]
        record_id = table.id_base + row + 1

        def load() -> list[WriteEvent]:
            return [(moment, "API", SEED_SOURCE, values) for moment, values in table.history(row)]

        return Record(record_id, self.schemas[kind], table.properties(row), int(table.created_ms[row]),
                      int(table.updated_ms[row]), events=None, loader=load)

    def get(self, kind: str, record_id: int) -> Record | None:
        """A record, archived or not; None if it never existed or was GDPR-deleted.

        A seeded record that was never written is a fresh view: call `materialize` before changing it.
        """
        with self.lock:
            record = self.records[kind].get(record_id)
            if record is not None:
                return record
            row = self.tables[kind].row_of(record_id)
            if row is None or self.shadowed[kind][row]:
                return None
            return self._view(kind, row)

    def is_active(self, kind: str, record_id: int) -> bool:
        """Whether a record exists and is not archived (cheaper than `get`)."""
        with self.lock:
            record = self.records[kind].get(record_id)
            if record is not None:
                return not record.archived
            row = self.tables[kind].row_of(record_id)
            return row is not None and not self.shadowed[kind][row]

    def iter_ids(self, kind: str, after_id: int = 0, archived: bool | None = None) -> Iterator[int]:
        """Record ids in ascending order from `after_id` on: all, or only (non-)archived records.

        Generators here take no lock (a half-consumed one must not hold it) and iterate over copies,
        so concurrent writes cannot break them; hold `lock` around them for a consistent view.
        """
        records = self.records[kind]
        if archived:
            for record_id in sorted(self.archived_ids[kind].copy()):
                if record_id >= after_id and record_id in records:
                    yield record_id
            return
        table, shadowed = self.tables[kind], self.shadowed[kind]
        for row in range(max(0, after_id - table.id_base - 1), table.size):
            if shadowed[row]:  # written or purged: the stored record decides
                record = records.get(table.id_base + row + 1)
                if record is None or (archived is False and record.archived):
                    continue
            yield table.id_base + row + 1
        created = self.created_ids[kind]
        for record_id in created[bisect_left(created, after_id):]:
            record = records.get(record_id)
            if record is not None and not (archived is False and record.archived):
                yield record_id

    def iter_records(self, kind: str, after_id: int = 0, archived: bool | None = None) -> Iterator[Record]:
        """The records of `iter_ids`."""
        for record_id in self.iter_ids(kind, after_id, archived):
            record = self.get(kind, record_id)
            if record is not None:
                yield record

    def appointments(self, include_archived: bool = True) -> list[Record]:
        """Every appointment (for assertions in tests)."""
        with self.lock:
            return list(self.iter_records(APPOINTMENTS, archived=None if include_archived else False))

    def find_unique(self, kind: str, name: str, value: str) -> Record | None:
        """The record (archived included) holding `value` in the unique property `name`."""
        with self.lock:
            if name == "hs_object_id":
                return self.get(kind, int(value)) if value.isdigit() else None
            record_id = self.unique_index.get((kind, name), {}).get(value)
            if record_id is not None:
                return self.records[kind][record_id]
            column = self.tables[kind].columns.get(name)
            row = column.invert(value) if column is not None and column.invert is not None else None
            if row is None or self.shadowed[kind][row]:
                return None
            return self._view(kind, row)

    def counts(self) -> dict[str, dict[str, int]]:
        """Active and archived records per object type."""
        with self.lock:
            result = {}
            for kind, table in self.tables.items():
                archived = len(self.archived_ids[kind])
                result[kind] = {"active": table.size - int(self.shadowed[kind].sum()) + len(self.records[kind])
                                - archived, "archived": archived}
            return result

    # -- writing ---------------------------------------------------------------------------------
    def materialize(self, record: Record) -> Record:
        """Make a record writable in place (a seeded view becomes a stored record)."""
        with self.lock:
            kind = record.object_type
            if record.id in self.records[kind]:
                return self.records[kind][record.id]
            record.write_events()
            self.records[kind][record.id] = record
            row = self.tables[kind].row_of(record.id)
            if row is not None:
                self.shadowed[kind][row] = True
            self.version += 1
            for name in record.schema.unique_properties:
                if record.properties.get(name):
                    self.unique_index[(kind, name)][record.properties[name]] = record.id
            return record

    def create(self, kind: str, properties: dict[str, str], at_ms: int, source_id: str) -> Record:
        """A new record with the (already validated) values."""
        with self.lock:
            values = {name: value for name, value in properties.items() if value != ""}
            self._before_search_change(kind, self.next_id[kind], None)
            record = Record(self.next_id[kind], self.schemas[kind], values, at_ms, at_ms,
                            events=[(at_ms, "API", source_id, dict(values))])
            self.next_id[kind] += 1
            self.records[kind][record.id] = record
            self.created_ids[kind].append(record.id)
            self._index(record, values)
            return record

    def update(self, record: Record, properties: dict[str, str], at_ms: int, source_id: str) -> Record:
        """Set (validated) values; ``""`` clears one. Only real changes count: writing the values a
        record already has leaves ``hs_lastmodifieddate`` and the history alone."""
        with self.lock:
            record = self.materialize(record)
            changes = {name: value for name, value in properties.items() if record.properties.get(name, "") != value}
            if not changes:
                return record
            self._before_search_change(record.object_type, record.id, record)
            for name, value in changes.items():
                previous = record.properties.pop(name, None)
                if previous is not None and (record.object_type, name) in self.unique_index:
                    self.unique_index[(record.object_type, name)].pop(previous, None)
                if value != "":
                    record.properties[name] = value
            self._index(record, changes)
            record.write_events().append((at_ms, "API", source_id, changes))
            record.updated_ms = max(record.updated_ms, at_ms)
            return record

    def _index(self, record: Record, values: dict[str, str]) -> None:
        for name in record.schema.unique_properties:
            if values.get(name):
                self.unique_index[(record.object_type, name)][values[name]] = record.id

    def archive(self, record: Record, at_ms: int | None = None) -> Record:
        """Move a record to the recycling bin (no-op if it is there already)."""
        with self.lock:
            record = self.materialize(record)
            if record.archived_ms is None:
                self._before_search_change(record.object_type, record.id, record)
                record.archived_ms = at_ms if at_ms is not None else self.now_ms()
                record.updated_ms = max(record.updated_ms, record.archived_ms)
                self.archived_ids[record.object_type].add(record.id)
            return record

    def restore(self, record: Record, at_ms: int) -> Record:
        """Bring a record back from the recycling bin, same id and values."""
        with self.lock:
            record = self.materialize(record)
            if record.archived_ms is not None:
                self._before_search_change(record.object_type, record.id, record)
            record.archived_ms = None
            record.updated_ms = max(record.updated_ms, at_ms)
            self.archived_ids[record.object_type].discard(record.id)
            return record

    def purge(self, record: Record) -> None:
        """GDPR delete: the record, its history and its associations are gone for good."""
        with self.lock:
            kind = record.object_type
            self._before_search_change(kind, record.id, self.get(kind, record.id))
            for to_kind, targets in self._writable_links(kind, record.id).items():
                for to_id in targets:
                    self.links[(to_kind, to_id)].get(kind, {}).pop(record.id, None)
            self.links.pop((kind, record.id), None)
            stored = self.records[kind].pop(record.id, None) or record
            for name in record.schema.unique_properties:
                value = stored.properties.get(name)
                if value and self.unique_index[(kind, name)].get(value) == record.id:
                    del self.unique_index[(kind, name)][value]
            row = self.tables[kind].row_of(record.id)
            if row is not None:
                self.shadowed[kind][row] = True
            self.archived_ids[kind].discard(record.id)


def _snapshot(record: Record) -> Record:
    """A frozen copy of a record's current state (what search keeps seeing while a write lags)."""
    return Record(record.id, record.schema, dict(record.properties), record.created_ms, record.updated_ms,
                  record.archived_ms, events=None if record.events is None else list(record.events),
                  loader=record.loader)

