"""Deterministic, realistic seed data, generated column by column with numpy.

Seeded records are never held as Python objects. Each property of all seeded records of a type is
one column: timestamps are int64 epoch milliseconds, properties with few distinct values are codes
into a tuple of strings, and unique keys (``EXT-000001``, emails) are derived from the row number.
A record is assembled from its row when it is read and becomes a stored object only when it is
written, so a million appointments take about 100 MB and seed in well under a second, and search
can filter and sort them with vectorised comparisons.

Every column draws from its own random stream (``seed``, object type, column): the same seed,
counts and clock origin give the same records, and adding a column never shifts the others.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from airflow_provider_appointments.simulator.properties import DAY_MS, iso_date, iso_ms
from airflow_provider_appointments.simulator.schema import (
    APPOINTMENTS,
    COMPANIES,
    CONTACTS,
    DEALS,
    SCHEMAS,
    TICKETS,
    default_association_type,
)

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
HISTORY_DAYS = 30
TIE_EVERY = 37  # every 37th appointment shares its timestamps with the one before (bulk edits tie)

FIRST_NAMES = (
    "Dana", "Luis", "Amara", "Kenji", "Priya", "Tomás", "Ingrid", "Noah", "Fatima", "Olga", "Ravi", "Chloé",
    "Mateo", "Aisha", "Sven", "Mei", "Jonas", "Zanele", "Elif", "Hugo", "Nadia", "Owen", "Yara", "Pavel",
)
LAST_NAMES = (
    "Whitfield", "García", "Okafor", "Tanaka", "Raman", "Silva", "Lindqvist", "Becker", "Haddad", "Ivanova",
    "Kapoor", "Dubois", "Rossi", "Mensah", "Nguyen", "Kowalski", "Murphy", "Novak", "Yilmaz", "Costa",
)
# (name, service option, probability, durations in minutes, price)
SERVICES = (
    ("Annual checkup", "CONSULTATION", 0.25, (30, 45, 45), "120.00"),
    ("Follow-up visit", "FOLLOW_UP", 0.25, (15, 30, 30), "60.00"),
    ("Blood panel", "LAB", 0.15, (15, 15, 30), "45.00"),
    ("MRI scan", "IMAGING", 0.08, (45, 60, 90), "380.00"),
    ("Physiotherapy session", "THERAPY", 0.17, (45, 60, 60), "75.00"),
    ("Dental cleaning", "CONSULTATION", 0.10, (30, 45, 60), "95.50"),
)
CLINICS = ("Main St Clinic, Room 2", "Harbour Health Centre", "Northside Practice", "Riverside Clinic")
NOTES = (
    "Patient asked for a morning slot.",
    "Bring previous lab results.",
    "Wheelchair access needed.",
    "Fasting required 8 hours before.",
    "Interpreter requested (Spanish).",
    "Reminder sent by SMS.",
)
COMPANY_PREFIXES = ("Acme", "Northwind", "Blue Harbor", "Summit", "Cedar", "Evergreen", "Lakeside", "Pioneer")
COMPANY_SUFFIXES = ("Health", "Clinics", "Dental", "Physio", "Labs", "Medical Group", "Care")
CITIES = ("Boston", "Dublin", "Berlin", "Toronto", "Lisbon", "Austin", "Melbourne")
DEAL_AMOUNTS = ("500", "750", "1200", "2400", "4800")
DEAL_STAGES = ("appointmentscheduled", "qualifiedtobuy", "contractsent", "closedwon", "closedlost")


@dataclass(frozen=True)
class Column:
    """One property of every seeded record of a type; exactly one of the three forms is set.

    :param codes: categorical form: per row an index into `categories` (-1 = no value).
    :param categories: the distinct values; the last entry is None so that code -1 means no value.
    :param epoch_ms: timestamp form: per row epoch milliseconds.
    :param date_only: render timestamps as ``YYYY-MM-DD`` (date properties).
    :param derive: derived form: the value from the 0-based row (unique keys).
    :param invert: for derived unique keys, the row holding a value (None if no row does).
    """

    codes: np.ndarray | None = None
    categories: tuple[str | None, ...] = ()
    epoch_ms: np.ndarray | None = None
    date_only: bool = False
    derive: Callable[[int], str] | None = None
    invert: Callable[[str], int | None] | None = None

    def value(self, row: int) -> str | None:
        """The value of the record on `row`, as HubSpot renders it (None: no value)."""
        if self.codes is not None:
            return self.categories[self.codes[row]]
        if self.epoch_ms is not None:
            moment = int(self.epoch_ms[row])
            return iso_date(moment) if self.date_only else iso_ms(moment)
        assert self.derive is not None
        return self.derive(row)


@dataclass
class SeededTable:
    """All seeded records of one object type.

    :param object_type: plural name of the type.
    :param id_base: the record on row r has id ``id_base + r + 1``.
    :param created_ms: creation moments, per row.
    :param updated_ms: last-modification moments, per row.
    :param columns: property columns by name.
    :param links: associations: to object type -> (target row or -1, per row; association type id).
    :param initial: for properties changed at ``updated_ms``, their value at creation.
    """

    object_type: str
    id_base: int
    created_ms: np.ndarray
    updated_ms: np.ndarray
    columns: dict[str, Column] = field(default_factory=dict)
    links: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict)
    initial: dict[str, Column] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.created_ms)

    def row_of(self, record_id: int) -> int | None:
        """The row of a seeded record id, or None when the id is not a seeded record's."""
        row = record_id - self.id_base - 1
        return row if 0 <= row < self.size else None

    def ids(self) -> np.ndarray:
        """Every row's record id (built once; do not modify)."""
        ids = self.__dict__.get("_ids")
        if ids is None or len(ids) != self.size:
            ids = self.__dict__["_ids"] = np.arange(self.id_base + 1, self.id_base + 1 + self.size, dtype=np.int64)
            ids.flags.writeable = False
        return ids

    def properties(self, row: int) -> dict[str, str]:
        """The property values of the record on `row` (without the system ones)."""
        values = {}
        for name, column in self.columns.items():
            value = column.value(row)
            if value is not None:
                values[name] = value
        return values

    def history(self, row: int) -> list[tuple[int, dict[str, str]]]:
        """The writes that made the record: (moment, values set), oldest first."""
        current = self.properties(row)
        created, updated = int(self.created_ms[row]), int(self.updated_ms[row])
        if updated == created:
            return [(created, current)]
        first = dict(current)
        changed = {}
        for name, column in self.initial.items():
            before = column.value(row)
            if before != current.get(name):
                changed[name] = current.get(name, "")
                if before is None:
                    first.pop(name, None)
                else:
                    first[name] = before
        return [(created, first), (updated, changed)]


