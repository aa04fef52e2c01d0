"""The simulator's in-memory CRM: records of each object type, unique values, associations, history.

Seeded records are generated on demand (see `seed`); a record is materialised the first time it is
written. Every method is called under `Store.lock`, from the server's event loop or from a test.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from airflow_provider_appointments.simulator import seed as seeding
from airflow_provider_appointments.simulator.properties import iso_ms

APPOINTMENTS, CONTACTS, COMPANIES, DEALS = "appointments", "contacts", "companies", "deals"
OBJECT_TYPES = {
    "appointments": APPOINTMENTS, "appointment": APPOINTMENTS, "0-421": APPOINTMENTS,
    "contacts": CONTACTS, "contact": CONTACTS, "0-1": CONTACTS,
    "companies": COMPANIES, "company": COMPANIES, "0-2": COMPANIES,
    "deals": DEALS, "deal": DEALS, "0-3": DEALS,
}
TYPE_IDS = {APPOINTMENTS: "0-421", CONTACTS: "0-1", COMPANIES: "0-2", DEALS: "0-3"}
ID_BASE = {APPOINTMENTS: 100_000, CONTACTS: 9_000_000, COMPANIES: 8_000_000, DEALS: 7_000_000}
UNIQUE_PROPERTY = "external_appointment_id"
_SEEDED_KEY = re.compile(r"^EXT-(\d{6,})$")


@dataclass(slots=True)
class Record:
    id: int
    object_type: str
    properties: dict[str, str]
    created_ms: int
    updated_ms: int
    archived_ms: int | None = None
    # property -> [(value, timestamp_ms, sourceType)], oldest first
    history: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)

    @property
    def archived(self) -> bool:
        return self.archived_ms is not None

    def value(self, name: str) -> str | None:
        if name == "hs_object_id":
            return str(self.id)
        if name == "hs_createdate":
            return iso_ms(self.created_ms)
        if name == "hs_lastmodifieddate":
            return iso_ms(self.updated_ms)
        return self.properties.get(name)

    def history_of(self, name: str) -> list[dict]:
        """HubSpot's `propertiesWithHistory` entries for one property, newest first."""
        entries = self.history.get(name)
        if not entries:
            current = self.value(name)
            entries = [] if current is None else [(current, self.created_ms, "API")]
        return [
            {"value": value, "timestamp": iso_ms(ts), "sourceType": source, "sourceId": "simulator"}
            for value, ts, source in reversed(entries)
        ]


