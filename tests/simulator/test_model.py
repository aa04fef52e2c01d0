"""The simulator's model without a server: value rules, seeded data, the store's overlays."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_provider_appointments.simulator.properties import (
    APPOINTMENT_PROPERTIES,
    InvalidPropertyValue,
    iso_ms,
    normalize,
    parse_epoch_ms,
)
from airflow_provider_appointments.simulator.seed import TIE_EVERY, default_counts, generate
from airflow_provider_appointments.simulator.store import Store

ORIGIN = parse_epoch_ms("2026-11-01T00:00:00Z")
DAY = 86_400_000


@pytest.mark.parametrize("name, value, stored", [
    ("hs_appointment_start", "2026-06-01T09:00:00Z", "2026-06-01T09:00:00.000Z"),
    ("hs_appointment_start", "1780304400000", "2026-06-01T09:00:00.000Z"),
    ("hs_appointment_start", "2026-06-01T11:00:00.250+02:00", "2026-06-01T09:00:00.250Z"),
    ("hs_appointment_start", 1780304400000, "2026-06-01T09:00:00.000Z"),
    ("hs_appointment_date", "2026-06-01", "2026-06-01"),
    ("hs_appointment_date", "1780272000000", "2026-06-01"),
    ("hs_duration", "45", "45"),
    ("hs_appointment_price", 12.5, "12.5"),
    ("hs_is_first_visit", True, "true"),
    ("hs_appointment_services", "LAB;IMAGING", "LAB;IMAGING"),
    ("hs_appointment_notes", None, ""),
])
def test_values_are_stored_as_hubspot_stores_them(name, value, stored):
    assert normalize(APPOINTMENT_PROPERTIES[name], value) == stored


@pytest.mark.parametrize("name, value, code", [
    ("hs_duration", "ten", "INVALID_INTEGER"),
    ("hs_duration", "NaN", "INVALID_INTEGER"),
    ("hs_appointment_start", "next tuesday", "INVALID_DATE"),
    ("hs_appointment_date", "2026-06-01T10:00:00Z", "INVALID_DATE"),
    ("hs_appointment_status", "scheduled", "INVALID_OPTION"),
    ("hs_appointment_status", "SCHEDULED;CONFIRMED", "INVALID_OPTION"),
    ("hs_appointment_services", "LAB;SPA", "INVALID_OPTION"),
    ("hs_is_first_visit", "True", "INVALID_BOOLEAN"),
    ("hs_appointment_notes", "x" * 65_537, "INVALID_STRING_LENGTH"),
])
def test_invalid_values_get_hubspots_codes(name, value, code):
    with pytest.raises(InvalidPropertyValue) as raised:
        normalize(APPOINTMENT_PROPERTIES[name], value)
    assert raised.value.code == code and name in raised.value.message


def test_timestamps_render_with_milliseconds_and_z():
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert iso_ms(1780304400007) == "2026-06-01T09:00:00.007Z"
    assert parse_epoch_ms(iso_ms(1780304400007)) == 1780304400007


def test_seed_is_deterministic_realistic_and_spread_before_the_origin():
    first = generate(3, default_counts(2000), ORIGIN)["appointments"]
    again = generate(3, default_counts(2000), ORIGIN)["appointments"]
    other = generate(4, default_counts(2000), ORIGIN)["appointments"]
    assert [first.properties(r) for r in range(50)] == [again.properties(r) for r in range(50)]
    assert [first.properties(r) for r in range(50)] != [other.properties(r) for r in range(50)]
    record = first.properties(0)
    assert record["external_appointment_id"] == "EXT-000001" and " – " in record["hs_appointment_name"]
    assert set(record) >= {"hs_appointment_start", "hs_appointment_end", "hs_appointment_status", "hs_duration",
                           "hs_appointment_type", "hs_appointment_location", "hs_appointment_price"}
    assert (first.created_ms >= ORIGIN - 30 * DAY).all() and (first.updated_ms < ORIGIN).all()
    assert (first.updated_ms >= first.created_ms).all()
    distinct = len(np.unique(first.updated_ms))
    assert 2000 - 2000 // TIE_EVERY - 5 <= distinct < 2000  # mostly distinct, some realistic ties
    statuses = {first.properties(r)["hs_appointment_status"] for r in range(2000)}
    assert statuses == {"SCHEDULED", "CONFIRMED", "COMPLETED", "CANCELED", "NO_SHOW", "RESCHEDULED"}
    modified = int(np.flatnonzero(first.updated_ms > first.created_ms)[0])
    history = first.history(modified)
    assert [moment for moment, _ in history] == [int(first.created_ms[modified]), int(first.updated_ms[modified])]
    assert history[0][1]["hs_appointment_status"] == "SCHEDULED" != history[1][1]["hs_appointment_status"]


def test_a_million_seeded_appointments_are_cheap():
    tables = generate(7, default_counts(1_000_000), ORIGIN)
    appointments = tables["appointments"]
    assert appointments.size == 1_000_000
    assert appointments.properties(999_999)["external_appointment_id"] == "EXT-1000000"
    assert appointments.columns["external_appointment_id"].invert("EXT-1000000") == 999_999
    column_bytes = sum(a.nbytes for t in tables.values() for a in
                       [t.created_ms, t.updated_ms, *(c.codes if c.codes is not None else c.epoch_ms
                                                      for c in t.columns.values() if c.derive is None),
                        *(link for link, _ in t.links.values())])
    assert column_bytes < 150e6


def test_writes_materialise_seeded_records_and_keep_history():
    store = Store(1, default_counts(100), ORIGIN)
    view = store.get("appointments", 100_010)
    assert view is not None and 100_010 not in store.records["appointments"]
    updated = store.update(view, {"hs_duration": "99", "hs_appointment_notes": ""}, ORIGIN + 5, "tester")
    assert store.get("appointments", 100_010) is updated and updated.properties["hs_duration"] == "99"
    assert updated.updated_ms == ORIGIN + 5
    assert updated.history_of("hs_duration")[0] == {"value": "99", "timestamp": iso_ms(ORIGIN + 5),
                                                    "sourceType": "API", "sourceId": "tester"}
    same = store.update(updated, {"hs_duration": "99"}, ORIGIN + 9, "tester")
    assert same.updated_ms == ORIGIN + 5  # writing the same value is not a modification
    assert store.find_unique("appointments", "external_appointment_id", "EXT-000010") is updated
    store.update(updated, {"external_appointment_id": "MOVED"}, ORIGIN + 10, "tester")
    assert store.find_unique("appointments", "external_appointment_id", "EXT-000010") is None
    assert store.find_unique("appointments", "external_appointment_id", "MOVED") is updated
    assert store.counts()["appointments"] == {"active": 100, "archived": 0}


def test_association_overlay_keeps_both_directions_consistent():
    store = Store(2, default_counts(300), ORIGIN)
    contacts = store.tables["appointments"].links["contacts"][0]
    row = int(np.flatnonzero(contacts >= 0)[0])
    appointment, contact = 100_001 + row, 9_000_001 + int(contacts[row])
    assert store.associations_of("contacts", contact)["appointments"][appointment] == {907}
    other = 9_000_001 + (int(contacts[row]) + 1) % store.tables["contacts"].size
    store.associate("appointments", appointment, "contacts", other, {906, 1001})
    store.dissociate("appointments", appointment, "contacts", contact)
    assert appointment not in store.associations_of("contacts", contact).get("appointments", {})
    assert store.associations_of("contacts", other)["appointments"][appointment] == {907, 1002}
    assert store.associations_of("appointments", appointment)["contacts"] == {other: {906, 1001}}
    store.purge(store.get("appointments", appointment))
    assert appointment not in store.associations_of("contacts", other).get("appointments", {})
    assert store.get("appointments", appointment) is None
