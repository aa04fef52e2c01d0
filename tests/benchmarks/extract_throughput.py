"""Extract throughput against the account's read ceiling, side by side in one run (issue: extraction at the
read ceiling). Not part of the test suite: it prints figures.

    .venv/bin/python tests/benchmarks/extract_throughput.py [--records 100000] [--latency-ms 200]
    .venv/bin/python tests/benchmarks/extract_throughput.py --memory --records 1000000 --latency-ms 0

One simulator (its own process) with HubSpot-like latency and Professional budgets: 190 requests per
10 s (list pages of 100: 1,900 records/s) and 5 searches per second (pages of 200: 1,000 records/s).
Each contender runs in a fresh process, so its peak RSS is its own:

- full extract: this provider (list stream + keyset searches at once, written to Parquet), a plain
  ``requests`` loop one list page at a time, and HubSpot's official SDK paging loop (``get_page``);
- windowed extract (every record is in the window): this provider (concurrent sub-windows), and a
  ``requests`` loop one search page at a time (restarting past the 10,000 cap as HubSpot advises).

For each: records, distinct ids, seconds, records/s, the share of the ceiling, 429 answers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

os.environ.setdefault("AIRFLOW_HOME", "/tmp/hubspot-bench-airflow")
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"

PROPERTIES = ["hs_appointment_name", "hs_appointment_start", "hs_appointment_status", "hs_duration",
              "external_appointment_id", "hs_lastmodifieddate"]
LIST_CEILING, SEARCH_CEILING = 1_900, 1_000  # records/s: 19 list pages of 100, 5 searches of 200


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _connect(url: str, token: str) -> None:
    os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = json.dumps({"conn_type": "hubspot", "host": url, "password": token})


def ours(url: str, token: str, windowed: bool) -> dict:
    """What the extract operator does: pages from the parallel streams into one Parquet file."""
    _connect(url, token)
    from datetime import datetime, timedelta, timezone

    from airflow_provider_appointments.api.extraction import iter_everything, iter_window
    from airflow_provider_appointments.hooks.hubspot import HubSpotAppointmentsHook
    from airflow_provider_appointments.records.writers import ExtractWriter

    client = HubSpotAppointmentsHook().get_conn()
    schema = client.get_property_schema()
    path = os.path.join(tempfile.mkdtemp(), "extract.parquet")
    writer = ExtractWriter(path, "parquet", schema, PROPERTIES)
    ids: set[int] = set()
    started = time.perf_counter()
    now = datetime.now(timezone.utc)
    pages = iter_window(client, now - timedelta(days=400), now, properties=PROPERTIES) if windowed \
        else iter_everything(client, properties=PROPERTIES)
    records = 0
    for page in pages:
        writer.write_page(page)
        records += len(page)
        ids.update(int(record["id"]) for record in page)
    writer.close()
    return {"records": records, "distinct": len(ids), "seconds": time.perf_counter() - started, "rss_mb": _rss_mb(),
            "retries": client.transport.retries}


def requests_loop(url: str, token: str, windowed: bool) -> dict:
    """One page at a time, as a hand-written client does."""
    import requests

    session, headers = requests.Session(), {"Authorization": f"Bearer {token}"}
    ids: set[int] = set()
    records, started = 0, time.perf_counter()
    if not windowed:
        after = None
        while True:
            params = {"limit": 100, "properties": ",".join(PROPERTIES), **({"after": after} if after else {})}
            response = session.get(f"{url}/crm/objects/2026-03/appointments", params=params, headers=headers,
                                   timeout=60)
            if response.status_code == 429:
                time.sleep(1)
                continue
            body = response.json()
            records += len(body["results"])
            ids.update(int(record["id"]) for record in body["results"])
            after = body.get("paging", {}).get("next", {}).get("after")
            if not after:
                break
    else:
        lower, offset = 0, 0
        while True:
            body = {"filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE",
                                                   "value": str(lower)}]}],
                    "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                    "properties": PROPERTIES, "limit": 200, "after": offset}
            response = session.post(f"{url}/crm/objects/2026-03/appointments/search", json=body, headers=headers,
                                    timeout=60)
            if response.status_code == 429:
                time.sleep(1)
                continue
            answer = response.json()
            results = answer["results"]
            fresh = [r for r in results if int(r["id"]) not in ids]
            records += len(fresh)
            ids.update(int(record["id"]) for record in fresh)
            next_after = answer.get("paging", {}).get("next", {}).get("after")
            if not next_after:
                break
            offset = int(next_after)
            if offset + 200 > 10_000:  # the cap: restart from the last timestamp seen
                last = results[-1]["properties"]["hs_lastmodifieddate"]
                lower = int(time.mktime(time.strptime(last[:19], "%Y-%m-%dT%H:%M:%S")) * 1000) - 1000
                offset = 0
    return {"records": records, "distinct": len(ids), "seconds": time.perf_counter() - started, "rss_mb": _rss_mb()}


def sdk_loop(url: str, token: str, windowed: bool) -> dict:
    """HubSpot's official SDK, its basic API's paging loop (full extract only)."""
    from hubspot import HubSpot

    client = HubSpot(access_token=token, host=url)  # the simulator, never HubSpot itself
    ids: set[int] = set()
    records, after, started = 0, None, time.perf_counter()
    while True:
        page = client.crm.objects.basic_api.get_page(object_type="0-421", limit=100, after=after,
                                                     properties=PROPERTIES)
        records += len(page.results)
        ids.update(int(record.id) for record in page.results)
        if not page.paging or not page.paging.next:
            break
        after = page.paging.next.after
    return {"records": records, "distinct": len(ids), "seconds": time.perf_counter() - started, "rss_mb": _rss_mb()}


def _fresh(function: Any, *args: Any) -> dict:
    with ProcessPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--memory", action="store_true", help="only this provider's full extract (RSS check)")
    parser.add_argument("--skip", nargs="*", default=[], help="contenders to skip: loop, sdk, windowed")
    args = parser.parse_args(argv)
    from airflow_provider_appointments.simulator import SimulatorConfig, SimulatorProcess

    budgets = {} if args.memory else {"requests_per_10s": 190, "search_requests_per_second": 5}
    config = SimulatorConfig(seed_appointments=args.records, latency_ms=args.latency_ms, daily_limit=None, **budgets)
    print(f"{args.records:,} appointments, {args.latency_ms:.0f} ms latency, "
          f"{'no budgets' if args.memory else '190 requests/10 s and 5 searches/s'}")
    contenders = [("ours", "full", ours)]
    if not args.memory:
        if "loop" not in args.skip:
            contenders.append(("requests loop", "full", requests_loop))
        if "sdk" not in args.skip:
            contenders.append(("official SDK", "full", sdk_loop))
        if "windowed" not in args.skip:
            contenders += [("ours", "windowed", ours)] + (
                [("requests loop", "windowed", requests_loop)] if "loop" not in args.skip else [])
    with SimulatorProcess(config) as sim:
        for name, kind, function in contenders:
            before = sim.stats()["rate_limited"]
            result = _fresh(function, sim.url, sim.token, kind == "windowed")
            limited = sim.stats()["rate_limited"] - before
            rate = result["records"] / result["seconds"]
            ceiling = SEARCH_CEILING if kind == "windowed" else LIST_CEILING + SEARCH_CEILING
            print(f"{kind:9} {name:14} {result['records']:>9,} records ({result['distinct']:,} distinct) in "
                  f"{result['seconds']:7.1f} s = {rate:7,.0f} records/s = {rate / ceiling:5.1%} of the "
                  f"{ceiling:,}/s ceiling; {limited} × 429; peak RSS {result['rss_mb']:.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
