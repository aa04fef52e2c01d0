"""Extraction at scale and in time: both read budgets at once, every record exactly once, and no record
lost to HubSpot's search lag between consecutive scheduled windows."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from airflow_provider_appointments.errors import HubSpotError
from airflow_provider_appointments.operators.appointments import HubSpotAppointmentsExtractOperator
from tests.operators.test_operators import _TI

SUITE = Path(__file__).parent / "dags" / "extraction_suite.py"


def connect(sim, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json())
    return sim


def extract(tmp_path: Path, name: str = "out.parquet", **kwargs) -> tuple[dict, pd.DataFrame]:
    operator = HubSpotAppointmentsExtractOperator(task_id="extract", output_path=str(tmp_path / name), **kwargs)
    summary = operator.execute({"ti": _TI()})
    return summary, pd.read_parquet(tmp_path / name)


def test_a_full_extract_reads_through_list_and_search_at_once_each_record_once(hubspot_simulator_factory,
                                                                              monkeypatch, tmp_path):
    sim = connect(hubspot_simulator_factory(seed_appointments=6_000, latency_ms=5), monkeypatch)
    summary, frame = extract(tmp_path, properties=["hs_appointment_name"])
    ids = frame["id"].astype(str)
    assert ids.is_unique and set(ids) == {str(r.id) for r in sim.store.appointments()}
    assert summary["records"] == summary["search_total"] == 6_000 and summary["complete"]
    routes = sim.stats()["by_route"]
    listed = sum(n for route, n in routes.items() if route.startswith("GET /crm/objects/{version}/{object_type}"))
    searched = sum(n for route, n in routes.items() if route.endswith("/search"))
    assert listed > 5 and searched > 5, routes  # both budgets did work


def test_records_modified_during_a_full_extract_are_still_extracted_once(hubspot_simulator_factory, monkeypatch,
                                                                         tmp_path):
    sim = connect(hubspot_simulator_factory(seed_appointments=4_000, latency_ms=10), monkeypatch)
    stop = threading.Event()

    def keep_writing() -> None:
        number = 0
        while not stop.is_set():
            record = sim.store.get("appointments", 100_001 + (number * 37) % 4_000)
            sim.store.update(record, {"hs_appointment_name": f"moved {number}"}, sim.store.now_ms(), "test")
            number += 1
            time.sleep(0.002)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        _, frame = extract(tmp_path, properties=["hs_appointment_name"])
    finally:
        stop.set()
        writer.join()
    ids = frame["id"].astype(str)
    assert ids.is_unique and len(ids) == 4_000


def test_a_windowed_extract_pages_sub_windows_concurrently_without_overlap(hubspot_simulator_factory,
                                                                         monkeypatch, tmp_path):
    sim = connect(hubspot_simulator_factory(seed_appointments=5_000), monkeypatch)
    now = datetime.now(timezone.utc)
    after = now - timedelta(days=20)
    summary, frame = extract(tmp_path, modified_after=after, modified_before=now, search_lag=0, search_streams=3,
                             properties=["hs_appointment_name"])
    expected = {str(r.id) for r in sim.store.appointments() if r.updated_ms >= after.timestamp() * 1000}
    ids = frame["id"].astype(str)
    assert ids.is_unique and set(ids) == expected and summary["search_total"] == len(expected)


def test_a_window_is_searched_only_once_search_has_caught_up(hubspot_simulator_factory, monkeypatch, tmp_path):
    # The index lags 3 s: the early extract (a schema read, a probe, a search) must be done well within it,
    # even on a busy 2-core machine (at 0.6 s it was not, once).
    sim = connect(hubspot_simulator_factory(seed_appointments=50, search_lag_ms=3000), monkeypatch)
    start = datetime.now(timezone.utc)
    record = sim.store.get("appointments", 100_010)
    sim.store.update(record, {"hs_appointment_name": "last second"}, sim.store.now_ms(), "test")
    end = datetime.now(timezone.utc) + timedelta(milliseconds=5)
    early, frame = extract(tmp_path, "early.parquet", modified_after=start, modified_before=end, search_lag=0)
    assert early["records"] == 0 and early["waited_for_search_s"] < 0.1  # the index had not seen it yet
    # A lag well past the early extract's own time (a pacer's first request waits for its probe), so the
    # late one must still wait for it.
    late, frame = extract(tmp_path, "late.parquet", modified_after=start, modified_before=end, search_lag=4.0)
    assert late["waited_for_search_s"] > 1.0 and list(frame["id"].astype(str)) == ["100010"]


def test_an_open_window_ends_search_lag_ago(hubspot_simulator_factory, monkeypatch, tmp_path):
    connect(hubspot_simulator_factory(seed_appointments=50), monkeypatch)
    before = datetime.now(timezone.utc)
    summary, _ = extract(tmp_path, modified_after=before - timedelta(days=40), search_lag=30)
    end = datetime.fromisoformat(summary["modified_before"])
    assert timedelta(seconds=29) < before - end < timedelta(seconds=32) and summary["waited_for_search_s"] == 0


def test_deferrable_extract_waits_in_the_triggerer(run_dag, hubspot_simulator_factory, monkeypatch, tmp_path):
    sim = connect(hubspot_simulator_factory(seed_appointments=30, search_lag_ms=300), monkeypatch)
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    sim.store.update(sim.store.get("appointments", 100_003), {"hs_appointment_name": "fresh"}, sim.store.now_ms(), "t")
    end = datetime.now(timezone.utc) + timedelta(seconds=12)  # still ahead when the task starts (after DAG set-up)
    result = run_dag(SUITE, "deferred_extract", run_conf={"out": str(tmp_path), "after": start.isoformat(),
                                                           "before": end.isoformat()})
    assert result.state == "success", result.task_states()
    summary = result.xcom("extract")
    assert summary["waited_for_search_s"] > 0.5 and summary["records"] == 1 and summary["complete"]


class _OffByOne(HubSpotAppointmentsExtractOperator):
    """Search's total disagreeing with the rows written, as when records move out of a window mid-run."""

    def _search_total(self, client, after, before):  # noqa: ANN001, ANN202
        total = super()._search_total(client, after, before)
        return None if total is None else total + 1


