"""The second night of a table pushed to HubSpot: the sync with its state, with ``compare="hubspot"``, and a
blind upsert of the whole table, side by side in one run.

``python tests/benchmarks/sync_changes.py [--rows 100000] [--latency-ms 80] [--budget 190]
[--state-keys 0]``

A SQLite table of ``--rows`` bookings (Airflow's sqlite provider, ``sql=`` / ``sql_conn_id=``) is synced
into a simulator in its own process (80 ms latency, 190 requests / 10 s). Then three times, for each
contender, the table changes as a day does (1 % of rows changed, 0.5 % removed, 0.5 % added; each
time other rows) and the contender runs once:

- ``sync+state``: mirror mode, comparing with the state the previous run published;
- ``sync+hubspot``: mirror mode, ``compare="hubspot"`` (a batch read per 100 rows);
- ``blind upsert``: the upsert operator on the whole table (it cannot remove what left the table).

Printed per contender: requests, the requests the change needs (a 100-record batch per 100 upserts
and per 100 archives, plus the schema read) and their ratio, seconds and the ratio to the blind
upsert, records rewritten that did not change (``hs_lastmodifieddate`` moved), and whether HubSpot
then equals the table.

``--state-keys N`` (e.g. 1000000) instead measures memory: N keys in a Parquet source and a state of
the same N keys, a sync that finds nothing changed, in a fresh process; it prints the peak RSS during
the run (Linux: VmHWM, reset after the imports) and the process's peak with the imports' own.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("AIRFLOW_HOME", "/tmp/hubspot-bench-airflow")
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"

KEY = "external_appointment_id"
COLUMNS = (KEY, "hs_appointment_name", "hs_duration", "hs_appointment_status")


class TI:
    dag_id, task_id, run_id, map_index, try_number = "bench", "sync", "bench", -1, 1


def make_table(path: Path, rows: int) -> sqlite3.Connection:
    connection = sqlite3.connect(path)
    connection.execute(f"create table bookings ({KEY} text primary key, hs_appointment_name text, "
                       "hs_duration integer, hs_appointment_status text)")
    connection.executemany("insert into bookings values (?, ?, ?, ?)",
                           [(f"B{i:07d}", f"Booking {i}", 30 + i % 60, "SCHEDULED") for i in range(rows)])
    connection.commit()
    return connection


def change_a_day(connection: sqlite3.Connection, rng: random.Random, day: int) -> tuple[set[str], int]:
    """1 % of rows changed, 0.5 % removed, 0.5 % added: the keys that changed, left or arrived, and the
    batches writing that needs (upserts of the changed and added rows, archives of the removed ones)."""
    keys = [row[0] for row in connection.execute(f"select {KEY} from bookings")]
    count = len(keys)
    picked = rng.sample(keys, math.ceil(count * 0.02))
    changed, removed = picked[:count // 100], picked[count // 100:count // 100 + count // 200]
    added = [f"N{day}-{i:06d}" for i in range(count // 200)]
    connection.executemany("update bookings set hs_appointment_name = ? where external_appointment_id = ?",
                           [(f"Changed on day {day}", key) for key in changed])
    connection.executemany("delete from bookings where external_appointment_id = ?", [(key,) for key in removed])
    connection.executemany("insert into bookings values (?, ?, 45, 'SCHEDULED')",
                           [(key, f"Added on day {day}") for key in added])
    connection.commit()
    batches = math.ceil((len(changed) + len(added)) / 100) + math.ceil(len(removed) / 100)
    return set(changed) | set(removed) | set(added), batches


def hubspot_view(sim) -> dict[str, tuple[str, str, str]]:
    """Active appointments by key: (name, status, hs_lastmodifieddate)."""
    found = {}
    import requests

    answer = requests.get(f"{sim.url}/_simulator/state", params={"include": "appointments"}, timeout=300)
    answer.raise_for_status()
    for record in answer.json()["appointments"]:
        properties = record.get("properties") or {}
        if not record.get("archived") and properties.get(KEY):
            found[properties[KEY]] = (properties.get("hs_appointment_name"), properties.get("hs_duration"),
                                      properties.get("hs_lastmodifieddate"))
    return found


def table_view(connection: sqlite3.Connection) -> dict[str, tuple[str, str]]:
    return {key: (name, str(duration)) for key, name, duration, _ in connection.execute("select * from bookings")}


def contender(name: str, tmp: Path, state: Path):
    from airflow_provider_appointments.operators.appointments import (
        HubSpotAppointmentsSyncOperator,
        HubSpotAppointmentsUpsertOperator,
    )

    source = {"sql": "select * from bookings order by 1", "sql_conn_id": "bench_warehouse",
              "checkpoint_path": str(tmp / f"ckpt-{name}"), "max_failed_records": 0}
    if name == "blind upsert":
        return HubSpotAppointmentsUpsertOperator(task_id="upsert", id_property=KEY, **source)
    return HubSpotAppointmentsSyncOperator(task_id="sync", id_property=KEY, mode="mirror", state_path=str(state),
                                           compare="hubspot" if name == "sync+hubspot" else "state", **source)


def run_side_by_side(args: argparse.Namespace) -> int:
    from airflow_provider_appointments.simulator import SimulatorConfig, SimulatorProcess

    rng = random.Random(2026)
    tmp = Path(tempfile.mkdtemp(prefix="hubspot-sync-bench-"))
    connection = make_table(tmp / "warehouse.db", args.rows)
    os.environ["AIRFLOW_CONN_BENCH_WAREHOUSE"] = json.dumps({"conn_type": "sqlite", "host": str(tmp / "warehouse.db")})
    state = tmp / "state.parquet"
    config = SimulatorConfig(seed_appointments=0, latency_ms=args.latency_ms, requests_per_10s=args.budget,
                             search_requests_per_second=None, daily_limit=None)
    print(f"{args.rows} rows; simulator: {args.latency_ms} ms latency, {args.budget} requests / 10 s", flush=True)
    with SimulatorProcess(config) as sim:
        os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = sim.airflow_connection_json()
        sim.configure(requests_per_10s=100_000)  # the first load is setup, not measured
        began = time.perf_counter()
        first = contender("sync+state", tmp, state).execute({"ti": TI()})
        print(f"setup: first sync created {first['created']} in {time.perf_counter() - began:.0f} s "
              "(budget lifted)", flush=True)
        sim.configure(requests_per_10s=args.budget)
        time.sleep(10.5)  # an empty window for the measured runs
        rows, blind_seconds = [], None
        for day, name in enumerate(("sync+state", "sync+hubspot", "blind upsert"), start=1):
            touched, batches = change_a_day(connection, rng, day)
            before_view, before = hubspot_view(sim), sim.stats()["requests"]
            gc.collect()  # the views above are large: their garbage is not the contender's time
            started = time.perf_counter()
            result = contender(name, tmp, state).execute({"ti": TI()})
            seconds = time.perf_counter() - started
            requests = sim.stats()["requests"] - before
            after_view = hubspot_view(sim)
            table = table_view(connection)
            equal = {key: value[:2] for key, value in after_view.items()} == table if name != "blind upsert" else \
                all(after_view.get(key, (None, None))[:2] == value for key, value in table.items())
            rewritten = sum(1 for key, value in after_view.items()
                            if key in before_view and key not in touched and value[2] != before_view[key][2])
            needed = batches + 1  # and the schema read
            rows.append((name, requests, needed, seconds, rewritten, equal, result))
            if name == "blind upsert":
                blind_seconds = seconds
            time.sleep(10.5)
        print(f"{'contender':<14}{'requests':>9}{'needed':>8}{'ratio':>7}{'seconds':>9}{'× faster':>10}"
              f"{'rewritten unchanged':>21}{'HubSpot = table':>17}")
        for name, requests, needed, seconds, rewritten, equal, _ in rows:
            faster = f"{blind_seconds / seconds:.1f}" if blind_seconds else "-"
            print(f"{name:<14}{requests:>9}{needed:>8}{requests / needed:>7.2f}{seconds:>9.1f}{faster:>10}"
                  f"{rewritten:>21}{'yes' if equal else 'NO':>17}")
        print("blind upsert: HubSpot = table compares the table's rows only (it cannot archive the removed ones)")
    return 0


MEMORY_SCRIPT = """
import os, resource, sys, json, time
import pandas as pd, pyarrow as pa, pyarrow.parquet as pq
from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsSyncOperator
source, state, keys = sys.argv[1], sys.argv[2], int(sys.argv[3])
class TI:
    dag_id, task_id, run_id, map_index, try_number = "bench", "sync", "mem", -1, 1