class Store:
    """All CRM state of one simulator."""

    def __init__(self, seed: int = 7, seed_appointments: int = 0, origin_ms: int | None = None) -> None:
        self.lock = threading.RLock()
        self.reset(seed, seed_appointments, origin_ms)

    def reset(self, seed: int, seed_appointments: int, origin_ms: int | None = None) -> None:
        with self.lock:
            self.seed = seed
            self.origin_ms = origin_ms if origin_ms is not None else int(time.time() * 1000)
            self.seeded = {
                APPOINTMENTS: seed_appointments,
                CONTACTS: seeding.contact_count(seed_appointments),
                COMPANIES: 25,
                DEALS: 25,
            }
            self.written: dict[str, dict[int, Record]] = {kind: {} for kind in ID_BASE}
            self.deleted: dict[str, set[int]] = {kind: set() for kind in ID_BASE}
            self.next_id = {kind: ID_BASE[kind] + self.seeded[kind] + 1 for kind in ID_BASE}
            self.unique_index: dict[str, int] = {}
            # (object type, id) -> {to type: {to id: {association type ids}}}, for records whose
            # associations were written; seeded ones are derived until then.
            self.associations: dict[tuple[str, int], dict[str, dict[int, set[int]]]] = {}
            self._last_ms = 0

    # -- clock ---------------------------------------------------------------------------------
    def now_ms(self) -> int:
        """Strictly increasing milliseconds, so every write has its own hs_lastmodifieddate."""
        now = max(int(time.time() * 1000), self._last_ms + 1)
        self._last_ms = now
        return now

    # -- reading -------------------------------------------------------------------------------
    def _seeded_record(self, kind: str, record_id: int) -> Record | None:
        index = record_id - ID_BASE[kind]
        if not 1 <= index <= self.seeded[kind] or record_id in self.deleted[kind]:
            return None
        make = {
            APPOINTMENTS: seeding.appointment, CONTACTS: seeding.contact,
            COMPANIES: seeding.company, DEALS: seeding.deal,
        }[kind]
        made = make(self.seed, index, self.origin_ms)
        return Record(record_id, kind, dict(made.properties), made.created_ms, made.updated_ms)

    def get(self, kind: str, record_id: int) -> Record | None:
        """A record whether archived or not; None if it never existed or was GDPR-deleted."""
        record = self.written[kind].get(record_id)
        if record is not None:
            return record
        return self._seeded_record(kind, record_id)

    def materialize(self, record: Record) -> Record:
        """Make a (possibly generated) record writable in place."""
        if record.id not in self.written[record.object_type]:
            self.written[record.object_type][record.id] = record
            if record.object_type == APPOINTMENTS and UNIQUE_PROPERTY in record.properties:
                self.unique_index[record.properties[UNIQUE_PROPERTY]] = record.id
        return record

    def iter_records(self, kind: str, after_id: int = 0) -> Iterator[Record]:
        """Every record (archived included) in ascending id order, starting at `after_id`."""
        first_seeded = ID_BASE[kind] + 1
        last_seeded = ID_BASE[kind] + self.seeded[kind]
        for record_id in range(max(first_seeded, after_id), last_seeded + 1):
            record = self.get(kind, record_id)
            if record is not None:
                yield record
        for record_id in sorted(key for key in self.written[kind] if key > last_seeded and key >= after_id):
            yield self.written[kind][record_id]

    def find_unique(self, value: str) -> Record | None:
        """The appointment holding a unique `external_appointment_id` value (archived included)."""
        record_id = self.unique_index.get(value)
        if record_id is None:
            match = _SEEDED_KEY.match(value)
            if not match:
                return None
            record_id = ID_BASE[APPOINTMENTS] + int(match.group(1))
        record = self.get(APPOINTMENTS, record_id)
        if record is None or record.properties.get(UNIQUE_PROPERTY) != value:
            return None
        return record

    def find_by_property(self, kind: str, name: str, value: str) -> Record | None:
        if name in ("hs_object_id", "id"):
            return self.get(kind, int(value)) if value.isdigit() else None
        if kind == APPOINTMENTS and name == UNIQUE_PROPERTY:
            return self.find_unique(value)
        return None

    # -- writing -------------------------------------------------------------------------------
    def create(self, kind: str, properties: dict[str, str], source: str = "API") -> Record:
        now = self.now_ms()
        record_id = self.next_id[kind]
        self.next_id[kind] += 1
        values = {name: value for name, value in properties.items() if value != ""}
        record = Record(record_id, kind, values, now, now)
        record.history = {name: [(value, now, source)] for name, value in values.items()}
        self.written[kind][record_id] = record
        if kind == APPOINTMENTS and UNIQUE_PROPERTY in values:
            self.unique_index[values[UNIQUE_PROPERTY]] = record_id
        return record

    def update(self, record: Record, properties: dict[str, str], source: str = "API") -> Record:
        record = self.materialize(record)
        now = self.now_ms()
        for name, value in properties.items():
            if record.object_type == APPOINTMENTS and name == UNIQUE_PROPERTY:
                old = record.properties.get(name)
                if old is not None and self.unique_index.get(old) == record.id:
                    del self.unique_index[old]
                if value:
                    self.unique_index[value] = record.id
            history = record.history.setdefault(name, [])
            if not history and name in record.properties:
                history.append((record.properties[name], record.created_ms, "API"))
            history.append((value, now, source))
            if value == "":
                record.properties.pop(name, None)
            else:
                record.properties[name] = value
        record.updated_ms = now
        return record

    def archive(self, record: Record) -> None:
        record = self.materialize(record)
        if record.archived_ms is None:
            record.archived_ms = self.now_ms()
            record.updated_ms = record.archived_ms

    def restore(self, record: Record) -> Record:
        """Bring a record back from the recycling bin (HubSpot restores within 90 days)."""
        record = self.materialize(record)
        record.archived_ms = None
        record.updated_ms = self.now_ms()
        return record

    def purge(self, record: Record) -> None:
        """GDPR delete: gone for good, its unique value free again."""
        self.written[record.object_type].pop(record.id, None)
        self.deleted[record.object_type].add(record.id)
        self.associations.pop((record.object_type, record.id), None)
        value = record.properties.get(UNIQUE_PROPERTY)
        if value is not None and self.unique_index.get(value) == record.id:
            del self.unique_index[value]

    # -- associations --------------------------------------------------------------------------
    def associations_of(self, kind: str, record_id: int) -> dict[str, dict[int, set[int]]]:
        stored = self.associations.get((kind, record_id))
        if stored is not None:
            return stored
        if kind == APPOINTMENTS and 1 <= record_id - ID_BASE[APPOINTMENTS] <= self.seeded[APPOINTMENTS]:
            contact = seeding.associated_contact(record_id - ID_BASE[APPOINTMENTS], self.seeded[CONTACTS])
            if contact is not None:
                return {CONTACTS: {ID_BASE[CONTACTS] + 1 + contact: {906}}}
        return {}

    def associate(self, kind: str, record_id: int, to_kind: str, to_id: int, type_ids: set[int]) -> None:
        current = self.associations.get((kind, record_id))
        if current is None:
            current = {to: {target: set(types) for target, types in targets.items()}
                       for to, targets in self.associations_of(kind, record_id).items()}
            self.associations[(kind, record_id)] = current
        current.setdefault(to_kind, {}).setdefault(to_id, set()).update(type_ids)

    def dissociate(self, kind: str, record_id: int, to_kind: str, to_id: int) -> None:
        self.associate(kind, record_id, to_kind, to_id, set())
        self.associations[(kind, record_id)][to_kind].pop(to_id, None)

    # -- summaries for tests and the admin API ---------------------------------------------------
    def counts(self) -> dict[str, dict[str, int]]:
        result = {}
        for kind in ID_BASE:
            active = archived = 0
            for record in self.iter_records(kind):
                if record.archived:
                    archived += 1
                else:
                    active += 1
            result[kind] = {"active": active, "archived": archived}
        return result

    def appointments(self, include_archived: bool = True) -> list[Record]:
        return [r for r in self.iter_records(APPOINTMENTS) if include_archived or not r.archived]
