"""The one table of file formats: which formats extracts, inputs and reports use, and which
file extension names which format."""

from __future__ import annotations

import os
from pathlib import Path

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.storage import is_uri

FORMATS: tuple[str, ...] = ("parquet", "csv", "jsonl")
EXTENSIONS: dict[str, str] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


def format_of(path: str | os.PathLike, default: str | None = None) -> str:
    """The format (one of `FORMATS`) a path's or URI's extension names, case-insensitively.

    :param default: the format of an unknown extension; without one, an unknown extension raises
        `HubSpotInputError`.
    """
    text = str(path)
    suffix = Path(text.split("?")[0]).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    if default is not None:
        return default
    raise HubSpotInputError(f"{text}: unknown file type {suffix or '(no extension)'}; use .parquet, .csv or .jsonl")


def asset_uri(path: str) -> str:
    """A path as an Airflow asset URI: URIs as they are, local paths as ``file://`` absolute paths."""
    if is_uri(path):
        return path
    return "file://" + os.path.abspath(os.path.expanduser(path))
