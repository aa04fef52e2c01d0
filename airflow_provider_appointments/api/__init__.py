"""Endpoint layer: one method per HubSpot endpoint, paging and batch results (no Airflow)."""
