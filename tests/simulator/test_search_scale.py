"""Search: the indexed path against a naive reference, malformed bodies, search lag, and a million records."""

from __future__ import annotations

import random
import statistics
import time

import pytest
import requests

from airflow_provider_appointments.simulator import Simulator, SimulatorConfig, search_query
from airflow_provider_appointments.simulator import search as searching
from airflow_provider_appointments.simulator.__main__ import config_from, parse_args
from airflow_provider_appointments.simulator.errors import HubSpotHTTPError
from airflow_provider_appointments.simulator.properties import iso_ms
from airflow_provider_appointments.simulator.seed import default_counts
from airflow_provider_appointments.simulator.store import Store

ORIGIN = 1_767_225_600_000  # 2026-01-01T00:00:00Z
KIND = "appointments"
SEARCH = "/crm/objects/2026-03/appointments/search"


# -- reference -----------------------------------------------------------------------------------
def reference(store: Store, body: dict) -> tuple[int, list[int]]:
    """What a search must answer, computed the slow way: every active record, one by one."""
    schema = store.schema(KIND)
    request = search_query.parse_request(schema, body, 0)
    matches = [r for r in store.iter_records(KIND, archived=False) if search_query.record_matches(r, request)]
    if request.sort is None:
        matches.sort(key=lambda r: r.id)
    else:
        definition, descending = request.sort
        convert = search_query.value_converter(definition)

        def key(record):
            value = record.value(definition.name)
            if value is None:
                return (1, 0, record.id)
            converted = convert(value)
            if descending:
                converted = -converted if isinstance(converted, float) else _Reversed(converted)
            return (0, converted, record.id)

        matches.sort(key=key)
    page = matches[request.after:request.after + request.limit]
    return len(matches), [r.id for r in page]


class _Reversed:
    def __init__(self, value):
        self.value = value

    def __lt__(self, other):
        return self.value > other.value

    def __eq__(self, other):
        return self.value == other.value


def indexed(store: Store, body: dict) -> tuple[int, list[int]]:
    schema = store.schema(KIND)
    total, records = searching.run(store, schema, search_query.parse_request(schema, body, 0))
    return total, [r.id for r in records]


def window(low, high, *extra, sort="hs_lastmodifieddate", direction="ASCENDING", after=0, limit=200):
    filters = [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(low)},
               {"propertyName": "hs_lastmodifieddate", "operator": "LT", "value": str(high)}, *extra]
    return {"filterGroups": [{"filters": filters}], "sorts": [{"propertyName": sort, "direction": direction}],
            "limit": limit, "after": str(after), "properties": ["hs_appointment_status"]}


