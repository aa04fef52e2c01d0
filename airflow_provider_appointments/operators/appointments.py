"""The documented import path of the operators: extract, batch-create, upsert, archive, associate, sync.

They live in `operators.extract` (reading), `operators.create`, `operators.write` and `operators.sync`
(writing); import them from here.
"""

from __future__ import annotations

from airflow_provider_appointments.operators.create import HubSpotAppointmentsBatchCreateOperator
from airflow_provider_appointments.operators.extract import HubSpotAppointmentsExtractOperator
from airflow_provider_appointments.operators.sync import HubSpotAppointmentsSyncOperator
from airflow_provider_appointments.operators.to_sql import HubSpotAppointmentsToSqlOperator
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
    "HubSpotAppointmentsSyncOperator",
    "HubSpotAppointmentsToSqlOperator",
    "HubSpotAppointmentsUpsertOperator",
]
