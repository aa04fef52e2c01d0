"""A local HubSpot CRM Appointments API server: the default target of the demo, the tests and your DAG tests.

``Simulator`` runs it in a background thread, ``SimulatorProcess`` in a child process, and
``python -m airflow_provider_appointments.simulator`` (or ``hubspot-simulator``) from the shell.
"""

from airflow_provider_appointments.simulator.app import SimulatorConfig
from airflow_provider_appointments.simulator.faults import FAULT_KINDS, FaultConfig
from airflow_provider_appointments.simulator.server import Simulator, SimulatorProcess, connection_json

__all__ = ["FAULT_KINDS", "FaultConfig", "Simulator", "SimulatorConfig", "SimulatorProcess", "connection_json"]
