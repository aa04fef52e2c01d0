"""The README's first command, small: the demo runs every example DAG and says what happened."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_demo_runs_every_dag_and_reports(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__", "HUBSPOT_"))}
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "example_dags" / "demo.py"), "--appointments", "300",
         "--backfill-rows", "400", "--home", str(tmp_path / "demo-home")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "All DAG runs succeeded." in out
    assert "400 rows →" in out and "created_bookings" not in out
    assert "create_bookings: 19 succeeded, 1 failed" in out
    assert "first run: success; preview {'create': 400}; synced: 400 created" in out
    night = next(line for line in out.splitlines() if "next night:" in line)
    assert all(action in night for action in ("'update': 5", "'unchanged': 393", "'create': 3", "'archive': 2"))
    # Two schema reads (preview, sync), the preview's read of the 3 keys its state does not know, one
    # upsert of the 8 rows that changed, one archive of 2.
    assert "synced: 3 created, 5 updated, 393 unchanged, 2 archived in 5 requests" in night
    assert (tmp_path / "demo-home" / "appointments_per_day.png").stat().st_size > 10_000
    assert (tmp_path / "demo-home" / "data" / "warehouse.duckdb").exists()
