"""The documented import path of the five operators: extract, batch-create, upsert, archive, associate.

They live in `operators.extract` (reading), `operators.create` and `operators.write` (writing); import
them from here.
"""

from __future__ import annotations

from airflow_provider_appointments.operators.create import HubSpotAppointmentsBatchCreateOperator
from airflow_provider_appointments.operators.extract import HubSpotAppointmentsExtractOperator
from airflow_provider_appointments.operators.write import (
    HubSpotAppointmentsArchiveOperator,
    HubSpotAppointmentsAssociateOperator,
    HubSpotAppointmentsUpsertOperator,
)

__all__ = [
    "HubSpotAppointmentsArchiveOperator",
    "HubSpotAppointmentsAssociateOperator",
    "HubSpotAppointmentsBatchCreateOperator",
    "HubSpotAppointmentsExtractOperator",
    "HubSpotAppointmentsUpsertOperator",
]
