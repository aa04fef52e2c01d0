"""OpenLineage lineage of the operators: dataset naming, the datasets and facets of an extract and of a
write, their serialized form, and that nothing breaks when the OpenLineage extra is not installed."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from uuid import uuid4

import pytest

from airflow_provider_appointments.operators import lineage
from airflow_provider_appointments.operators.lineage import (
    HUBSPOT_DATASET,
    WRITE_RUN_FACET,
    WRITE_RUN_FACET_SCHEMA,
    extract_lineage,
    file_dataset_id,
    hubspot_namespace,
    write_lineage,
)
from tests.conftest import REPO_ROOT

try:
    from airflow.providers.common.compat.openlineage.facet import (
        InputDataset,
        OutputDataset,
        RunFacet,
        SchemaDatasetFacet,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.serde import Serde
except ImportError:  # the naming tests and the test without OpenLineage still run
    HAVE_OPENLINEAGE = False
else:
    HAVE_OPENLINEAGE = True

needs_openlineage = pytest.mark.skipif(not HAVE_OPENLINEAGE, reason="the [openlineage] extra is not installed")

COLUMNS = [("hs_object_id", "string"), ("hs_appointment_name", "string"), ("hs_appointment_start", "timestamp"),
           ("hs_lastmodifieddate", "timestamp")]
SUMMARY = {"operation": "create", "records": 10, "succeeded": 7, "failed": 3, "created": 6, "updated": 1,
           "unchanged": 0, "batches": 1, "requests": 2, "failures_path": "/reports/failures.csv",
           "id_map_path": "/reports/id_map.csv"}


# --- naming -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("base_url", "namespace"), [
    ("https://api.hubapi.com", "hubspot://api.hubapi.com"),
    ("https://api.hubapi.com/", "hubspot://api.hubapi.com"),
    ("https://API.HubAPI.com:443/crm/v3", "hubspot://api.hubapi.com"),
    ("http://127.0.0.1:8765", "hubspot://127.0.0.1:8765"),
    ("http://localhost:80", "hubspot://localhost"),
    ("https://eu1.hubapi.com:8443", "hubspot://eu1.hubapi.com:8443"),
    ("http://[::1]:8765", "hubspot://[::1]:8765"),
    ("api.hubapi.com", "hubspot://api.hubapi.com"),
])
def test_hubspot_namespace(base_url: str, namespace: str) -> None:
    assert hubspot_namespace(base_url) == namespace


@pytest.mark.parametrize("base_url", ["", "   ", "https://"])
def test_hubspot_namespace_needs_a_host(base_url: str) -> None:
    with pytest.raises(ValueError):
        hubspot_namespace(base_url)


@pytest.mark.parametrize(("path", "dataset_id"), [
    ("s3://bucket/exports/appointments.parquet", ("s3://bucket", "exports/appointments.parquet")),
    ("s3a://bucket/key.csv", ("s3://bucket", "key.csv")),
    ("gs://bucket/dir/key.jsonl", ("gs://bucket", "dir/key.jsonl")),
    ("gcs://bucket/key", ("gs://bucket", "key")),
    ("abfss://container@account.dfs.core.windows.net/dir/file.csv",
     ("abfss://container@account.dfs.core.windows.net", "dir/file.csv")),
    ("abfs://container/dir/file.csv", ("abfs://container", "dir/file.csv")),
    ("hdfs://namenode:8020/data/file.parquet", ("hdfs://namenode:8020", "/data/file.parquet")),
    ("file:///abs/dir/file.csv", ("file", "/abs/dir/file.csv")),
    ("file://localhost/abs/file.csv", ("file", "/abs/file.csv")),
    ("file:/abs/file.csv", ("file", "/abs/file.csv")),
    ("file://fileserver/share/file.csv", ("file://fileserver", "/share/file.csv")),
    ("memory:///dir/file.csv", ("memory", "dir/file.csv")),
    ("/abs/dir/file.csv", ("file", "/abs/dir/file.csv")),
])
def test_file_dataset_id(path: str, dataset_id: tuple[str, str]) -> None:
    assert file_dataset_id(path) == dataset_id


def test_local_relative_and_home_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert file_dataset_id("out/appointments.parquet") == ("file", str(tmp_path / "out" / "appointments.parquet"))
    assert file_dataset_id("~/in.csv") == ("file", str(tmp_path / "home" / "in.csv"))
    assert file_dataset_id(tmp_path / "p.csv") == ("file", str(tmp_path / "p.csv"))  # a PathLike


# --- extract ------------------------------------------------------------------------------------------------


@needs_openlineage
def test_extract_lineage_datasets_and_facets() -> None:
    result = extract_lineage("https://api.hubapi.com", "s3://lake/hubspot/appointments.parquet", COLUMNS, 1234)

    assert isinstance(result, OperatorLineage)
    [source] = result.inputs
    assert isinstance(source, InputDataset)
    assert (source.namespace, source.name) == ("hubspot://api.hubapi.com", HUBSPOT_DATASET)
    schema = source.facets["schema"]
    assert isinstance(schema, SchemaDatasetFacet)
    assert [(field.name, field.type) for field in schema.fields] == COLUMNS
    assert source.inputFacets["inputStatistics"].rowCount == 1234

    [target] = result.outputs
    assert isinstance(target, OutputDataset)
    assert (target.namespace, target.name) == ("s3://lake", "hubspot/appointments.parquet")
    assert [(field.name, field.type) for field in target.facets["schema"].fields] == COLUMNS
    assert target.outputFacets["outputStatistics"].rowCount == 1234
    assert result.run_facets == {}


@needs_openlineage
def test_extract_lineage_of_a_local_file_and_no_rows(tmp_path: Path) -> None:
    result = extract_lineage("http://127.0.0.1:8765", str(tmp_path / "out.csv"), [], 0)

    assert result is not None
    assert result.inputs[0].namespace == "hubspot://127.0.0.1:8765"
    assert result.inputs[0].facets["schema"].fields == []
    assert (result.outputs[0].namespace, result.outputs[0].name) == ("file", str(tmp_path / "out.csv"))
    assert result.outputs[0].outputFacets["outputStatistics"].rowCount == 0


# --- write --------------------------------------------------------------------------------------------------


@needs_openlineage
def test_write_lineage_from_a_file_with_reports() -> None:
    result = write_lineage("https://api.hubapi.com", "create", "s3://lake/in/appointments.csv", SUMMARY,
                           [SUMMARY["failures_path"], SUMMARY["id_map_path"]])

    assert isinstance(result, OperatorLineage)
    [source] = result.inputs
    assert isinstance(source, InputDataset)
    assert (source.namespace, source.name) == ("s3://lake", "in/appointments.csv")
    assert source.inputFacets["inputStatistics"].rowCount == 10
    assert source.facets == {}  # no columns given

    hubspot, failures, id_map = result.outputs
    assert all(isinstance(output, OutputDataset) for output in result.outputs)
    assert (hubspot.namespace, hubspot.name) == ("hubspot://api.hubapi.com", HUBSPOT_DATASET)
    assert hubspot.outputFacets["outputStatistics"].rowCount == 7  # succeeded
    assert (failures.namespace, failures.name) == ("file", "/reports/failures.csv")
    assert failures.outputFacets["outputStatistics"].rowCount == 3  # one row per failed row
    assert (id_map.namespace, id_map.name) == ("file", "/reports/id_map.csv")
    assert id_map.outputFacets == {}

    facet = result.run_facets[WRITE_RUN_FACET]
    assert isinstance(facet, RunFacet)
    assert (facet.operation, facet.records, facet.succeeded, facet.failed) == ("create", 10, 7, 3)
    assert (facet.created, facet.updated, facet.unchanged, facet.batches, facet.requests) == (6, 1, 0, 1, 2)
    assert facet._schemaURL == WRITE_RUN_FACET_SCHEMA


@needs_openlineage
def test_write_lineage_from_a_dataframe_has_no_input_dataset() -> None:
    summary = {"records": 4, "succeeded": 4, "failed": 0, "created": 0, "updated": 2, "unchanged": 2}
    result = write_lineage("http://127.0.0.1:8765", "upsert", None, summary)

    assert result is not None
    assert result.inputs == []
    [hubspot] = result.outputs
    assert (hubspot.namespace, hubspot.name) == ("hubspot://127.0.0.1:8765", HUBSPOT_DATASET)
    assert hubspot.outputFacets["outputStatistics"].rowCount == 4
    facet = result.run_facets[WRITE_RUN_FACET]
    assert (facet.operation, facet.records, facet.succeeded, facet.failed) == ("upsert", 4, 4, 0)
    assert (facet.updated, facet.unchanged, facet.batches, facet.requests) == (2, 2, None, None)


@needs_openlineage
def test_write_lineage_skips_missing_and_repeated_reports_and_takes_input_columns(tmp_path: Path) -> None:
    failures = tmp_path / "failures.csv"
    summary = dict(SUMMARY, failures_path=str(failures), id_map_path=None)
    result = write_lineage("https://api.hubapi.com", "archive", tmp_path / "in.parquet", summary,
                           [str(failures), None, "", failures], input_columns=[("id", "string")])

    assert result is not None
    assert (result.inputs[0].namespace, result.inputs[0].name) == ("file", str(tmp_path / "in.parquet"))
    assert [(f.name, f.type) for f in result.inputs[0].facets["schema"].fields] == [("id", "string")]
    assert [(o.namespace, o.name) for o in result.outputs] == [
        ("hubspot://api.hubapi.com", HUBSPOT_DATASET), ("file", str(failures))]
    assert result.outputs[1].outputFacets["outputStatistics"].rowCount == 3
    assert result.run_facets[WRITE_RUN_FACET].operation == "archive"  # the argument wins over the summary's


# --- serialization ------------------------------------------------------------------------------------------


def _event(result: OperatorLineage) -> dict:
    event = RunEvent(eventType=RunState.COMPLETE, eventTime=datetime.now(timezone.utc).isoformat(),
                     run=Run(runId=str(uuid4()), facets=result.run_facets),
                     job=Job(namespace="default", name="dag.task"), producer="https://example.com/test",
                     inputs=result.inputs, outputs=result.outputs)
    return json.loads(json.dumps(Serde.to_dict(event)))


@needs_openlineage
def test_extract_lineage_serializes() -> None:
    result = extract_lineage("https://api.hubapi.com", "/data/out.parquet", COLUMNS, 5)
    assert result is not None
    event = _event(result)

    [source] = event["inputs"]
    assert source["namespace"] == "hubspot://api.hubapi.com" and source["name"] == "appointments"
    assert source["facets"]["schema"]["_schemaURL"].endswith("SchemaDatasetFacet")
    assert [field["name"] for field in source["facets"]["schema"]["fields"]] == [name for name, _ in COLUMNS]
    assert source["inputFacets"]["inputStatistics"]["rowCount"] == 5
    [target] = event["outputs"]
    assert (target["namespace"], target["name"]) == ("file", "/data/out.parquet")
    assert {"name": "hs_object_id", "type": "string"} in [
        {k: v for k, v in field.items() if k in ("name", "type")} for field in target["facets"]["schema"]["fields"]]
    assert target["outputFacets"]["outputStatistics"]["rowCount"] == 5
    assert "_producer" in target["outputFacets"]["outputStatistics"]


@needs_openlineage
def test_write_lineage_serializes_with_the_run_facet() -> None:
    result = write_lineage("https://api.hubapi.com", "create", "/in.csv", SUMMARY, [SUMMARY["failures_path"]])
    assert result is not None
    event = _event(result)

    facet = event["run"]["facets"][WRITE_RUN_FACET]
    assert facet["_schemaURL"] == WRITE_RUN_FACET_SCHEMA
    assert facet["_producer"]
    assert {k: facet[k] for k in ("operation", "records", "succeeded", "failed", "created", "updated",
                                  "unchanged", "batches", "requests")} == {
        "operation": "create", "records": 10, "succeeded": 7, "failed": 3, "created": 6, "updated": 1,
        "unchanged": 0, "batches": 1, "requests": 2}
    assert event["inputs"][0]["inputFacets"]["inputStatistics"]["rowCount"] == 10
    assert [o["outputFacets"]["outputStatistics"]["rowCount"] for o in event["outputs"]] == [7, 3]

    # A run facet alone, as the provider's listener serializes it: the counts, no nulls.
    alone = Serde.to_dict(lineage.write_run_facet("upsert", {"records": 1, "succeeded": 1, "failed": 0}))
    assert alone["failed"] == 0 and "batches" not in alone


@needs_openlineage
def test_write_run_facet_pickles_and_is_importable() -> None:
    facet = lineage.write_run_facet("create", SUMMARY)
    assert type(facet) is lineage.HubSpotWriteRunFacet
    assert type(facet).__module__ == lineage.__name__
    assert pickle.loads(pickle.dumps(facet)) == facet


@needs_openlineage
def test_write_run_facet_unpickles_in_a_fresh_process() -> None:
    facet = lineage.write_run_facet("create", SUMMARY)
    code = ("import pickle, sys; facet = pickle.loads(sys.stdin.buffer.read()); "
            "print(type(facet).__name__, facet.operation, facet.failed)")
    done = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(facet), capture_output=True,
                          cwd=REPO_ROOT, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == ["HubSpotWriteRunFacet", "create", "3"]


# --- without OpenLineage ------------------------------------------------------------------------------------

_ABSENT = """
import sys
for name in sys.argv[1:]:
    sys.modules[name] = None  # an import of it, or of anything under it, raises ImportError