def test_completeness_check_warns_or_fails(hubspot_simulator_factory, monkeypatch, tmp_path, caplog):
    connect(hubspot_simulator_factory(seed_appointments=40), monkeypatch)
    now = datetime.now(timezone.utc)
    window = {"modified_after": now - timedelta(days=40), "modified_before": now, "search_lag": 0}
    summary = _OffByOne(task_id="t", output_path=str(tmp_path / "a.parquet"), **window).execute({"ti": _TI()})
    assert summary["complete"] is False and summary["search_total"] == summary["records"] + 1
    strict = _OffByOne(task_id="t", output_path=str(tmp_path / "b.parquet"), fail_on_incomplete=True, **window)
    with pytest.raises(HubSpotError, match="search counts"):
        strict.execute({"ti": _TI()})


def _load_consecutive_windows(sim, tmp_path: Path, search_lag: float, windows: int = 4,
                              width_s: float = 1.5) -> tuple[dict[str, int], dict[str, int]]:
    """Scheduled-style runs over consecutive short windows while writes keep landing up to each
    window's last moment; each run's extract is merged into a warehouse keyed by id (latest wins)."""
    start = datetime.now(timezone.utc)
    edges = [start + timedelta(seconds=width_s * number) for number in range(windows + 1)]
    stop = threading.Event()

    def keep_writing() -> None:
        number, last_edge_ms = 0, int(edges[-1].timestamp() * 1000)
        while not stop.is_set():
            at_ms = sim.store.now_ms()
            if at_ms >= last_edge_ms:  # stamped before the last edge, or not written: the truth is exact
                return
            record = sim.store.get("appointments", 100_001 + number % 300)
            sim.store.update(record, {"hs_appointment_name": f"v{number}"}, at_ms, "test")
            number += 1
            time.sleep(0.01)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    warehouse: dict[str, int] = {}
    try:
        for number, (after, before) in enumerate(zip(edges, edges[1:])):
            time.sleep(max(0.0, (before - datetime.now(timezone.utc)).total_seconds()))  # the schedule fires
            _, frame = extract(tmp_path, f"w{search_lag}-{number}.parquet", modified_after=after,
                               modified_before=before, search_lag=search_lag, properties=["hs_lastmodifieddate"])
            for record_id, modified in zip(frame["id"].astype(str), frame["hs_lastmodifieddate"]):
                stamp = int(pd.Timestamp(modified).timestamp() * 1000)
                warehouse[record_id] = max(warehouse.get(record_id, 0), stamp)
    finally:
        stop.set()
        writer.join()
    low, high = (int(edge.timestamp() * 1000) for edge in (edges[0], edges[-1]))
    truth = {str(r.id): r.updated_ms for r in sim.store.appointments() if low <= r.updated_ms < high}
    return warehouse, truth


def test_consecutive_windows_with_search_lag_load_the_truth(hubspot_simulator_factory, monkeypatch, tmp_path):
    sim = connect(hubspot_simulator_factory(seed_appointments=300, search_lag_ms=500), monkeypatch)
    warehouse, truth = _load_consecutive_windows(sim, tmp_path, search_lag=1.0)
    assert len(truth) > 50 and warehouse == truth


def test_without_waiting_for_search_the_last_seconds_of_each_window_are_lost(hubspot_simulator_factory,
                                                                            monkeypatch, tmp_path):
    # A lag as long as a window: each window's writes are unseen when it is searched, however late.
    sim = connect(hubspot_simulator_factory(seed_appointments=300, search_lag_ms=1_500), monkeypatch)
    warehouse, truth = _load_consecutive_windows(sim, tmp_path, search_lag=0)
    assert set(truth) - set(warehouse) or any(warehouse.get(k) != v for k, v in truth.items())
