"""The deployment fixture: one real Airflow deployment (PostgreSQL, scheduler, dag-processor,
triggerer, api-server, HubSpot simulator) per test module, torn down at the end even on failure.

Without PostgreSQL's server binaries the deployment tests are skipped, saying how to run them.
The deployment's directory (process logs, AIRFLOW_HOME with the task logs, data) is kept when a test
failed, or always with ``HUBSPOT_DEPLOYMENT_KEEP=1``; its path is printed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from tests.deployment.harness import Deployment, postgres_unavailable_reason


@pytest.fixture(scope="module")
def deployment(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    reason = postgres_unavailable_reason()
    if reason:
        pytest.skip(reason)
    # A search lag long enough that the extract's trigger fires well after the scheduler has handled the
    # deferral: with a few seconds, Airflow's scheduler sometimes takes the deferred process's exit for
    # its end and marks the resumed task up_for_retry (seen under load; Airflow then retries it).
    deployment = Deployment(seed_appointments=3000, search_lag_s=15.0)
    failed_before = request.session.testsfailed
    failed = True
    try:
        deployment.start()
        print(f"\ndeployment up in {deployment.timings['start total']:.1f} s: {deployment.timings}",
              file=sys.stderr)
        failed = False
        yield deployment
    finally:
        deployment.stop()
        keep = os.environ.get("HUBSPOT_DEPLOYMENT_KEEP") == "1"
        if keep or failed or request.session.testsfailed > failed_before:
            print(f"\ndeployment directory kept: {deployment.root}", file=sys.stderr)
        else:
            deployment.cleanup()
