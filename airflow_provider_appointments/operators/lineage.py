"""OpenLineage datasets and facets for the operators, as pure functions.

The OpenLineage provider is an optional extra (``airflow-provider-appointments[openlineage]``): this module
imports without it, and every function that builds OpenLineage objects imports them when called and returns
None when they are not installed. The naming helpers need nothing.

Naming follows the OpenLineage conventions: HubSpot is ``hubspot://<host>[:port]`` with the dataset
``appointments``; a local file is (``file``, absolute path); an object in a bucket is
(``s3://bucket``, ``key``), (``gs://bucket``, ``key``), (``abfss://container@account…``, ``path``) and so on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

HUBSPOT_DATASET = "appointments"
WRITE_RUN_FACET = "hubspot_write"
WRITE_RUN_FACET_SCHEMA = (
    "https://github.com/airflow-provider-appointments/airflow-provider-appointments/blob/main/"
    "openlineage/HubSpotWriteRunFacet.json#/$defs/HubSpotWriteRunFacet"
)

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Schemes that name the same store under another spelling, mapped to the one OpenLineage uses.
_SCHEME_ALIASES = {"gcs": "gs", "s3a": "s3", "s3n": "s3"}
# File systems whose dataset names are absolute paths; object stores name keys without a leading slash.
_PATH_SCHEMES = {"file", "hdfs"}


def hubspot_namespace(base_url: str) -> str:
    """``hubspot://<host>[:port]`` for an API base URL (a default port, 443 or 80, is left out)."""
    text = str(base_url).strip()
    if not text:
        raise ValueError("base_url is empty")
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if not parts.hostname:
        raise ValueError(f"base_url {base_url!r} has no host")
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return f"hubspot://{host}"


