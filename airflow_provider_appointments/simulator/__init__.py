"""A local HubSpot CRM Appointments API server: the target of the demo, the tests and your DAG tests.

``Simulator`` runs it in a background thread, ``SimulatorProcess`` in a child process, and
``python -m airflow_provider_appointments.simulator`` (or ``hubspot-simulator``) from the shell.

The names below are imported on first use: the pytest plugin lives in this package and pytest
loads it in every session, so importing the package must not pull in the server stack.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Simulator": "server",
    "SimulatorProcess": "server",
    "connection_json": "server",
    "SimulatorConfig": "config",
    "FaultConfig": "faults",
    "FAULT_KINDS": "faults",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
