"""Deterministic, realistic seed data: appointments, contacts, companies and deals from one seed number.

Seeded appointments are generated from ``(seed, index)`` on demand rather than stored, so a simulator
seeded with a million appointments starts at once and only records that are written take memory.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from airflow_provider_appointments.simulator.properties import iso_ms

DAY_MS = 86_400_000
HISTORY_DAYS = 30

FIRST_NAMES = (
    "Dana", "Luis", "Amara", "Kenji", "Priya", "Tomás", "Ingrid", "Noah", "Fatima", "Olga", "Ravi", "Chloé",
    "Mateo", "Aisha", "Sven", "Mei", "Jonas", "Zanele", "Elif", "Hugo", "Nadia", "Owen", "Yara", "Pavel",
)
LAST_NAMES = (
    "Whitfield", "García", "Okafor", "Tanaka", "Raman", "Silva", "Lindqvist", "Becker", "Haddad", "Ivanova",
    "Kapoor", "Dubois", "Rossi", "Mensah", "Nguyen", "Kowalski", "Murphy", "Novak", "Yilmaz", "Costa",
)
SERVICES = (
    ("Annual checkup", "CONSULTATION"), ("Follow-up visit", "FOLLOW_UP"), ("Blood panel", "LAB"),
    ("MRI scan", "IMAGING"), ("Physiotherapy session", "THERAPY"), ("Dental cleaning", "CONSULTATION"),
)
LOCATIONS = ("Main St Clinic, Room 2", "Harbour Health Centre", "Northside Practice", "Video call", "Riverside Clinic")
STATUSES = ("SCHEDULED",) * 5 + ("CONFIRMED",) * 3 + ("COMPLETED",) * 4 + ("CANCELED", "NO_SHOW", "RESCHEDULED")
TYPES = ("IN_PERSON", "IN_PERSON", "VIDEO", "PHONE")
COMPANY_NAMES = ("Acme Health", "Northwind Clinics", "Blue Harbor Dental", "Summit Physio", "Cedar Labs")


@dataclass(frozen=True, slots=True)
class SeededRecord:
    properties: dict[str, str]
    created_ms: int
    updated_ms: int


def contact_count(appointments: int) -> int:
    return min(max(20, appointments // 4), 5_000)


def appointment(seed: int, index: int, origin_ms: int) -> SeededRecord:
    """The seeded appointment number ``index`` (1-based): the same for the same seed, every time."""
    rng = random.Random(seed * 1_000_003 + index)
    created = origin_ms - rng.randrange(HISTORY_DAYS * DAY_MS)
    updated = created + rng.randrange(max(1, origin_ms - created))
    start = origin_ms + rng.randrange(-20 * DAY_MS, 40 * DAY_MS)
    start -= start % (15 * 60_000)
    duration = rng.choice((15, 30, 30, 45, 60, 90))
    service, service_code = rng.choice(SERVICES)
    appointment_type = rng.choice(TYPES)
    properties = {
        "hs_appointment_name": f"{service} – {rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        "hs_appointment_start": iso_ms(start),
        "hs_appointment_end": iso_ms(start + duration * 60_000),
        "hs_appointment_status": rng.choice(STATUSES),
        "hs_appointment_type": appointment_type,
        "hs_appointment_location": "Video call" if appointment_type == "VIDEO" else rng.choice(LOCATIONS[:3] + LOCATIONS[4:]),
        "hs_duration": str(duration),
        "hs_appointment_price": f"{rng.choice((0, 45, 60, 75, 120, 180))}.{rng.choice(('00', '50'))}",
        "hs_appointment_date": iso_ms(start - start % DAY_MS)[:10],
        "hs_is_first_visit": rng.choice(("true", "false", "false")),
        "hs_appointment_services": service_code,
        "external_appointment_id": f"EXT-{index:06d}",
    }
    return SeededRecord(properties, created, updated)


def contact(seed: int, index: int, origin_ms: int) -> SeededRecord:
    rng = random.Random(seed * 2_000_003 + index)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    created = origin_ms - rng.randrange(365 * DAY_MS)
    email = f"{first}.{last}.{index}@example.com".lower().encode("ascii", "ignore").decode()
    return SeededRecord({"firstname": first, "lastname": last, "email": email}, created, created)


def company(seed: int, index: int, origin_ms: int) -> SeededRecord:
    name = f"{COMPANY_NAMES[index % len(COMPANY_NAMES)]} {index}"
    created = origin_ms - (index + 1) * DAY_MS
    return SeededRecord({"name": name, "domain": f"{name.lower().replace(' ', '-')}.example.com"}, created, created)


def deal(seed: int, index: int, origin_ms: int) -> SeededRecord:
    created = origin_ms - (index + 1) * DAY_MS
    return SeededRecord({"dealname": f"Care plan {index}", "amount": str(500 + 50 * index)}, created, created)


def associated_contact(index: int, contacts: int) -> int | None:
    """The contact (0-based) a seeded appointment is associated with; every third has none."""
    return None if index % 3 == 0 else (index * 7) % contacts
