"""Pure data-side functions: serialization rules, readers, the extract writer, reports. No server."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.formats import FORMATS, format_of
from airflow_provider_appointments.records.properties import PropertySchema
from airflow_provider_appointments.records.readers import iter_record_frames
from airflow_provider_appointments.records.reports import FailureRow, write_failure_report, write_id_map
from airflow_provider_appointments.records.serialization import serialize_frame
from airflow_provider_appointments.records.writers import ExtractWriter, read_extract


def prop(name, type_, field_type="text", options=(), unique=False, read_only=False):
    return {"name": name, "label": name, "type": type_, "fieldType": field_type, "hasUniqueValue": unique,
            "options": [{"label": o, "value": o} for o in options],
            "modificationMetadata": {"readOnlyValue": read_only}}


SCHEMA = PropertySchema.from_api([
    prop("name", "string"), prop("start", "datetime", "date"), prop("day", "date", "date"),
    prop("minutes", "number", "number"), prop("price", "number", "number"), prop("first", "bool", "booleancheckbox"),
    prop("status", "enumeration", "select", ("SCHEDULED", "CANCELED")),
    prop("services", "enumeration", "checkbox", ("LAB", "IMAGING")),
    prop("key", "string", unique=True), prop("hs_object_id", "number", "number", read_only=True),
])


def serialize(**columns):
    return serialize_frame(pd.DataFrame(columns), SCHEMA)


def test_values_become_hubspot_strings():
    result = serialize(
        name=["Checkup 🦷", "Ünïcödé"],
        start=[pd.Timestamp("2026-06-01 09:00", tz="Europe/Paris"), "2026-06-01T09:00:00Z"],
        day=[datetime(2026, 6, 1), "2026-06-02"],
        minutes=[3.0, 45],
        price=[0.1 + 0.2, 1e20],
        first=[True, "no"],
        status=["SCHEDULED", "CANCELED"],
        services=[["LAB", "IMAGING"], "LAB"],
    )
    assert result.errors == {}
    assert result.rows[0] == {"name": "Checkup 🦷", "start": "1780297200000", "day": "2026-06-01", "minutes": "3",
                              "price": "0.3", "first": "true", "status": "SCHEDULED", "services": "LAB;IMAGING"}
    assert result.rows[1]["start"] == "1780304400000" and result.rows[1]["price"] == "100000000000000000000"
    assert result.rows[1]["first"] == "false" and result.rows[1]["services"] == "LAB"
    assert all(type(value) is str for row in result.rows for value in row.values())


def test_naive_datetimes_are_utc_and_epoch_ms_pass_through():
    result = serialize(start=[datetime(2026, 6, 1, 9, 0), 1780304400000])
    assert [row["start"] for row in result.rows] == ["1780304400000", "1780304400000"]


def test_missing_values_are_left_out_or_cleared():
    frame = pd.DataFrame({"name": ["a", None, ""], "minutes": [1, np.nan, None], "start": [pd.NaT, None, "2026-06-01"]})
    result = serialize_frame(frame, SCHEMA)
    assert result.rows[1] == {} and result.rows[2] == {"start": "1780272000000"} and result.errors == {}
    cleared = serialize_frame(frame, SCHEMA, clear_missing=True)
    assert cleared.rows[1] == {"name": "", "minutes": "", "start": ""}


@pytest.mark.parametrize("column, value, problem", [
    ("minutes", "forty", "'forty' is not a number"),
    ("start", "next tuesday", "'next tuesday' is not a datetime"),
    ("day", "2026-06-01T10:30:00Z", "has a time of day"),
    ("status", "MAYBE", "'MAYBE' is not an option of status (SCHEDULED, CANCELED)"),
    ("services", "LAB;SPA", "'SPA' is not an option of services"),
    ("first", "perhaps", "'perhaps' is not a boolean"),
    ("name", "x" * 70_000, "over HubSpot's 65536"),
])
def test_bad_values_name_row_column_and_problem_and_lose_nothing_else(column, value, problem):
    frame = pd.DataFrame({"name": ["ok", "ok", "ok"], column: [None, value, None]}) if column != "name" else \
        pd.DataFrame({"name": ["ok", value, "ok"]})
    result = serialize_frame(frame, SCHEMA, first_row=40)
    assert list(result.errors) == [1]
    assert result.errors[1].startswith(f"row 41, column '{column}': ") and problem in result.errors[1]
    assert result.rows[0]["name"] == "ok" and result.rows[2]["name"] == "ok"


def test_columns_must_map_to_writable_properties():
    with pytest.raises(HubSpotInputError,
                       match=r"column 'stauts' matches no appointment property; did you mean status"):
        serialize(stauts=["SCHEDULED"])
    with pytest.raises(HubSpotInputError, match="does not let anyone write"):
        serialize(hs_object_id=["1"])
    mapped = serialize_frame(pd.DataFrame({"Duration": [30], "id": ["9"]}), SCHEMA,
                             column_mapping={"Duration": "minutes"}, ignore_columns=["id"])
    assert mapped.rows == [{"minutes": "30"}]


def test_serialization_of_many_rows_is_vectorised():
    frame = pd.DataFrame({"name": ["n"] * 20_000, "minutes": np.arange(20_000),
                          "start": pd.Timestamp("2026-01-01", tz="UTC")})
    result = serialize_frame(frame, SCHEMA)
    assert len(result.rows) == 20_000 and result.rows[-1]["minutes"] == "19999"


def test_readers_chunk_every_format_with_row_numbers(tmp_path):
    frame = pd.DataFrame({"key": [f"00{i}" for i in range(25)], "minutes": range(25)})
    frame.to_parquet(tmp_path / "a.parquet")
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    files = [str(tmp_path / name) for name in ("a.parquet", "a.csv", "a.jsonl")]
    for source in (frame, frame.to_dict("records"), *files):
        chunks = list(iter_record_frames(source, chunk_rows=10))
        assert [start for start, _ in chunks] == [0, 10, 20] and sum(len(c) for _, c in chunks) == 25
    first_csv = next(iter_record_frames(str(tmp_path / "a.csv")))[1]
    assert first_csv["key"].iloc[0] == "000"  # leading zeros kept
    summary = {"path": str(tmp_path / "a.csv"), "records": 25}  # an extract summary from XCom
    assert list(iter_record_frames(summary, chunk_rows=100))[0][1].shape == (25, 2)


def test_one_table_of_file_formats():
    assert FORMATS == ("parquet", "csv", "jsonl")
    assert [format_of(p) for p in ("a.parquet", "a.PQ", "s3://b/a.csv?v=1", "a.jsonl", "a.ndjson", "a.json")] == [
        "parquet", "parquet", "csv", "jsonl", "jsonl", "jsonl"]
    assert format_of("out", default="parquet") == "parquet"
    with pytest.raises(HubSpotInputError, match="unknown file type .xlsx"):
        format_of("a.xlsx")


def test_readers_take_an_object_storage_path(tmp_path):
    from airflow.sdk import ObjectStoragePath

    pd.DataFrame({"key": ["a", "b"]}).to_csv(tmp_path / "a.csv", index=False)
    chunks = list(iter_record_frames(ObjectStoragePath(f"file://{tmp_path / 'a.csv'}")))
    assert chunks[0][1]["key"].tolist() == ["a", "b"]


def test_readers_refuse_missing_wrong_and_mislabelled_files(tmp_path):
    with pytest.raises(HubSpotInputError, match="does not exist"):
        list(iter_record_frames(str(tmp_path / "nope.csv")))
    (tmp_path / "a.xlsx").write_text("x")
    with pytest.raises(HubSpotInputError, match="unknown file type .xlsx"):
        list(iter_record_frames(str(tmp_path / "a.xlsx")))
    (tmp_path / "fake.parquet").write_text("key,minutes\n1,2\n")
    with pytest.raises(HubSpotInputError, match="is not a Parquet file"):
        list(iter_record_frames(str(tmp_path / "fake.parquet")))
    (tmp_path / "empty.csv").write_text("")
    assert list(iter_record_frames(str(tmp_path / "empty.csv"))) == []
    with pytest.raises(HubSpotInputError, match="row 1 is int"):
        list(iter_record_frames([{"a": 1}, 5]))


def test_uris_read_and_write_through_object_storage(tmp_path):
    (tmp_path / "in.csv").write_text("key,minutes\nA,1\nB,2\n")
    assert list(iter_record_frames(f"file://{tmp_path}/in.csv"))[0][1]["key"].tolist() == ["A", "B"]
    write_id_map(f"file://{tmp_path}/out/map.parquet", [(0, "A", "1", True)])
    assert pd.read_parquet(tmp_path / "out" / "map.parquet")["hubspot_id"].tolist() == ["1"]


def record(i, **props):
    return {"id": str(i), "createdAt": "2026-06-01T09:00:00.000Z", "updatedAt": f"2026-06-0{1 + i % 5}T09:00:00.000Z",
            "archived": False, "properties": {"name": f"n{i}", "minutes": str(i), "start": "2026-06-01T09:00:00.000Z",
                                              "day": "2026-06-01", "first": "true", **props},
            "associations": {"contacts": {"results": [{"id": "7", "type": "appointment_to_contact"}]}},
            "propertiesWithHistory": {
                "name": [{"value": f"n{i}", "timestamp": "2026-06-01T09:00:00.000Z", "sourceType": "API"}]}}


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_extract_writer_streams_typed_columns(tmp_path, fmt):
    path = str(tmp_path / f"out.{fmt}")
    writer = ExtractWriter(path, fmt, SCHEMA, ["name", "minutes", "start", "day", "first"], ["contacts"], ["name"],
                           buffer_records=10)
    for page in range(5):
        writer.write_page([record(page * 10 + i) for i in range(10)])
    summary = writer.close()
    assert summary["records"] == 50 and summary["max_updated_at"] == "2026-06-05T09:00:00.000Z"
    frame = read_extract(path)
    assert len(frame) == 50 and frame["id"].tolist()[:2] == ["0", "1"] or frame["id"].tolist()[:2] == [0, 1]
    if fmt == "parquet":
        parquet = pq.ParquetFile(path)
        assert parquet.metadata.num_row_groups == 5  # one per flush: nothing accumulated
        types = {field.name: str(field.type) for field in parquet.schema_arrow}
        assert types["start"] == "timestamp[ms, tz=UTC]" and types["minutes"] == "double" and types["first"] == "bool"
        assert types["day"] == "date32[day]" and types["associations_contacts"] == "list<element: string>"
        assert frame["history_name"].iloc[3][0]["value"] == "n3"


def test_empty_extract_keeps_its_columns(tmp_path):
    path = str(tmp_path / "empty.parquet")
    ExtractWriter(path, "parquet", SCHEMA, ["name"]).close()
    assert list(pq.read_table(path).schema.names) == ["id", "createdAt", "updatedAt", "archived", "archivedAt", "name"]


def test_reports_have_a_fixed_schema(tmp_path):
    write_failure_report(str(tmp_path / "f.parquet"), [])
    assert pq.read_table(tmp_path / "f.parquet").schema.names == ["input_row", "input_key", "status", "category",
                                                                    "message", "context", "correlation_id"]
    write_failure_report(str(tmp_path / "f.csv"),
                         [FailureRow(3, "K", 400, "VALIDATION_ERROR", "bad", {"ids": ["1"]}, "c-1")])
    row = pd.read_csv(tmp_path / "f.csv").iloc[0]
    assert row["input_row"] == 3 and json.loads(row["context"]) == {"ids": ["1"]}
    write_id_map(str(tmp_path / "m.parquet"), [(0, "K", "101", True)])
    assert pd.read_parquet(tmp_path / "m.parquet").to_dict("records") == [
        {"input_row": 0, "input_key": "K", "hubspot_id": "101", "new": True}]
