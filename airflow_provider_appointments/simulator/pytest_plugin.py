"""Pytest fixtures for testing DAGs against the simulator. Opt in from a ``conftest.py``::

    pytest_plugins = ["airflow_provider_appointments.simulator.pytest_plugin"]

``hubspot_simulator`` is a running simulator with 50 seeded appointments and every rate budget off
(fast tests); ``hubspot_simulator_factory(**settings)`` starts one with any `SimulatorConfig`
settings (budgets off unless given) and stops it after the test. Point Airflow at it with
``monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", sim.airflow_connection_json())``.

It imports the simulator (which needs the ``[simulator]`` extra) only when a fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

FIXTURE_DEFAULTS: dict[str, Any] = {"seed_appointments": 50, "requests_per_10s": None,
                                    "search_requests_per_second": None, "daily_limit": None}


@pytest.fixture
def hubspot_simulator_factory() -> Iterator[Callable[..., Any]]:
    """A callable starting a `Simulator` from `SimulatorConfig` settings; all are stopped afterwards."""
    from airflow_provider_appointments.simulator import Simulator, SimulatorConfig

    started: list[Any] = []

    def start(**settings: Any) -> Any:
        simulator = Simulator(SimulatorConfig.from_dict({**FIXTURE_DEFAULTS, **settings})).start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def hubspot_simulator(hubspot_simulator_factory: Callable[..., Any]) -> Any:
    """A running simulator: 50 seeded appointments, rate budgets off."""
    return hubspot_simulator_factory()
