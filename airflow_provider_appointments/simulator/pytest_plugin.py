"""Pytest fixtures for testing DAGs against the simulator (auto-registered through the ``pytest11`` entry point).

``hubspot_simulator`` is a running simulator with budgets off; ``hubspot_simulator_factory(**config)``
starts one with any `SimulatorConfig` settings. Point Airflow at it with
``monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json())``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture
def hubspot_simulator_factory() -> Iterator[Callable[..., Any]]:
    from airflow_provider_appointments.simulator import Simulator, SimulatorConfig

    started: list[Any] = []

    def start(**config: Any) -> Any:
        settings = {"seed_appointments": 50, "requests_per_10s": None, "search_requests_per_second": None,
                    "daily_limit": None, **config}
        simulator = Simulator(SimulatorConfig.from_dict(settings)).start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def hubspot_simulator(hubspot_simulator_factory: Callable[..., Any]) -> Any:
    return hubspot_simulator_factory()