def status(field):
    return int(open("/proc/self/status").read().split(field + ":")[1].split()[0]) / 1024
import gc; gc.collect()
base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as refs:  # the peak from here on: not the imports' own peak
    refs.write("5")
started = time.perf_counter()
result = HubSpotAppointmentsSyncOperator(task_id="sync", records=source, id_property="external_appointment_id",
                                         mode="mirror", state_path=state, checkpoint_path=None).execute({"ti": TI()})
print(json.dumps({"result": {k: result[k] for k in ("records", "unchanged", "requests")}, "import_mb": base,
                  "peak_mb": status("VmHWM"),
                  "import_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.perf_counter() - started}))
"""


def run_memory(args: argparse.Namespace) -> int:
    """N keys in a source file and in the state, nothing changed: the sync's peak RSS in a fresh process."""
    import pandas as pd

    from airflow_provider_appointments.simulator import SimulatorConfig, SimulatorProcess

    count = args.state_keys
    tmp = Path(tempfile.mkdtemp(prefix="hubspot-sync-mem-"))
    frame = pd.DataFrame({KEY: [f"M{i:08d}" for i in range(count)],
                          "hs_appointment_name": [f"Booking {i}" for i in range(count)],
                          "hs_duration": [30 + i % 60 for i in range(count)]})
    frame.to_parquet(tmp / "source.parquet", row_group_size=50_000)
    with SimulatorProcess(SimulatorConfig(seed_appointments=0, search_requests_per_second=None,
                                          daily_limit=None)) as sim:
        env = {**os.environ, "AIRFLOW_CONN_HUBSPOT_DEFAULT": sim.airflow_connection_json()}
        # The state a previous run would have published, written by the same code (records that exist).
        _write_state(frame, tmp / "state.parquet", sim)
        del frame
        done = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(tmp / "source.parquet"),
                               str(tmp / "state.parquet"), str(count)], env=env, capture_output=True, text=True,
                              timeout=3600)
        if done.returncode:
            print(done.stderr[-3000:])
            return 1
        measured = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{count} keys, nothing changed: {measured['result']} in {measured['seconds']:.0f} s; peak RSS "
          f"{measured['peak_mb']:.0f} MB during the run, from {measured['import_mb']:.0f} MB after imports (the "
          f"process's peak, imports included: {measured['import_peak_mb']:.0f} MB)")
    return 0