def keyset(last_id, upper=None, *extra, limit=200):
    filters = [{"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)}, *extra]
    if upper is not None:
        filters.append({"propertyName": "hs_object_id", "operator": "LTE", "value": str(upper)})
    return {"filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}], "limit": limit}


STATUS_EQ = {"propertyName": "hs_appointment_status", "operator": "EQ", "value": "COMPLETED"}


@pytest.fixture(scope="module")
def written_store():
    """3,000 seeded appointments (with tied timestamps) plus updates, creations, archives and purges."""
    store = Store(5, default_counts(3_000), ORIGIN)
    rng = random.Random(11)
    at = ORIGIN + 1_000
    for record_id in rng.sample(range(100_001, 103_001), 120):
        record = store.get(KIND, record_id)
        store.update(record, {"hs_appointment_status": rng.choice(["COMPLETED", "CANCELED", "SCHEDULED"])},
                     at if record_id % 3 else ORIGIN - 5 * 86_400_000 + record_id, "test")
        at += rng.choice([0, 0, 7])  # ties among written records too
    for record_id in rng.sample(range(100_001, 103_001), 40):
        store.archive(store.get(KIND, record_id), at)
    for record_id in rng.sample(range(100_001, 103_001), 10):
        record = store.get(KIND, record_id)
        if record is not None:
            store.purge(record)
    for number in range(60):
        store.create(KIND, {"hs_appointment_name": f"new {number}",
                            "hs_appointment_status": "COMPLETED" if number % 2 else "SCHEDULED"},
                     at + number // 3, "test")
    return store


def test_indexed_search_answers_exactly_what_the_reference_does(written_store):
    store = written_store
    table = store.tables[KIND]
    low, high = int(table.updated_ms.min()), int(table.updated_ms.max())
    middle = (low + high) // 2
    now = store.now_ms() + 10_000
    bodies = [
        window(low, now), window(low, middle), window(middle, now, after=400), window(middle, now, after=1_000),
        window(low, now, STATUS_EQ), window(low, middle, STATUS_EQ, after=200),
        window(low, now, direction="DESCENDING"), window(middle, now, STATUS_EQ, direction="DESCENDING", after=200),
        window(low, now, sort="hs_object_id"), window(low, now, sort="hs_createdate", direction="DESCENDING"),
        window(low, now, sort="hs_appointment_start"), window(low, now, sort="hs_appointment_status", limit=50),
        window(middle, middle + 1), window(middle, middle),
        keyset(0), keyset(100_500), keyset(102_900), keyset(102_950, None, STATUS_EQ), keyset(100_000, 101_000),
        keyset(101_000, 101_000), keyset(store.next_id[KIND] - 10), keyset(100_000, 102_000, STATUS_EQ),
        {"limit": 100, "after": "2900"}, {"sorts": ["-hs_lastmodifieddate"], "limit": 37, "after": "3"},
        {"filterGroups": [{"filters": [STATUS_EQ]},
                          {"filters": [{"propertyName": "hs_object_id", "operator": "LT", "value": "100100"}]}],
         "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}], "limit": 200, "after": "100"},
        {"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "BETWEEN", "value": "100010.5",
                                        "highValue": "100020"}]}], "sorts": [{"propertyName": "hs_object_id"}]},
        {"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": "100042"}]}],
         "sorts": [{"propertyName": "hs_object_id"}]},
        {"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": "1e30"}]}],
         "sorts": [{"propertyName": "hs_object_id"}]},
        {"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "LT", "value": "-1e30"}]}]},
        {"filterGroups": [{"filters": [{"propertyName": "external_appointment_id", "operator": "EQ",
                                        "value": "EXT-000017"}]}], "sorts": [{"propertyName": "hs_lastmodifieddate"}]},
        {"query": "checkup", "sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}], "limit": 200},
    ]
    for body in bodies:
        assert indexed(store, body) == reference(store, body), body


def test_pages_of_a_window_never_repeat_or_skip(written_store):
    store = written_store
    low, high = int(store.tables[KIND].updated_ms.min()), store.now_ms() + 1
    total, seen, after = None, [], 0
    while True:
        page_total, ids = indexed(store, window(low, high, after=after))
        total = page_total if total is None else total
        assert page_total == total
        seen += ids
        after += 200
        if after >= total or after + 200 > 10_000:
            break
    assert len(seen) == len(set(seen)) == min(total, after)


# -- malformed bodies ----------------------------------------------------------------------------
BAD_BODIES = [
    {"limit": -1}, {"limit": 0}, {"limit": 10**12}, {"limit": "many"}, {"limit": 1.5}, {"limit": [10]},
    {"limit": True}, {"after": "abc"}, {"after": -5}, {"after": {"x": 1}}, {"after": [3]}, {"after": 2.5},
    {"filterGroups": {}}, {"filterGroups": "x"}, {"filterGroups": 7}, {"filterGroups": [1]},
    {"filterGroups": [{"filters": "x"}]}, {"filterGroups": [{"filters": None}]}, {"filterGroups": [{"filters": [5]}]},
    {"filterGroups": [{"filters": [["hs_object_id", "EQ", "1"]]}]}, {"filters": 5}, {"filters": {"a": 1}},
    {"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": "abc"}]},
    {"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": {"x": 1}}]},
    {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "yesterday"}]},
    {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "1e400"}]},
    {"filters": [{"propertyName": "hs_object_id", "operator": "IN", "values": "1,2"}]},
    {"filters": [{"propertyName": "hs_object_id", "operator": "BETWEEN", "value": "1"}]},
    {"filters": [{"propertyName": ["x"], "operator": "EQ", "value": "1"}]},
    {"filters": [{"propertyName": "hs_object_id", "operator": {"x": 1}, "value": "1"}]},
    {"sorts": "hs_object_id"}, {"sorts": {"propertyName": "hs_object_id"}}, {"sorts": 5}, {"sorts": [5]},
    {"sorts": [None]}, {"sorts": [["hs_object_id"]]}, {"sorts": [{"propertyName": "hs_object_id", "direction": "UP"}]},
    {"sorts": [{"propertyName": "hs_object_id", "direction": 1}]}, {"sorts": [{"direction": "ASCENDING"}]},
    {"sorts": [{"propertyName": "hs_object_id"}, {"propertyName": "hs_createdate"}]},
    {"properties": [{"name": "x"}]}, {"properties": 5}, {"properties": [None]},
    {"after": "9999", "limit": 2}, [], "text", 5,
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))])
def test_malformed_search_bodies_answer_hubspots_400(body):
    schema = Store(1, default_counts(10), ORIGIN).schema(KIND)
    with pytest.raises(HubSpotHTTPError) as raised:
        search_query.parse_request(schema, body, 10)
    assert raised.value.status == 400 and raised.value.category == "VALIDATION_ERROR"


