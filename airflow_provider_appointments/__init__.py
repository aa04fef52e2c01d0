"""Apache Airflow provider for HubSpot's CRM Appointments API (object type ``0-421``)."""

from __future__ import annotations

__version__ = "0.1.0"

CONN_TYPE = "hubspot"
DEFAULT_CONN_ID = "hubspot_default"


def get_provider_info() -> dict:
    """Describe this provider to Airflow's ProvidersManager (``apache_airflow_provider`` entry point)."""
    return {
        "package-name": "airflow-provider-appointments",
        "name": "HubSpot Appointments",
        "description": "Extract, create, upsert, archive and associate HubSpot CRM appointments (`0-421`).",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "HubSpot Appointments",
                "external-doc-url": "https://developers.hubspot.com/docs/api-reference/latest/crm/objects/appointments/guide",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "HubSpot Appointments",
                "python-modules": ["airflow_provider_appointments.hooks.hubspot"],
            }
        ],
        "operators": [
            {
                "integration-name": "HubSpot Appointments",
                "python-modules": ["airflow_provider_appointments.operators.appointments",
                                   "airflow_provider_appointments.operators.extract",
                                   "airflow_provider_appointments.operators.create",
                                   "airflow_provider_appointments.operators.write"],
            }
        ],
        "config": {
            "hubspot": {
                "description": "Options of the HubSpot Appointments provider.",
                "options": {
                    "checkpoint_base": {
                        "description": (
                            "Where the write operators keep their checkpoints by default: one folder per task "
                            "instance (dag, run, task, map index) under this base, so that a killed and retried "
                            "task sends nothing twice. A local folder works when retries run on the same machine "
                            "(LocalExecutor); with Celery, Kubernetes or any executor whose retries may run "
                            "elsewhere, use shared storage (any URI Airflow's ObjectStoragePath understands). "
                            "Empty: $AIRFLOW_HOME/hubspot_checkpoints."),
                        "version_added": "0.2.0",
                        "type": "string",
                        "example": "s3://my-bucket/hubspot-checkpoints",
                        "default": "",
                    },
                },
            },
        },
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_appointments.hooks.hubspot.HubSpotAppointmentsHook",
                "hook-name": "HubSpot",
                "connection-type": CONN_TYPE,
                "conn-fields": {
                    "api_version": {
                        "label": "API version",
                        "schema": {"type": ["string", "null"], "default": "2026-03", "enum": ["2026-03", "v3"]},
                        "description": "Date-versioned path segment (2026-03) or the legacy v3 paths.",
                    },
                    "client_id": {
                        "label": "OAuth client ID",
                        "schema": {"type": ["string", "null"]},
                        "description": "OAuth alternative to a private-app token.",
                    },
                    "client_secret": {
                        "label": "OAuth client secret",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "refresh_token": {
                        "label": "OAuth refresh token",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "requests_per_10s": {
                        "label": "Rate budget (requests per 10 s)",
                        "schema": {"type": ["integer", "null"]},
                        "description": "Account budget to pace against; read from HubSpot's headers when empty.",
                    },
                    "search_requests_per_second": {
                        "label": "Search budget (requests per second)",
                        "schema": {"type": ["integer", "null"], "default": 5},
                    },
                    "concurrency": {
                        "label": "Concurrent requests",
                        "schema": {"type": ["integer", "null"], "default": 8},
                    },
                    "timeout": {
                        "label": "Request timeout (seconds)",
                        "schema": {"type": ["number", "null"], "default": 60},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "extra"],
                    "relabeling": {"password": "Private-app access token", "host": "API host"},
                    "placeholders": {
                        "password": "pat-na1-…  (leave empty when using OAuth)",
                        "host": "https://api.hubapi.com",
                    },
                },
            }
        ],
    }
