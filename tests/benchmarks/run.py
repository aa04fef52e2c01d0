"""Benchmarks, side by side in one run against one simulator configuration (``make bench`` / ``make bench-quick``).

Write contenders (each in a fresh process, so peak RSS is its own): this provider's hook, HubSpot's
official Python SDK (``hubspot-api-client``, its batch API in a loop as its users write it) and a
plain ``requests`` loop, on the same records, against a simulator in its own process with realistic
latency and a rate budget that a sequential client cannot reach. Then four processes sharing one
account, extract throughput and memory, and DataFrame serialization.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

os.environ.setdefault("AIRFLOW_HOME", "/tmp/hubspot-bench-airflow")
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _inputs(prefix: str, count: int) -> list[dict]:
    return [{"id": f"{prefix}-{i:07d}",
             "properties": {"hs_appointment_name": f"Bench {i}", "hs_duration": str(30 + i % 60),
                            "hs_appointment_status": "SCHEDULED"}} for i in range(count)]


def ours(url: str, token: str, prefix: str, count: int, concurrency: int) -> dict:
    import json

    os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = json.dumps({"conn_type": "hubspot", "host": url, "password": token,
                                                            "extra": {"concurrency": concurrency}})
    from airflow_provider_appointments.hooks.hubspot import HubSpotAppointmentsHook

    hook = HubSpotAppointmentsHook().get_conn()
    hook.get_property_schema()  # connection set up before the clock starts, as for the other contenders
    began, started = time.time(), time.perf_counter()
    result = hook.batch_upsert(_inputs(prefix, count), id_property="external_appointment_id")
    seconds = time.perf_counter() - started
    return {"records": result.succeeded, "failed": result.failed, "seconds": seconds, "retries": hook.transport.retries,
            "rss_mb": _rss_mb(), "began": began, "ended": began + seconds}


def sdk(url: str, token: str, prefix: str, count: int, concurrency: int) -> dict:
    from hubspot import HubSpot
    from hubspot.crm.objects import BatchInputSimplePublicObjectBatchInputUpsert, SimplePublicObjectBatchInputUpsert

    client = HubSpot(access_token=token, host=url)
    started, done, retries = time.perf_counter(), 0, 0
    inputs = _inputs(prefix, count)
    for start in range(0, count, 100):
        batch = BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
            SimplePublicObjectBatchInputUpsert(id=item["id"], id_property="external_appointment_id",
                                               properties=item["properties"])
            for item in inputs[start:start + 100]])
        while True:
            try:
                client.crm.objects.batch_api.upsert(object_type="0-421",
                                                    batch_input_simple_public_object_batch_input_upsert=batch)
                done += len(batch.inputs)
                break
            except Exception as error:  # what SDK users write: catch the 429 ApiException, sleep, try again
                if getattr(error, "status", None) != 429:
                    raise
                retries += 1
                time.sleep(10)
    return {"records": done, "failed": count - done, "seconds": time.perf_counter() - started, "retries": retries,
            "rss_mb": _rss_mb()}


def plain(url: str, token: str, prefix: str, count: int, concurrency: int) -> dict:
    import requests

    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    started, done, retries = time.perf_counter(), 0, 0
    inputs = _inputs(prefix, count)
    for start in range(0, count, 100):
        body = {"inputs": [{**item, "idProperty": "external_appointment_id"} for item in inputs[start:start + 100]]}
        while True:
            response = session.post(f"{url}/crm/objects/2026-03/appointments/batch/upsert", json=body, headers=headers,
                                    timeout=60)
            if response.status_code == 429:
                retries += 1
                time.sleep(float(response.headers.get("Retry-After", 10)))
                continue
            response.raise_for_status()
            done += len(body["inputs"])
            break
    return {"records": done, "failed": count - done, "seconds": time.perf_counter() - started, "retries": retries,
            "rss_mb": _rss_mb()}


def extract(url: str, token: str, path: str, baseline: bool) -> dict:
    """Full extract to Parquet (what the extract operator does), or the bare requests loop baseline."""
    import json

    os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = json.dumps({"conn_type": "hubspot", "host": url, "password": token})
    import requests

    from airflow_provider_appointments.hooks.hubspot import HubSpotAppointmentsHook
    from airflow_provider_appointments.records.writers import ExtractWriter

    hook = HubSpotAppointmentsHook().get_conn()
    schema = hook.get_property_schema()  # imports and set-up are not per-record costs
    started_cpu, started = time.process_time(), time.perf_counter()
    records = 0
    properties = ["hs_appointment_name", "hs_appointment_start", "hs_appointment_end", "hs_appointment_status",
                  "hs_appointment_type", "hs_appointment_location", "hs_duration", "hs_appointment_price",
                  "hs_appointment_date", "hs_is_first_visit", "external_appointment_id"]
    if baseline:
        session, after = requests.Session(), None
        while True:
            params = {"limit": 100, "properties": ",".join(properties), **({"after": after} if after else {})}
            body = session.get(f"{url}/crm/objects/2026-03/appointments", params=params,
                               headers={"Authorization": f"Bearer {token}"}, timeout=60).json()
            records += len(body["results"])
            after = body.get("paging", {}).get("next", {}).get("after")
            if not after:
                break
    else:
        writer = ExtractWriter(path, "parquet", schema, properties)
        for page in hook.iter_appointments(properties=properties):
            writer.write_page(page)
        records = writer.close()["records"]
    return {"records": records, "seconds": time.perf_counter() - started, "cpu_s": time.process_time() - started_cpu,
            "rss_mb": _rss_mb()}


def serialization(rows: int) -> dict:
    import numpy as np
    import pandas as pd

    from airflow_provider_appointments.records.properties import PropertySchema
    from airflow_provider_appointments.records.serialization import serialize_frame
    from airflow_provider_appointments.simulator.properties import APPOINTMENT_PROPERTIES

    schema = PropertySchema.from_api([spec.as_api() for spec in APPOINTMENT_PROPERTIES.values()])
    index = np.arange(rows)
    frame = pd.DataFrame({
        "external_appointment_id": [f"K-{i}" for i in index], "hs_appointment_name": "Checkup",
        "hs_appointment_start": pd.Timestamp("2026-06-01", tz="UTC") + pd.to_timedelta(index % 10_000, unit="min"),
        "hs_appointment_status": np.where(index % 2, "SCHEDULED", "COMPLETED"), "hs_duration": index % 90,
        "hs_appointment_price": (index % 500) / 4, "hs_is_first_visit": index % 3 == 0,
        "hs_appointment_date": pd.Timestamp("2026-06-01"),
    })
    started = time.perf_counter()
    result = serialize_frame(frame, schema)
    return {"rows": len(result.rows), "seconds": time.perf_counter() - started, "errors": len(result.errors)}


def _in_fresh_process(function: Any, *args: Any) -> dict:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about two minutes)")
    parser.add_argument("--latency-ms", type=float, default=80.0)
    parser.add_argument("--budget", type=int, default=150, help="requests per 10 s")
    args = parser.parse_args(argv)
    writes = 15_000 if args.quick else 60_000
    extracts = [20_000] if args.quick else [100_000, 1_000_000]
    serialize_rows = 100_000 if args.quick else 1_000_000
    from airflow_provider_appointments.simulator import SimulatorConfig, SimulatorProcess

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
          f"Python {platform.python_version()}")
    print(f"writes: {writes} upserts per contender; simulator latency {args.latency_ms} ms, "
          f"budget {args.budget} req/10 s (ceiling {args.budget * 10} records/s)\n")
    ceiling = args.budget * 100 / 10
    config = SimulatorConfig(seed_appointments=0, latency_ms=args.latency_ms, requests_per_10s=args.budget,
                             search_requests_per_second=None, daily_limit=None)
    rows = []
    with SimulatorProcess(config) as sim:
        contenders = (("this provider (hook)", ours), ("hubspot-api-client SDK", sdk), ("plain requests loop", plain))
        for name, function in contenders:
            time.sleep(10.5)  # an empty window for each contender
            before = sim.stats()["rate_limited"]
            result = _in_fresh_process(function, sim.url, sim.token, name.split()[0].upper(), writes, 8)
            result["429s"] = sim.stats()["rate_limited"] - before
            rows.append((name, result))
        time.sleep(10.5)
        before = sim.stats()["rate_limited"]
        with ProcessPoolExecutor(max_workers=4, mp_context=multiprocessing.get_context("spawn")) as pool:
            shared = list(pool.map(ours, [sim.url] * 4, [sim.token] * 4, [f"SHARED{i}" for i in range(4)],
                                   [writes // 4] * 4, [8] * 4))
        # From the first process's first request to the last one's end (process start-up excluded).
        shared_seconds = max(r["ended"] for r in shared) - min(r["began"] for r in shared)
        shared_429 = sim.stats()["rate_limited"] - before
    sdk_rate = rows[1][1]["records"] / rows[1][1]["seconds"]
    print(f"{'contender':<24}{'records':>9}{'seconds':>9}{'rec/s':>9}{'% ceiling':>11}{'429s':>6}{'retries':>9}"
          f"{'peak RSS':>10}{'vs SDK':>8}")
    for name, r in rows:
        rate = r["records"] / r["seconds"]
        print(f"{name:<24}{r['records']:>9}{r['seconds']:>9.1f}{rate:>9.0f}{rate / ceiling:>10.0%}{r['429s']:>6}"
              f"{r['retries']:>9}{r['rss_mb']:>8.0f}MB{rate / sdk_rate:>7.1f}x")
    total = sum(r["records"] for r in shared)
    print(f"\n4 processes sharing one account: {total} records in {shared_seconds:.1f}s "
          f"= {total / shared_seconds:.0f} rec/s ({total / shared_seconds / ceiling:.0%} of the ceiling), "
          f"429s {shared_429}, retries {sum(r['retries'] for r in shared)}, failed {sum(r['failed'] for r in shared)}")

    print("\nextract (list paging → Parquet), simulator in its own process, no latency, no budget:")
    for count in extracts:
        config = SimulatorConfig(seed_appointments=count, requests_per_10s=None, search_requests_per_second=None,
                                 daily_limit=None)
        with SimulatorProcess(config) as sim:
            base = _in_fresh_process(extract, sim.url, sim.token, "", True)
            ours_run = _in_fresh_process(extract, sim.url, sim.token, f"/tmp/bench-extract-{count}.parquet", False)
        extra_us = (ours_run["cpu_s"] - base["cpu_s"]) / count * 1e6
        print(f"  {count:>9} records: {ours_run['records'] / ours_run['seconds']:>7.0f} rec/s "
              f"(bare requests loop {base['records'] / base['seconds']:.0f} rec/s), "
              f"peak RSS {ours_run['rss_mb']:.0f} MB, client CPU {ours_run['cpu_s'] / count * 1e6:.1f} µs/record "
              f"= bare loop {base['cpu_s'] / count * 1e6:.1f} + {extra_us:.1f}")
    result = _in_fresh_process(serialization, serialize_rows)
    print(f"\nserialization: {result['rows']} rows × 8 columns in {result['seconds']:.2f}s "
          f"({result['rows'] / result['seconds']:.0f} rows/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