def default_counts(appointments: int) -> dict[str, int]:
    """Contacts, companies and deals that go with a number of seeded appointments."""
    return {
        APPOINTMENTS: appointments,
        CONTACTS: min(max(20, appointments // 4), 250_000),
        COMPANIES: min(max(5, appointments // 40), 10_000),
        DEALS: min(max(5, appointments // 20), 50_000),
        TICKETS: 0,
    }


def generate(seed: int, counts: dict[str, int], origin_ms: int) -> dict[str, SeededTable]:
    """Every seeded table for `seed`, with history ending at `origin_ms`.

    :param seed: non-negative seed; the same seed and origin give the same records.
    :param counts: records per object type (see `default_counts`).
    :param origin_ms: the clock origin: seeded records were created and last modified before it.
    """
    contacts = _contacts(seed, counts[CONTACTS], origin_ms)
    return {
        CONTACTS: contacts,
        COMPANIES: _companies(seed, counts[COMPANIES], origin_ms),
        DEALS: _deals(seed, counts[DEALS], origin_ms),
        TICKETS: SeededTable(TICKETS, SCHEMAS[TICKETS].id_base, np.zeros(0, np.int64), np.zeros(0, np.int64)),
        APPOINTMENTS: _appointments(seed, counts, origin_ms, contacts),
    }


# -- helpers -------------------------------------------------------------------------------------
class _Streams:
    """One independent random stream per column, so columns do not shift each other."""

    def __init__(self, seed: int, object_type: str) -> None:
        self.seed = seed
        self.type_no = list(SCHEMAS).index(object_type)

    def __call__(self, column_no: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.type_no, column_no])


def _categorical(codes: np.ndarray, categories: tuple[str, ...]) -> Column:
    dtype = np.int16 if len(categories) < 32_000 else np.int32
    return Column(codes=codes.astype(dtype), categories=(*categories, None))


def _pick(probabilities: tuple[float, ...], uniform: np.ndarray) -> np.ndarray:
    """Category codes drawn with the given probabilities from uniform [0, 1) draws."""
    edges = np.cumsum(probabilities)
    return np.minimum(np.searchsorted(edges / edges[-1], uniform, side="right"), len(probabilities) - 1)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _keyed(prefix: str, size: int, width: int = 6) -> tuple[Callable[[int], str], Callable[[str], int | None]]:
    """A derived unique key ``PREFIX-000001`` per row, and its inverse."""
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d{{{width},}})$")

    def derive(row: int) -> str:
        return f"{prefix}-{row + 1:0{width}d}"

    def invert(value: str) -> int | None:
        match = pattern.match(value)
        row = int(match.group(1)) - 1 if match else -1
        return row if 0 <= row < size and derive(row) == value else None

    return derive, invert


def _link(targets: np.ndarray, present: np.ndarray, from_type: str, to_type: str) -> tuple[np.ndarray, int]:
    default = default_association_type(from_type, to_type)
    assert default is not None
    return np.where(present, targets, -1).astype(np.int32), default.type_id


# -- object types --------------------------------------------------------------------------------
def _contacts(seed: int, size: int, origin_ms: int) -> SeededTable:
    rng = _Streams(seed, CONTACTS)
    first = rng(1).integers(0, len(FIRST_NAMES), size)
    last = rng(2).integers(0, len(LAST_NAMES), size)
    created = origin_ms - rng(3).integers(DAY_MS, 365 * DAY_MS, size)
    ascii_first = [_ascii(name) for name in FIRST_NAMES]
    ascii_last = [_ascii(name) for name in LAST_NAMES]
    email_pattern = re.compile(r"^[a-z]+\.[a-z]+\.(\d+)@example\.com$")

    def email(row: int) -> str:
        return f"{ascii_first[first[row]]}.{ascii_last[last[row]]}.{row + 1}@example.com"

    def email_row(value: str) -> int | None:
        match = email_pattern.match(value)
        row = int(match.group(1)) - 1 if match else -1
        return row if 0 <= row < size and email(row) == value else None

    return SeededTable(CONTACTS, SCHEMAS[CONTACTS].id_base, created, created.copy(), columns={
        "firstname": _categorical(first, FIRST_NAMES),
        "lastname": _categorical(last, LAST_NAMES),
        "email": Column(derive=email, invert=email_row),
        "phone": Column(derive=lambda row: f"+1 617 555 {row % 10_000:04d}"),
    })


def _companies(seed: int, size: int, origin_ms: int) -> SeededTable:
    rng = _Streams(seed, COMPANIES)
    created = origin_ms - rng(1).integers(30 * DAY_MS, 720 * DAY_MS, size)
    combos = len(COMPANY_PREFIXES) * len(COMPANY_SUFFIXES)

    def name(row: int) -> str:
        prefix = COMPANY_PREFIXES[row % len(COMPANY_PREFIXES)]
        suffix = COMPANY_SUFFIXES[row // len(COMPANY_PREFIXES) % len(COMPANY_SUFFIXES)]
        base = f"{prefix} {suffix}"
        return base if row < combos else f"{base} {row // combos + 1}"

    return SeededTable(COMPANIES, SCHEMAS[COMPANIES].id_base, created, created.copy(), columns={
        "name": Column(derive=name),
        "domain": Column(derive=lambda row: name(row).lower().replace(" ", "-") + ".example.com"),
        "city": _categorical(rng(2).integers(0, len(CITIES), size), CITIES),
    })


def _deals(seed: int, size: int, origin_ms: int) -> SeededTable:
    rng = _Streams(seed, DEALS)
    created = origin_ms - rng(1).integers(DAY_MS, 90 * DAY_MS, size)
    return SeededTable(DEALS, SCHEMAS[DEALS].id_base, created, created.copy(), columns={
        "dealname": Column(derive=lambda row: f"Care plan {row + 1:05d}"),
        "amount": _categorical(rng(2).integers(0, len(DEAL_AMOUNTS), size), DEAL_AMOUNTS),
        "dealstage": _categorical(rng(3).integers(0, len(DEAL_STAGES), size), DEAL_STAGES),
        "pipeline": _categorical(np.zeros(size, np.int16), ("default",)),
        "closedate": Column(epoch_ms=created + rng(4).integers(30, 120, size) * DAY_MS),
    })


def _appointments(seed: int, counts: dict[str, int], origin_ms: int, contacts: SeededTable) -> SeededTable:
    size = counts[APPOINTMENTS]
    rng = _Streams(seed, APPOINTMENTS)

    def linked(no: int, probability: float, targets: int) -> tuple[np.ndarray, np.ndarray]:
        present = (rng(no).random(size) < probability) & (targets > 0)
        return rng(no + 1).integers(0, max(targets, 1), size), present

    contact, has_contact = linked(1, 2 / 3, counts[CONTACTS])
    company, has_company = linked(3, 0.3, counts[COMPANIES])
    deal, has_deal = linked(5, 0.1, counts[DEALS])
    service = _pick(tuple(s[2] for s in SERVICES), rng(9).random(size))
    created, updated = _appointment_moments(rng, size, origin_ms)
    modified = updated > created

    # Start within three weeks before and five weeks after the origin, on quarter hours of a working day.
    midnight = origin_ms - origin_ms % DAY_MS
    start = (midnight + rng(13).integers(-21, 35, size) * DAY_MS + rng(14).integers(8, 18, size) * HOUR_MS
             + rng(15).integers(0, 4, size) * 15 * MINUTE_MS)
    durations = np.array([s[3] for s in SERVICES], np.int64)[service, rng(16).integers(0, 3, size)]
    duration_values = tuple(sorted({d for s in SERVICES for d in s[3]}))
    status, initial_status = _appointment_status(rng, modified, start < origin_ms)
    offer = _appointment_offer(rng, service)
    derive, invert = _keyed("EXT", size)
    return SeededTable(
        APPOINTMENTS, SCHEMAS[APPOINTMENTS].id_base, created, updated,
        columns={
            "hs_appointment_name": _appointment_names(rng, service, contacts, contact, has_contact),
            "hs_appointment_start": Column(epoch_ms=start),
            "hs_appointment_end": Column(epoch_ms=start + durations * MINUTE_MS),
            "hs_appointment_status": _categorical(status, STATUSES),
            "hs_appointment_location": offer["location"],
            "hs_appointment_type": offer["type"],
            "hs_appointment_notes": offer["notes"],
            "hs_duration": _categorical(np.searchsorted(duration_values, durations),
                                        tuple(str(d) for d in duration_values)),
            "hs_appointment_price": offer["price"],
            "hs_appointment_date": Column(epoch_ms=start - start % DAY_MS, date_only=True),
            "hs_is_first_visit": _categorical((rng(24).random(size) >= 0.2).astype(np.int8), ("true", "false")),
            "hs_appointment_services": offer["services"],
            "external_appointment_id": Column(derive=derive, invert=invert),
        },
        links={
            CONTACTS: _link(contact, has_contact, APPOINTMENTS, CONTACTS),
            COMPANIES: _link(company, has_company, APPOINTMENTS, COMPANIES),
            DEALS: _link(deal, has_deal, APPOINTMENTS, DEALS),
        },
        initial={"hs_appointment_status": _categorical(initial_status, STATUSES)},
    )


STATUSES = ("SCHEDULED", "CONFIRMED", "COMPLETED", "CANCELED", "NO_SHOW", "RESCHEDULED")


def _appointment_names(rng: _Streams, service: np.ndarray, contacts: SeededTable, contact: np.ndarray,
                       has_contact: np.ndarray) -> Column:
    """``<service> – <first name> <last name>``: the associated contact's name, or someone not (yet)
    in the CRM."""
    size = len(service)
    first_codes, last_codes = contacts.columns["firstname"].codes, contacts.columns["lastname"].codes
    assert first_codes is not None and last_codes is not None
    safe_contact = np.where(has_contact, contact, 0)
    first = np.where(has_contact, first_codes[safe_contact] if len(first_codes) else 0,
                     rng(7).integers(0, len(FIRST_NAMES), size))
    last = np.where(has_contact, last_codes[safe_contact] if len(last_codes) else 0,
                    rng(8).integers(0, len(LAST_NAMES), size))
    names = tuple(f"{s[0]} – {first_name} {last_name}"
                  for s in SERVICES for first_name in FIRST_NAMES for last_name in LAST_NAMES)
    return _categorical((service * len(FIRST_NAMES) + first) * len(LAST_NAMES) + last, names)


def _appointment_moments(rng: _Streams, size: int, origin_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(created, last modified): created over the 30 days before the origin, 70 % modified since;
    every `TIE_EVERY`-th row ties with the previous one."""
    created = origin_ms - rng(10).integers(MINUTE_MS, HISTORY_DAYS * DAY_MS, size)
    modified = rng(11).random(size) < 0.7
    updated = np.where(modified, created + (rng(12).random(size) * (origin_ms - created)).astype(np.int64), created)
    ties = np.arange(TIE_EVERY - 1, size, TIE_EVERY)
    created[ties], updated[ties] = created[ties - 1], updated[ties - 1]
    return created, updated


def _appointment_status(rng: _Streams, modified: np.ndarray, past: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(status, status at creation) codes into `STATUSES`. The status follows the story: untouched
    bookings are scheduled; modified ones moved on (past ones completed or missed, future ones
    confirmed, canceled or rescheduled)."""
    code = {name: index for index, name in enumerate(STATUSES)}
    draw = rng(17).random(len(modified))
    untouched = np.array([code["SCHEDULED"], code["CONFIRMED"]])[_pick((0.8, 0.2), draw)]
    done = np.array([code[s] for s in ("COMPLETED", "NO_SHOW", "CANCELED", "RESCHEDULED", "CONFIRMED")])[
        _pick((0.6, 0.1, 0.15, 0.05, 0.1), draw)]
    future = np.array([code["CONFIRMED"], code["CANCELED"], code["RESCHEDULED"]])[_pick((0.55, 0.2, 0.25), draw)]
    status = np.where(~modified, untouched, np.where(past, done, future))
    return status, np.where(modified, code["SCHEDULED"], status)


def _appointment_offer(rng: _Streams, service: np.ndarray) -> dict[str, Column]:
    """The columns that follow from the service booked (by short name): location and type, price,
    services, notes."""
    size = len(service)
    # Lab work and imaging happen in person; the rest also by video or phone.
    in_person_only = np.isin(service, [2, 3])
    kind = np.where(in_person_only, 0, _pick((0.6, 0.25, 0.15), rng(18).random(size)))
    location = np.where(kind == 0, rng(19).integers(0, len(CLINICS), size), len(CLINICS) + kind - 1)

    prices = tuple(sorted({s[4] for s in SERVICES} | {"0.00"}))
    covered = rng(20).random(size) < 0.1
    price = np.where(covered, prices.index("0.00"), np.array([prices.index(s[4]) for s in SERVICES])[service])

    # A checkup sometimes books lab work too (multi-select value "CONSULTATION;LAB").
    service_values = tuple(dict.fromkeys([s[1] for s in SERVICES] + ["CONSULTATION;LAB"]))
    services = np.array([service_values.index(s[1]) for s in SERVICES])[service]
    services = np.where((service == 0) & (rng(21).random(size) < 0.25), service_values.index("CONSULTATION;LAB"),
                        services)
    notes = np.where(rng(22).random(size) < 0.3, rng(23).integers(0, len(NOTES), size), -1)
    return {
        "location": _categorical(location, (*CLINICS, "Video call", "Phone call")),
        "type": _categorical(kind, ("IN_PERSON", "VIDEO", "PHONE")),
        "notes": _categorical(notes, NOTES),
        "price": _categorical(price, prices),
        "services": _categorical(services, service_values),
    }
