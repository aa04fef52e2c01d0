"""Unambiguous dates, exact numbers, NaN/inf in every input form, and exact ids in extracts."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.properties import PropertySchema
from airflow_provider_appointments.records.readers import iter_record_frames
from airflow_provider_appointments.records.serialization import serialize_frame
from airflow_provider_appointments.records.writers import ExtractWriter, read_extract
from tests.records.test_records import SCHEMA, prop

BIG = 12345678901234567890


def column(name, values, **options):
    frame = pd.DataFrame({name: pd.Series(values, dtype=options.pop("dtype", None))})
    result = serialize_frame(frame, SCHEMA, **options)
    return [row.get(name) for row in result.rows], result.errors


# --- dates -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value", [("day", "13/01/2026"), ("day", "01/02/2026"), ("start", "01/02/2026 09:00"),
                                         ("day", "Jan 5 2026"), ("day", "20260113"), ("start", "next tuesday")])
def test_dates_that_need_a_guess_are_refused_with_the_fix(name, value):
    values, errors = column(name, ["2026-01-13", value, None])
    assert values == [("2026-01-13" if name == "day" else "1768262400000"), None, None] and list(errors) == [1]
    kind = "date" if name == "day" else "datetime"
    assert errors[1].startswith(f"row 1, column {name!r}: {value!r} is not a {kind} in ISO 8601 form")
    assert "pass date_format, e.g. date_format='%d/%m/%Y" in errors[1] and f"{{{name!r}: " in errors[1]


def test_day_month_text_says_it_is_not_guessed():
    assert "day/month or month/day is never guessed" in column("day", ["01/02/2026"])[1][0]


def test_iso_8601_forms_and_epoch_ms_are_read():
    values, errors = column("start", ["2026-01-13", "2026-01-13T09:00:00Z", "2026-01-13T11:00:00+02:00",
                                      "2026-01-13 09:00:00.250", "2026-01-13T09:00", "1768294800000",
                                      " 2026-01-13T09:00:00Z "])
    assert errors == {}
    assert values == ["1768262400000", "1768294800000", "1768294800000", "1768294800250", "1768294800000",
                      "1768294800000", "1768294800000"]


def test_python_and_numpy_moments_in_an_object_column():
    values, errors = column("day", [date(2026, 1, 2), datetime(2026, 1, 3), pd.Timestamp("2026-01-04"),
                                    np.datetime64("2026-01-05"), "2026-01-06", float("nan"), pd.NaT], dtype=object)
    assert errors == {} and values == ["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05", "2026-01-06", None, None]
    values, errors = column("start", [datetime(2026, 1, 13, 10, tzinfo=timezone.utc), 1768294800000, True,
                                      float("inf"), 10**30], dtype=object)
    assert values[:2] == ["1768298400000", "1768294800000"] and values[2:] == [None, None, None]
    assert errors[2].endswith("True is a boolean, not a datetime") and errors[3].endswith("inf is not a datetime")
    assert "out of range for a datetime" in errors[4]


def test_a_date_format_for_every_date_column_or_per_column():
    values, errors = column("day", ["13/01/2026", "01/02/2026", "2026-01-13", None], date_format="%d/%m/%Y")
    assert values == ["2026-01-13", "2026-02-01", None, None]
    assert errors == {2: "row 2, column 'day': '2026-01-13' does not match date_format '%d/%m/%Y'"}
    frame = pd.DataFrame({"Start": ["01/02/2026 09:30", "2026-01-13T09:00:00Z"], "day": ["2026-01-13", "2026-01-14"]})
    result = serialize_frame(frame, SCHEMA, column_mapping={"Start": "start"}, date_format={"Start": "%m/%d/%Y %H:%M"})
    assert result.rows[0] == {"start": "1767346200000", "day": "2026-01-13"}  # January 2
    assert result.errors == {
        1: "row 1, column 'Start': '2026-01-13T09:00:00Z' does not match date_format '%m/%d/%Y %H:%M'"}


def test_a_date_format_still_takes_moments_and_epoch_numbers():
    values, errors = column("start", [datetime(2026, 1, 13, 9), 1768294800000, "13.01.2026 09:00 +0100"], dtype=object,
                            date_format="%d.%m.%Y %H:%M %z")
    assert errors == {} and values == ["1768294800000", "1768294800000", "1768291200000"]


@pytest.mark.parametrize("date_format, message", [
    ({"dya": "%d/%m/%Y"}, "date_format names 'dya', which is not a date or datetime column"),
    ({"name": "%d/%m/%Y"}, "date_format names 'name'"),
    ("%Q", "is not a valid strptime format"),
    ("dd/mm/yyyy", "must be a strptime format"),
])
def test_bad_date_formats_are_refused_before_anything_is_sent(date_format, message):
    with pytest.raises(HubSpotInputError, match=message):
        serialize_frame(pd.DataFrame({"name": ["a"], "day": ["2026-01-01"]}), SCHEMA, date_format=date_format)


def test_dates_keep_their_rules_with_a_format():
    values, errors = column("day", ["13/01/2026 10:00"], date_format="%d/%m/%Y %H:%M")
    assert values == [None] and "has a time of day" in errors[0]


# --- numbers -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("values, dtype", [([BIG, None, 5], object), ([str(BIG), None, "5"], None),
                                           ([BIG, 0, 5], "uint64"), ([-(2**63), 0, 5], "int64")])
def test_big_integers_keep_every_digit(values, dtype):
    result, errors = column("price", values, dtype=dtype)
    assert errors == {} and result[0] == str(values[0]) and result[2] == "5"


@pytest.mark.parametrize("dtype", ["Float32", "Float64", "Int64", "UInt64"])
def test_nullable_number_columns(dtype):
    values, errors = column("price", [1, None, 2], dtype=dtype)
    assert errors == {} and values == ["1", None, "2"]


def test_decimal_text_keeps_its_value():
    values, errors = column("price", ["0.1", "1e3", "-2.50", " 007 ", "+5", "-0.0", "1.5E-3",
                                      "123456789012345678901234567890.5"])
    assert errors == {}
    assert values == ["0.1", "1000", "-2.5", "7", "5", "0", "0.0015", "123456789012345678901234567890.5"]


def test_floats_keep_their_readable_value():
    values, errors = column("price", [0.1 + 0.2, 3.0, 1e20, -0.0, np.nan])
    assert errors == {} and values == ["0.3", "3", "100000000000000000000", "0", None]
    assert column("price", [0.1, 2.5], dtype="float32")[0] == ["0.1", "2.5"]


@pytest.mark.parametrize("values, dtype, shown, problem", [
    ([True, False], "bool", "True", "is a boolean, not a number"),
    ([True, 1], object, "True", "is a boolean, not a number"),
    ([float("inf"), 1.0], None, "inf", "is not a finite number"),
    ([float("-inf"), 1], object, "-inf", "is not a finite number"),
    (["-", "1"], None, "'-'", "is not a number"),
    (["inf", "1"], None, "'inf'", "is not a number"),
    (["1,000", "1"], None, "'1,000'", "is not a number"),
    (["1e99999", "1"], None, "'1e99999'", "is out of range for a number"),
    ([Decimal("Infinity"), 1], object, "Decimal('Infinity')", "is not a finite number"),
])
def test_not_numbers_are_refused_per_row(values, dtype, shown, problem):
    result, errors = column("price", values, dtype=dtype)
    assert errors[0] == f"row 0, column 'price': {shown} {problem}"
    assert result[0] is None and (result[1] == "1" or dtype == "bool")


@pytest.mark.parametrize("missing", [None, float("nan"), np.nan, pd.NA, Decimal("NaN"), "", "  ",
                                     "nan", "NULL", " N/A "])
def test_missing_numbers_in_any_form_are_missing(missing):
    values, errors = column("price", [missing, 1], dtype=object)
    assert errors == {} and values == [None, "1"]
    cleared = serialize_frame(pd.DataFrame({"price": pd.Series([missing, 1], dtype=object)}), SCHEMA,
                              clear_missing=True)
    assert cleared.rows[0] == {"price": ""}


def test_nullable_ints():
    assert column("minutes", [1, None, 3], dtype="Int64") == (["1", None, "3"], {})
    assert column("start", [1768294800000, None], dtype="Int64") == (["1768294800000", None], {})


# --- NaN and inf in the other property types ----------------------------------------------------------

def test_nan_is_missing_and_inf_refused_in_every_type():
    for name in ("name", "first", "status", "day", "start"):
        values, errors = column(name, [float("nan"), np.float64("nan"), None, float("inf")], dtype=object)
        assert values == [None] * 4 and list(errors) == [3], name
    assert column("name", [float("nan"), "a"])[0] == [None, "a"]
    problem = column("name", [float("inf")], dtype=object)[1][0]
    assert problem.endswith("inf is not a finite value; text properties take text")


def test_multi_select_lists_and_arrays():
    values, errors = column("services", [["LAB", None, float("nan")], np.array(["LAB", "IMAGING"]), float("nan")],
                            dtype=object)
    assert errors == {} and values == ["LAB", "LAB;IMAGING", None]


def test_inline_records_keep_big_ints_and_nan_as_missing():
    records = [{"name": "a", "price": BIG, "minutes": 1},
               {"name": float("nan"), "price": None, "minutes": float("nan")},
               {"name": "c", "price": 5, "minutes": 3}]
    (_, frame), = iter_record_frames(records)
    assert str(frame["minutes"].dtype) == "Int64"
    result = serialize_frame(frame, SCHEMA)
    assert result.errors == {}
    assert result.rows == [{"name": "a", "price": str(BIG), "minutes": "1"}, {},
                           {"name": "c", "price": "5", "minutes": "3"}]


def test_mixed_good_and_bad_values_never_crash_a_column():
    values, errors = column("start", ["2026-01-13T09:00:00Z", "13/01/2026", 1768294800000, True, None, float("nan"),
                                      pd.Timestamp("2026-01-13 09:00", tz="Europe/Paris"), "2026-13-45", [1]],
                            dtype=object)
    assert values[0] == values[2] == "1768294800000" and values[6] == "1768291200000"
    assert sorted(errors) == [1, 3, 7, 8] and "is not a valid datetime" in errors[7]


# --- extracts ----------------------------------------------------------------------------------------

EXTRACT_SCHEMA = PropertySchema.from_api([*(prop(n, t) for n, t in [("hs_object_id", "number"), ("price", "number"),
                                                                       ("patient_id", "number"), ("name", "string")])])


def extract_record(i, **props):
    return {"id": str(i) if i is not None else None, "createdAt": "2026-06-01T09:00:00.000Z",
            "updatedAt": "2026-06-01T09:00:00.000Z", "archived": False,
            "properties": {"hs_object_id": str(i) if i is not None else None, "name": "n", **props}}


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_extract_ids_are_exact_text_even_with_gaps(tmp_path, fmt, caplog):
    path = str(tmp_path / f"out.{fmt}")
    writer = ExtractWriter(path, fmt, EXTRACT_SCHEMA, ["hs_object_id", "price", "patient_id", "name"], buffer_records=2)
    writer.write_page([extract_record(BIG, price="2.5", patient_id=str(BIG)), extract_record(None, price=None)])
    with caplog.at_level(logging.WARNING):
        writer.write_page([extract_record(7, price=str(BIG)), extract_record(8, price="1")])
        writer.close()
    frame = read_extract(path)
    for name in ("id", "hs_object_id", "patient_id"):
        assert frame[name].dtype != "float64", name
    assert frame["id"].tolist()[0] == str(BIG) and pd.isna(frame["id"].iloc[1])
    assert frame["id"].tolist()[2:] == ["7", "8"]
    assert frame["hs_object_id"].tolist()[0] == str(BIG) and frame["patient_id"].iloc[0] == str(BIG)
    assert frame["price"].tolist()[0] == 2.5
    assert "price has values such as 12345678901234567890 with more digits than a float64" in caplog.text
    if fmt == "parquet":
        types = {field.name: str(field.type) for field in pq.ParquetFile(path).schema_arrow}
        assert types["id"] == types["hs_object_id"] == types["patient_id"] == "string" and types["price"] == "double"
    if fmt == "jsonl":
        with open(path) as handle:
            first = json.loads(handle.readline())
        assert first["id"] == str(BIG) and first["hs_object_id"] == str(BIG)


@pytest.mark.parametrize("name", ["rows.csv", "rows.parquet"])
def test_a_file_read_for_its_key_column_reads_only_that_column(tmp_path, name):
    frame = pd.DataFrame({"key": ["007", "8", "9"], "notes": ["a", "b", "c"]})
    path = tmp_path / name
    frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path)

    chunks = list(iter_record_frames(str(path), chunk_rows=2, columns=["key", "absent"]))

    assert [(start, list(chunk.columns), len(chunk)) for start, chunk in chunks] == [(0, ["key"], 2), (2, ["key"], 1)]
    assert [value for _, chunk in chunks for value in chunk["key"]] == ["007", "8", "9"]
    # None of the columns asked for: every column, so the rows still count and the caller can name what is missing.
    (_, whole), *_ = iter_record_frames(str(path), chunk_rows=5, columns=["absent"])
    assert list(whole.columns) == ["key", "notes"] and len(whole) == 3


def test_csv_text_that_pandas_would_call_missing_is_text_only_an_empty_cell_is_missing(tmp_path):
    path = tmp_path / "bookings.csv"
    words = ["NA", "N/A", "n/a", "null", "NULL", "None", "nan", "NaN", "-NaN", "#N/A", ""]
    path.write_text("key,name,price,status\n" + "".join(f"{i},{w},{w},{w}\n" for i, w in enumerate(words))
                    + "11,Nan,abc,none\n")

    (_, frame), = iter_record_frames(str(path), chunk_rows=100)

    assert frame["name"].tolist()[:-2] == words[:-1] and pd.isna(frame["name"].iloc[-2])
    schema = PropertySchema.from_api([prop("name", "string"), prop("price", "number", "number"),
                                      {**prop("status", "enumeration", "select"),
                                       "options": [{"value": "SCHEDULED", "label": "Scheduled"},
                                                   {"value": "NONE", "label": "None"}]}])
    result = serialize_frame(frame.drop(columns="key"), schema)
    # A text property keeps the words (a patient called Nan); only the empty cell is missing.
    assert [row.get("name") for row in result.rows] == [*words[:-1], None, "Nan"]
    # In a number they can only mean "no value": missing, while other text is refused naming it.
    assert [row.get("price") for row in result.rows] == [None] * 12
    assert result.errors == {11: "row 11, column 'price': 'abc' is not a number"}
    # An enumeration with an option called "None" keeps it; the other words are missing there.
    assert [row.get("status") for row in result.rows] == [None] * 5 + ["NONE"] + [None] * 5 + ["NONE"]


def test_an_extract_read_back_from_csv_keeps_the_text_na(tmp_path):
    path = str(tmp_path / "out.csv")
    writer = ExtractWriter(path, "csv", EXTRACT_SCHEMA, ["hs_object_id", "name"], buffer_records=2)
    writer.write_page([extract_record(1, name="NA"), extract_record(2, name=None)])
    writer.close()
    frame = read_extract(path)
    assert frame["name"].iloc[0] == "NA" and pd.isna(frame["name"].iloc[1])