from airflow_provider_appointments.operators import lineage
assert not lineage.openlineage_available()
assert lineage.hubspot_namespace("https://api.hubapi.com") == "hubspot://api.hubapi.com"
assert lineage.file_dataset_id("s3://b/k") == ("s3://b", "k")
assert lineage.extract_lineage("https://api.hubapi.com", "/out.parquet", [("id", "string")], 1) is None
assert lineage.write_lineage("https://api.hubapi.com", "create", "/in.csv", {"records": 1, "succeeded": 1,
                             "failed": 0}, ["/failures.csv"]) is None
assert lineage.write_lineage("https://api.hubapi.com", "create", None, {}) is None
assert lineage.write_run_facet("create", {}) is None
try:
    lineage.HubSpotWriteRunFacet
except AttributeError:
    pass
else:
    raise AssertionError("HubSpotWriteRunFacet without OpenLineage")
if {"openlineage", "airflow.providers.openlineage"} <= set(sys.argv[1:]):
    assert not any(name.startswith(("openlineage.", "airflow.providers.openlineage."))
                   for name in sys.modules if sys.modules[name] is not None), "an OpenLineage module was imported"
print("ok")
"""


@pytest.mark.parametrize("absent", [
    ["openlineage", "airflow.providers.openlineage", "airflow.providers.common.compat.openlineage"],
    ["airflow.providers.openlineage"],  # the provider missing
    ["openlineage"],  # the client missing under the provider (its compat layer then hands out no-ops)
], ids=["everything", "provider", "client"])
def test_module_works_without_openlineage(absent: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", _ABSENT, *absent], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")


# -- asset events ----------------------------------------------------------------------------
def test_a_declared_asset_gets_the_summary_and_no_file_becomes_an_asset_without_an_alias():
    from airflow.sdk import Asset
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from airflow_provider_appointments.operators.lineage import announce_assets

    events = OutletEventAccessors()
    declared = Asset("hubspot_appointments_reports")
    announce_assets({"outlet_events": events}, [declared], None, {"failed": 2, "failures_path": "/r/f.parquet"},
                    [("/r/f.parquet", {"report": "failures"})])
    assert events[declared].extra == {"failed": 2, "failures_path": "/r/f.parquet"}
    assert len(events) == 1  # no alias was asked for: nothing else, so no asset Airflow would have to create


def test_an_alias_makes_each_file_an_asset_of_its_own():
    from airflow.sdk import AssetAlias
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from airflow_provider_appointments.operators.lineage import announce_assets

    events = OutletEventAccessors()
    announce_assets({"outlet_events": events}, [AssetAlias("extracts")], "extracts", {"records": 3},
                    [("/data/x.parquet", {"records": 3})])
    added = events[AssetAlias("extracts")].asset_alias_events
    assert [(event.dest_asset_key.uri, event.extra) for event in added] == [("file:///data/x.parquet", {"records": 3})]

