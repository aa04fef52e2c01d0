"""Processes sharing one account's 10-second budget, side by side: how much of it they use.

``python tests/benchmarks/shared_budget.py [--total N] [--processes 1,4,12,24] [--pacing-from FILE]``

Starts a simulator in its own process (300 requests / 10 s, 80 ms latency, no search or daily
limit), then, for each count P in ``--processes``, P processes at once (the bulk backfill DAG's mapped
shards), each upserting its part of ``--total`` records through
``HubSpotAppointmentsHook().get_conn().batch_upsert``. The processes start together once all have
imported Airflow (a barrier of files, not a fixed delay: 24 imports on 2 cores take a while). Printed per
run: records, seconds, requests, requests/s against the ceiling (limit / 10 s) and the simulator's
429 count, and two percentages of the ceiling:

- ``whole run``: requests over the run's seconds, as ``run.py`` reports it. A rolling window admits a
  whole budget at once at the start, so short runs score well above 100 %;
- ``window use``: how full the rolling window was, on average over the run after its first 10 s
  (sends in the trailing 10 s over the limit, sampled every 50 ms, from the clients' send times): the
  fraction of the account's budget the clients kept busy. This is the figure the pacing targets.

``--pacing-from`` loads another ``pacing.py`` in the workers (e.g. a copy of git HEAD's, to compare).
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("AIRFLOW_HOME", "/tmp/hubspot-bench-airflow")
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"

PACING_MODULE = "airflow_provider_appointments.transport.pacing"


def _inputs(prefix: str, count: int) -> list[dict]:
    return [{"id": f"{prefix}-{i:07d}", "properties": {"hs_appointment_name": f"Bench {i}",
                                                       "hs_duration": str(30 + i % 60),
                                                       "hs_appointment_status": "SCHEDULED"}} for i in range(count)]


def _barrier(folder: str, name: str, parties: int, timeout_s: float = 900.0) -> None:
    """Wait until `parties` workers are ready, then until one second after the last one was."""
    ready = os.path.join(folder, name)
    with open(ready, "w"):
        pass
    deadline = time.time() + timeout_s
    while len(os.listdir(folder)) < parties:
        if time.time() > deadline:
            raise TimeoutError(f"only {len(os.listdir(folder))} of {parties} workers got ready")
        time.sleep(0.05)
    last = max(os.path.getmtime(os.path.join(folder, entry)) for entry in os.listdir(folder))
    time.sleep(max(0.0, last + 1.0 - time.time()))


def upsert(connection: str, prefix: str, count: int, pacing_from: str | None, barrier: tuple[str, int]) -> dict:
    """One task: upsert `count` records; its own counts and the wall-clock moment of every send."""
    if pacing_from:  # before the transport imports `Pacer`
        spec = importlib.util.spec_from_file_location(PACING_MODULE, pacing_from)
        module = importlib.util.module_from_spec(spec)
        sys.modules[PACING_MODULE] = module
        spec.loader.exec_module(module)
    os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = connection
    from airflow_provider_appointments.hooks.hubspot import HubSpotAppointmentsHook

    client = HubSpotAppointmentsHook().get_conn()
    inputs = _inputs(prefix, count)
    limiter = client.transport.limiter
    sends: list[float] = []
    acquire = limiter.acquire

    def recording_acquire() -> float:
        moment = acquire()
        sends.append(time.time())
        return moment

    limiter.acquire = recording_acquire  # this instance only: the wall-clock time of every send
    _barrier(barrier[0], prefix, barrier[1])  # every process starts together, imports done
    began = time.time()
    result = client.batch_upsert(inputs, id_property="external_appointment_id")
    ended = time.time()
    return {"records": result.succeeded, "failed": result.failed, "began": began, "ended": ended,
            "requests": client.transport.requests_sent, "429s": client.transport.rate_limited,
            "retries": client.transport.retries, "sends": sends}


def run(sim, processes: int, records: int, pacing_from: str | None, label: str, budget: int) -> dict:
    before = sim.stats()
    connection = sim.airflow_connection_json()
    with tempfile.TemporaryDirectory() as folder, \
            ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(upsert, connection, f"{label}{i}", records, pacing_from, (folder, processes))
                   for i in range(processes)]
        results = [future.result() for future in futures]
    after = sim.stats()
    began, ended = min(r["began"] for r in results), max(r["ended"] for r in results)
    seconds = ended - began
    sends = sorted(moment for r in results for moment in r["sends"])
    ceiling = budget / 10.0
    use, samples, low, high, moment = 0.0, 0, 0, 0, began + 10.0
    while moment <= ended:  # the trailing 10 s at each sampled moment, sends as two pointers
        while high < len(sends) and sends[high] <= moment:
            high += 1
        while low < high and sends[low] <= moment - 10.0:
            low += 1
        use, samples, moment = use + (high - low) / budget, samples + 1, moment + 0.05
    window_use = use / samples if samples else float("nan")
    # The densest 10 s of sends seen from the clients (the server may count a little later).
    densest, low = 0, 0
    for high, moment in enumerate(sends):
        while moment - sends[low] >= 10.0:
            low += 1
        densest = max(densest, high - low + 1)
    return {"label": label, "processes": processes, "records": sum(r["records"] for r in results),
            "failed": sum(r["failed"] for r in results), "seconds": seconds, "requests": len(sends),
            "server_requests": after["requests"] - before["requests"],
            "429s": after["rate_limited"] - before["rate_limited"], "retries": sum(r["retries"] for r in results),
            "whole_pct": len(sends) / seconds / ceiling, "window_use": window_use, "densest_10s": densest}


def show(row: dict, budget: int) -> None:
    print(f"{row['label']:<10}{row['processes']:>5}{row['records']:>9}{row['failed']:>7}{row['seconds']:>9.1f}"
          f"{row['requests']:>9}{row['requests'] / row['seconds']:>8.1f}{row['whole_pct']:>11.0%}"
          f"{row['window_use']:>12.1%}"
          f"{row['429s']:>6}{row['retries']:>8}{row['densest_10s']:>8}/{budget}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=100_000, help="records of each run, split over its processes")
    parser.add_argument("--processes", default="1,4,12,24", help="process counts to run, side by side")
    parser.add_argument("--budget", type=int, default=300, help="requests per 10 s")
    parser.add_argument("--latency-ms", type=float, default=80.0)
    parser.add_argument("--pacing-from", default=None, help="a pacing.py to use instead of the installed one")
    args = parser.parse_args(argv)
    from airflow_provider_appointments.simulator import SimulatorConfig, SimulatorProcess

    config = SimulatorConfig(seed_appointments=0, latency_ms=args.latency_ms, requests_per_10s=args.budget,
                             search_requests_per_second=None, daily_limit=None)
    print(f"budget {args.budget} requests / 10 s (ceiling {args.budget / 10:.0f} req/s), "
          f"latency {args.latency_ms} ms, pacing: {args.pacing_from or 'installed'}", flush=True)
    print(f"{'run':<10}{'procs':>5}{'records':>9}{'failed':>7}{'seconds':>9}{'requests':>9}{'req/s':>8}"
          f"{'whole run':>11}{'window use':>12}{'429s':>6}{'retries':>8}{'max 10s':>12}", flush=True)
    with SimulatorProcess(config) as sim:
        for number, processes in enumerate(int(count) for count in args.processes.split(",")):
            if number:
                time.sleep(10.5)  # an empty window for the next run
            label = "lone" if processes == 1 else f"p{processes}-"
            show(run(sim, processes, args.total // processes, args.pacing_from, label, args.budget), args.budget)
    return 0


if __name__ == "__main__":
    sys.exit(main())