def file_dataset_id(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(namespace, name) of a file by OpenLineage's naming: a local path → (``file``, absolute path);
    ``s3://bucket/key`` → (``s3://bucket``, ``key``); ``file:///abs`` → (``file``, ``/abs``)."""
    text = os.fspath(path)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if not scheme and text.lower().startswith("file:/"):  # file:/abs, the one-slash form
        scheme = "file"
    if len(scheme) <= 1:  # no scheme, or a Windows drive letter (C://…)
        return "file", os.path.abspath(os.path.expanduser(text))
    parts = urlsplit(text)
    scheme = _SCHEME_ALIASES.get(scheme, scheme)
    if scheme == "file":
        host = parts.netloc if parts.netloc not in ("", "localhost") else ""
        return (f"file://{host}" if host else "file"), parts.path or "/"
    if scheme in _PATH_SCHEMES:
        return f"{scheme}://{parts.netloc}", parts.path or "/"
    if not parts.netloc:  # e.g. memory:///dir/file: the path is all there is
        return scheme, parts.path.lstrip("/")
    return f"{scheme}://{parts.netloc}", parts.path.lstrip("/")


@lru_cache(maxsize=1)
def _openlineage_available() -> bool:
    try:
        # The client is checked too: the compat layer hands out no-op functions when it is missing.
        import openlineage.client.generated.base  # noqa: F401
        from airflow.providers.common.compat.openlineage.facet import Dataset  # noqa: F401
        from airflow.providers.openlineage.extractors import OperatorLineage  # noqa: F401
    except ImportError:
        return False
    return True


def openlineage_available() -> bool:
    """Whether the OpenLineage provider and client are installed (checked once per process)."""
    return _openlineage_available()


def _schema_facet(columns: Iterable[tuple[str, str]]) -> Any:
    from airflow.providers.common.compat.openlineage.facet import SchemaDatasetFacet, SchemaDatasetFacetFields

    return SchemaDatasetFacet(fields=[SchemaDatasetFacetFields(name=str(name), type=str(kind))
                                      for name, kind in columns])


def _output_statistics(row_count: int | None) -> dict[str, Any]:
    from airflow.providers.common.compat.openlineage.facet import OutputStatisticsOutputDatasetFacet

    if row_count is None:
        return {}
    return {"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=int(row_count))}


def _input_statistics(row_count: int | None) -> dict[str, Any]:
    if row_count is None:
        return {}
    try:  # not in the provider's compat layer; in every openlineage-python the provider 2.x requires
        from openlineage.client.generated.input_statistics_input_dataset import InputStatisticsInputDatasetFacet
    except ImportError:
        return {}
    return {"inputStatistics": InputStatisticsInputDatasetFacet(rowCount=int(row_count))}


@lru_cache(maxsize=1)
def _write_run_facet_class() -> type:
    """Build the run facet class (its base only exists with OpenLineage installed), once."""
    import attr
    from airflow.providers.common.compat.openlineage.facet import RunFacet

    @attr.define
    class HubSpotWriteRunFacet(RunFacet):
        """What a HubSpot write did: rows read, written (created, updated, unchanged) and failed."""

        operation: str
        records: int
        succeeded: int
        failed: int
        created: int = 0
        updated: int = 0
        unchanged: int = 0
        batches: int | None = None
        requests: int | None = None

        @staticmethod
        def _get_schema() -> str:
            return WRITE_RUN_FACET_SCHEMA

    # Importable as ``lineage.HubSpotWriteRunFacet`` (see __getattr__), so instances pickle.
    HubSpotWriteRunFacet.__qualname__ = HubSpotWriteRunFacet.__name__
    HubSpotWriteRunFacet.__module__ = __name__
    globals()["HubSpotWriteRunFacet"] = HubSpotWriteRunFacet
    return HubSpotWriteRunFacet


if not TYPE_CHECKING:  # hidden from mypy, so a typo in ``from …lineage import x`` is still an error

    def __getattr__(name: str) -> Any:
        if name == "HubSpotWriteRunFacet" and _openlineage_available():
            return _write_run_facet_class()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def write_run_facet(operation: str, summary: Mapping[str, Any]) -> Any | None:
    """The ``hubspot_write`` run facet for a write summary, or None without OpenLineage."""
    if not _openlineage_available():
        return None

    def count(key: str) -> int:
        return int(summary.get(key) or 0)

    def optional(key: str) -> int | None:
        value = summary.get(key)
        return None if value is None else int(value)

    return _write_run_facet_class()(
        operation=str(operation or summary.get("operation") or ""), records=count("records"),
        succeeded=count("succeeded"), failed=count("failed"), created=count("created"),
        updated=count("updated"), unchanged=count("unchanged"), batches=optional("batches"),
        requests=optional("requests"),
    )


def extract_lineage(base_url: str, output_path: str | os.PathLike[str], columns: Sequence[tuple[str, str]],
                    records: int) -> OperatorLineage | None:
    """Lineage of an extract: reads HubSpot's ``appointments`` (with the extracted columns as its schema),
    writes the output file (same schema, ``records`` rows). None without OpenLineage."""
    if not _openlineage_available():
        return None
    from airflow.providers.common.compat.openlineage.facet import InputDataset, OutputDataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    columns = list(columns)
    namespace, name = file_dataset_id(output_path)
    source = InputDataset(namespace=hubspot_namespace(base_url), name=HUBSPOT_DATASET,
                          facets={"schema": _schema_facet(columns)}, inputFacets=_input_statistics(records))
    target = OutputDataset(namespace=namespace, name=name, facets={"schema": _schema_facet(columns)},
                           outputFacets=_output_statistics(records))
    return OperatorLineage(inputs=[source], outputs=[target])


def write_lineage(base_url: str, operation: str, input_path: str | os.PathLike[str] | None,
                  summary: Mapping[str, Any], reports: Iterable[str | os.PathLike[str] | None] = (),
                  *, input_columns: Sequence[tuple[str, str]] | None = None,
                  input_tables: Sequence[tuple[str, str]] = ()) -> OperatorLineage | None:
    """Lineage of a write: reads the input file (none for a DataFrame or a list: ``input_path`` None), writes
    HubSpot's ``appointments`` (``succeeded`` rows) and each report file (the failure report holds ``failed``
    rows); the ``hubspot_write`` run facet carries every count. None without OpenLineage.

    :param summary: the operator's summary (``records``, ``succeeded``, ``failed``, ``created``, …).
    :param reports: paths of the reports written (failure report, id map); None entries are skipped.
    :param input_columns: the input's (name, type) columns, when known, as its schema facet.
    :param input_tables: (namespace, name) of the tables a SQL source reads (``sql=``).
    """
    if not _openlineage_available():
        return None
    from airflow.providers.common.compat.openlineage.facet import InputDataset, OutputDataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    inputs = []
    if input_path is not None:
        namespace, name = file_dataset_id(input_path)
        facets = {"schema": _schema_facet(input_columns)} if input_columns else {}
        inputs.append(InputDataset(namespace=namespace, name=name, facets=facets,
                                   inputFacets=_input_statistics(summary.get("records"))))
    inputs += [InputDataset(namespace=namespace, name=name) for namespace, name in input_tables]

    outputs = [OutputDataset(namespace=hubspot_namespace(base_url), name=HUBSPOT_DATASET,
                             outputFacets=_output_statistics(int(summary.get("succeeded") or 0)))]
    failures_path = summary.get("failures_path")
    seen: set[tuple[str, str]] = set()
    for report in reports:
        if report is None or not os.fspath(report):
            continue
        dataset_id = file_dataset_id(report)
        if dataset_id in seen:
            continue
        seen.add(dataset_id)
        is_failure_report = failures_path is not None and \
            file_dataset_id(failures_path) == dataset_id
        rows = int(summary.get("failed") or 0) if is_failure_report else None
        outputs.append(OutputDataset(namespace=dataset_id[0], name=dataset_id[1],
                                     outputFacets=_output_statistics(rows)))

    return OperatorLineage(inputs=inputs, outputs=outputs,
                           run_facets={WRITE_RUN_FACET: write_run_facet(operation, summary)})


def announce_assets(context: Mapping[str, Any], outlets: Sequence[Any], alias: str | None,
                    summary: Mapping[str, Any], files: Sequence[tuple[str, Mapping[str, Any]]] = ()) -> None:
    """Airflow asset events of one task: every `Asset` among the task's outlets (declared in the DAG, so
    registered when it is parsed) gets `summary` as its event's extra; with an `alias`, each of `files`
    (path, extra) becomes an asset of its own through it. Airflow creates such a file asset on its first
    event (and logs that it was not found, then inactive): per-file assets are opt-in, through the alias."""
    from airflow.sdk import Asset, AssetAlias

    from airflow_provider_appointments.records.formats import asset_uri

    events = context.get("outlet_events")
    if events is None:  # outside a task run (a unit test calling execute)
        return
    for outlet in outlets:
        if isinstance(outlet, Asset):
            events[outlet].extra.update(summary)
    if alias:
        for path, extra in files:
            events[AssetAlias(alias)].add(Asset(asset_uri(path)), extra=dict(extra))