def _write_state(frame, path: Path, sim) -> None:
    """The state a sync writes for these rows, computed by the sync's own serialization and fingerprints."""
    from airflow_provider_appointments.hooks.hubspot import HubSpotAppointmentsHook
    from airflow_provider_appointments.operators.sync_state import StateEntry, StateWriter
    from airflow_provider_appointments.records.fingerprints import encode_hashes, property_hashes, row_hashes
    from airflow_provider_appointments.records.serialization import serialize_frame

    os.environ["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = sim.airflow_connection_json()
    schema = HubSpotAppointmentsHook().get_conn().get_property_schema()
    writer = StateWriter(str(path))
    for start in range(0, len(frame), 50_000):
        chunk = frame.iloc[start:start + 50_000]
        serialized = serialize_frame(chunk, schema)  # the key too, as the sync sends it
        entries = []
        hashes = row_hashes(serialized.columns, len(chunk))
        for key, properties, digest in zip(chunk[KEY], serialized.rows, hashes):
            entries.append(StateEntry(key, str(start), digest, encode_hashes(property_hashes(properties)), 0))
        writer.add(entries)
    writer.commit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=80.0)
    parser.add_argument("--budget", type=int, default=190, help="requests per 10 s")
    parser.add_argument("--state-keys", type=int, default=0, help="measure memory with this many keys instead")
    args = parser.parse_args(argv)
    return run_memory(args) if args.state_keys else run_side_by_side(args)


if __name__ == "__main__":
    sys.exit(main())