def test_malformed_search_bodies_over_http_are_400_never_500(hubspot_simulator_factory):
    sim = hubspot_simulator_factory(seed_appointments=30)
    headers = {"Authorization": f"Bearer {sim.token}"}
    for body in BAD_BODIES:
        response = requests.post(sim.url + SEARCH, json=body, headers=headers, timeout=30)
        assert response.status_code == 400, (body, response.text)
        answer = response.json()
        assert answer["status"] == "error" and answer["category"] == "VALIDATION_ERROR" and answer["correlationId"]
    fine = requests.post(sim.url + SEARCH, json={"limit": None, "after": None, "filterGroups": None, "sorts": []},
                         headers=headers, timeout=30)
    assert fine.status_code == 200 and fine.json()["total"] == 30
    # EQ reads `value`; a stray `values` of the wrong type is ignored, never a 500 (found by the fuzzer).
    stray = requests.post(sim.url + SEARCH, headers=headers, timeout=30, json={"filterGroups": [{"filters": [
        {"propertyName": "hs_appointment_name", "operator": "EQ", "value": "x", "values": 1}]}]})
    assert stray.status_code == 200 and stray.json()["total"] == 0


# -- search lag ----------------------------------------------------------------------------------
def _find(sim, headers, filters):
    body = {"filterGroups": [{"filters": filters}], "properties": ["hs_appointment_status", "hs_appointment_name"],
            "limit": 200}
    response = requests.post(sim.url + SEARCH, json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_search_sees_writes_only_after_the_lag(hubspot_simulator_factory):
    sim = hubspot_simulator_factory(seed_appointments=40, search_lag_ms=2000)  # room for a busy 2-core box
    headers = {"Authorization": f"Bearer {sim.token}"}
    base = sim.url + "/crm/objects/2026-03/appointments"
    before = requests.get(f"{base}/100005", params={"properties": "hs_appointment_name"}, headers=headers,
                          timeout=30).json()
    by_name = [{"propertyName": "hs_appointment_name", "operator": "EQ", "value": "Lagging update"}]
    by_id = [{"propertyName": "hs_object_id", "operator": "EQ", "value": "100005"}]

    updated = requests.patch(f"{base}/100005", json={"properties": {"hs_appointment_name": "Lagging update"}},
                             headers=headers, timeout=30)
    created = requests.post(base, json={"properties": {"hs_appointment_name": "Lagging create"}}, headers=headers,
                            timeout=30).json()
    archived = requests.delete(f"{base}/100007", headers=headers, timeout=30)
    written_at = time.monotonic()
    assert updated.status_code == 200 and archived.status_code == 204
    # Reads see every write at once ...
    read = requests.get(f"{base}/100005", params={"properties": "hs_appointment_name"}, headers=headers, timeout=30)
    assert read.json()["properties"]["hs_appointment_name"] == "Lagging update"
    assert requests.get(f"{base}/{created['id']}", headers=headers, timeout=30).status_code == 200
    batch = requests.post(f"{base}/batch/read",
                          json={"inputs": [{"id": "100005"}], "properties": ["hs_appointment_name"]},
                          headers=headers, timeout=30).json()
    assert batch["results"][0]["properties"]["hs_appointment_name"] == "Lagging update"
    # ... search does not yet: the old state, old modified date included; no new record; the archived one still there.
    assert _find(sim, headers, by_name)["total"] == 0
    old = _find(sim, headers, by_id)["results"][0]
    assert old["properties"]["hs_appointment_name"] == before["properties"]["hs_appointment_name"]
    assert old["properties"]["hs_lastmodifieddate"] == before["properties"]["hs_lastmodifieddate"]
    created_filter = [{"propertyName": "hs_object_id", "operator": "EQ", "value": created["id"]}]
    assert _find(sim, headers, created_filter)["total"] == 0
    archived_filter = [{"propertyName": "hs_object_id", "operator": "EQ", "value": "100007"}]
    assert _find(sim, headers, archived_filter)["total"] == 1
    assert _find(sim, headers, [])["total"] == 40
    assert time.monotonic() - written_at < 2.0, "the checks above took longer than the lag; the box is too slow"

    time.sleep(max(0.0, written_at + 2.15 - time.monotonic()))
    found = _find(sim, headers, by_name)
    assert found["total"] == 1 and found["results"][0]["id"] == "100005"
    assert found["results"][0]["properties"]["hs_lastmodifieddate"] == read.json()["properties"]["hs_lastmodifieddate"]
    assert _find(sim, headers, created_filter)["results"][0]["properties"]["hs_appointment_name"] == "Lagging create"
    assert _find(sim, headers, archived_filter)["total"] == 0
    assert _find(sim, headers, [])["total"] == 40


def test_each_write_becomes_searchable_lag_after_it_was_applied():
    lag = {"ms": 10_000}
    store = Store(3, default_counts(20), ORIGIN, search_lag_ms=lambda: lag["ms"])
    schema = store.schema(KIND)

    def names(now_ms):
        overrides, _ = store.search_overrides(KIND, now_ms)
        record = overrides.get(100_003, store.get(KIND, 100_003))
        return record.value("hs_appointment_name") if record is not None and not record.archived else None

    original = store.get(KIND, 100_003).value("hs_appointment_name")
    first = store.now_ms()
    store.update(store.get(KIND, 100_003), {"hs_appointment_name": "one"}, first, "t")
    store.update(store.get(KIND, 100_003), {"hs_appointment_name": "two"}, first + 1, "t")
    assert names(first) == original
    assert names(first + 10_000 + 50) == "two"  # both writes are past their lag
    assert store.get(KIND, 100_003).value("hs_appointment_name") == "two"
    lag["ms"] = 0  # no lag: writes are searchable at once
    store.update(store.get(KIND, 100_003), {"hs_appointment_name": "three"}, first + 2, "t")
    request = search_query.parse_request(schema, {"filters": [{"propertyName": "hs_appointment_name", "operator": "EQ",
                                                            "value": "three"}]}, 0)
    assert searching.run(store, schema, request)[0] == 1


def test_search_lag_is_configured_by_config_cli_and_at_runtime():
    assert SimulatorConfig().search_lag_ms == 0
    assert config_from(parse_args(["--search-lag-ms", "3000"])).search_lag_ms == 3000
    with pytest.raises(ValueError):
        SimulatorConfig(search_lag_ms=-1)
    sim = Simulator(SimulatorConfig(seed_appointments=5, search_lag_ms=250))
    assert sim.store.lag_ms() == 250
    sim.configure(search_lag_ms=0)
    assert sim.store.lag_ms() == 0


# -- scale ---------------------------------------------------------------------------------------
def _median_ms(store, body, repeats=7):
    schema = store.schema(KIND)
    request = search_query.parse_request(schema, body, 0)
    searching.run(store, schema, request)  # builds the index once
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        total, records = searching.run(store, schema, request)
        times.append((time.perf_counter() - started) * 1000)
        assert records
    return statistics.median(times), total


@pytest.mark.slow
def test_a_million_seeded_appointments_answer_search_pages_fast():
    store = Store(7, default_counts(1_000_000), ORIGIN)
    table = store.tables[KIND]
    for record_id in range(100_001, 1_100_001, 25_000):  # a few written records in the overlay
        store.update(store.get(KIND, record_id), {"hs_appointment_status": "COMPLETED"}, store.now_ms(), "t")
    low, high = int(table.updated_ms.min()), store.now_ms() + 1
    middle = low + (int(table.updated_ms.max()) - low) // 2
    figures = {
        "windowed (after 9,800)": _median_ms(store, window(low, high, after=9_800)),
        "windowed 1 day": _median_ms(store, window(middle, middle + 86_400_000, after=2_000)),
        "windowed + EQ": _median_ms(store, window(low, high, STATUS_EQ, after=4_000)),
        "keyset": _median_ms(store, keyset(600_000)),
        "keyset + upper": _median_ms(store, keyset(600_000, 700_000)),
        "keyset + EQ": _median_ms(store, keyset(600_000, None, STATUS_EQ)),
    }
    for name, (ms, total) in figures.items():
        print(f"{name}: {ms:.1f} ms (total {total})")
    assert figures["windowed (after 9,800)"][1] == 1_000_000
    for name, (ms, _) in figures.items():
        assert ms < 500, f"{name} took {ms:.0f} ms"
    assert indexed(store, keyset(1_099_990)) == (10, list(range(1_099_991, 1_100_001)))
    assert iso_ms(int(table.updated_ms.max())) < iso_ms(high)
