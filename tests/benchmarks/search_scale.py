"""Search over a million seeded appointments, in process: median milliseconds per query page.

``python tests/benchmarks/search_scale.py [--records N] [--repeats R]``. The queries are the ones the
extract client sends: a window on hs_lastmodifieddate sorted by it (offset paging), and keyset pages
on hs_object_id; each also with an EQ filter on an enumeration (``total`` stays exact).
"""

from __future__ import annotations

import argparse
import statistics
import time

from airflow_provider_appointments.simulator import search as searching
from airflow_provider_appointments.simulator import search_query
from airflow_provider_appointments.simulator.seed import default_counts
from airflow_provider_appointments.simulator.store import Store

KIND = "appointments"
EQ = {"propertyName": "hs_appointment_status", "operator": "EQ", "value": "COMPLETED"}


def windowed(low: int, high: int, after: int, *extra: dict) -> dict:
    return {"filterGroups": [{"filters": [
        {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(low)},
        {"propertyName": "hs_lastmodifieddate", "operator": "LT", "value": str(high)}, *extra]}],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}], "limit": 200,
        "after": str(after), "properties": ["hs_appointment_name", "hs_appointment_status"]}


def keyset(last_id: int, upper: int | None, *extra: dict) -> dict:
    filters = [{"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)}, *extra]
    if upper is not None:
        filters.append({"propertyName": "hs_object_id", "operator": "LTE", "value": str(upper)})
    return {"filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "limit": 200, "properties": ["hs_appointment_name", "hs_appointment_status"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    started = time.perf_counter()
    store = Store(7, default_counts(args.records))
    print(f"seeded {args.records:,} appointments in {time.perf_counter() - started:.2f} s")
    for record_id in range(100_001, 100_001 + args.records, max(1, args.records // 50)):  # a small written overlay
        store.update(store.get(KIND, record_id), {"hs_appointment_status": "COMPLETED"}, store.now_ms(), "bench")
    schema = store.schema(KIND)
    updated = store.tables[KIND].updated_ms
    low, high = int(updated.min()), store.now_ms() + 1
    day = low + (int(updated.max()) - low) // 2
    first_id, middle_id = 100_000, 100_000 + args.records // 2
    queries = {
        "windowed, whole range, after 0": windowed(low, high, 0),
        "windowed, whole range, after 9800": windowed(low, high, 9_800),
        "windowed, one day, after 2000": windowed(day, day + 86_400_000, 2_000),
        "windowed + EQ, after 4000": windowed(low, high, 4_000, EQ),
        "keyset, from the start": keyset(first_id, None),
        "keyset, from the middle": keyset(middle_id, None),
        "keyset with upper bound": keyset(middle_id, middle_id + 100_000),
        "keyset + EQ": keyset(middle_id, None, EQ),
    }
    for name, body in queries.items():
        request = search_query.parse_request(schema, body, 0)
        started = time.perf_counter()
        total, _ = searching.run(store, schema, request)
        first = (time.perf_counter() - started) * 1000
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            searching.run(store, schema, request)
            times.append((time.perf_counter() - started) * 1000)
        print(f"{name:36s} median {statistics.median(times):6.1f} ms  (first {first:6.1f} ms, total {total:,})")


if __name__ == "__main__":
    main()
