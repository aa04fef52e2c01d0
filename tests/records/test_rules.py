"""Option labels, value maps and local time zones in the serialization rules (pure: no server)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.properties import PropertySchema, fold
from airflow_provider_appointments.records.serialization import serialize_frame

STATUSES = [("SCHEDULED", "Scheduled"), ("CONFIRMED", "Confirmed"), ("CANCELED", "Canceled"), ("NO_SHOW", "No show"),
            ("WAITLIST", "On the list"), ("ON_THE_LIST", "Other")]


def prop(name, type_, field_type="text", options=()):
    return {"name": name, "label": name, "type": type_, "fieldType": field_type,
            "options": [{"label": label, "value": value} for value, label in options]}


SCHEMA = PropertySchema.from_api([
    prop("name", "string"), prop("start", "datetime", "date"), prop("end", "datetime", "date"),
    prop("day", "date", "date"), prop("status", "enumeration", "select", STATUSES),
    prop("services", "enumeration", "checkbox", [("LAB", "Laboratory"), ("XRAY", "X-ray")]),
])


def berlin_ms(text: str) -> str:
    return str(pd.Timestamp(text, tz="Europe/Berlin").value // 1_000_000)


def test_fold_ignores_case_spaces_underscores_and_hyphens():
    assert fold("No show") == fold("NO_SHOW") == fold(" no-show ") == "noshow"


def test_enumerations_take_an_options_value_or_label_in_any_case_and_spacing():
    frame = pd.DataFrame({"status": ["confirmed", "No show", "no_show", "CANCELED", " Scheduled ", "noshow"]})
    result = serialize_frame(frame, SCHEMA)
    assert not result.errors
    assert [row["status"] for row in result.rows] == ["CONFIRMED", "NO_SHOW", "NO_SHOW", "CANCELED", "SCHEDULED",
                                                       "NO_SHOW"]


def test_a_label_folding_onto_two_options_is_refused_but_the_exact_value_is_taken():
    # "On the list" (label of WAITLIST) and ON_THE_LIST (a value) fold alike: only the exact value is sure.
    result = serialize_frame(pd.DataFrame({"status": ["On the list", "ON_THE_LIST", "WAITLIST"]}), SCHEMA)
    assert result.errors == {0: "row 0, column 'status': 'On the list' matches more than one option of status "
                                "by label; use the value"}
    assert result.rows[1:] == [{"status": "ON_THE_LIST"}, {"status": "WAITLIST"}]


def test_multi_select_parts_match_labels_too():
    result = serialize_frame(pd.DataFrame({"services": ["laboratory; x-ray", "LAB", "lab;nuclear"]}), SCHEMA)
    assert [row.get("services") for row in result.rows] == ["LAB;XRAY", "LAB", None]
    assert "'nuclear' is not an option of services" in result.errors[2]


def test_a_value_map_applies_before_the_rules_and_the_rest_is_refused_as_before():
    frame = pd.DataFrame({"status": ["cancelled", "Cancelled ", "no-show", "rescheduled", None],
                          "name": ["a", "n/a", "c", "d", "e"]})
    result = serialize_frame(frame, SCHEMA, value_mapping={"status": {"cancelled": "CANCELED"},
                                                           "name": {"n/a": None}})
    assert [row.get("status") for row in result.rows] == ["CANCELED", "CANCELED", "NO_SHOW", None, None]
    assert [row.get("name") for row in result.rows] == ["a", None, "c", "d", "e"]
    assert list(result.errors) == [3] and "'rescheduled' is not an option of status" in result.errors[3]


@pytest.mark.parametrize(("mapping", "message"), [
    ({"status": {"cancelled": "CANCELLED_BY_US"}}, "maps 'cancelled' to 'CANCELLED_BY_US', which is not an option"),
    ({"statuss": {"a": "CANCELED"}}, "value_mapping names 'statuss', which is not a column being written"),
    ({"status": ["cancelled"]}, "value_mapping['status'] must be a dict"),
])
def test_a_value_map_that_cannot_apply_is_refused_up_front(mapping, message):
    with pytest.raises(HubSpotInputError, match=message.replace("[", r"\[").replace("(", r"\(")):
        serialize_frame(pd.DataFrame({"status": ["cancelled"]}), SCHEMA, value_mapping=mapping)


def test_a_value_map_keyed_by_the_property_names_the_column_written_to_it():
    with pytest.raises(HubSpotInputError) as raised:
        serialize_frame(pd.DataFrame({"state": ["cancelled"]}), SCHEMA, column_mapping={"state": "status"},
                        value_mapping={"status": {"cancelled": "CANCELED"}})
    assert str(raised.value) == ("value_mapping names 'status', which is not a column being written (those are: "
                                 "'state'); column 'state' is written to it: key value_mapping by that column")


def test_naive_datetimes_are_wall_clock_times_in_the_given_zone_and_aware_ones_keep_their_offset():
    frame = pd.DataFrame({"start": ["2026-12-03 14:30", "2026-07-01T09:00:00", "2026-12-03T14:30:00Z",
                                    "2026-12-03T14:30:00+01:00", "1796304600000", datetime(2026, 12, 3, 14, 30)],
                          "day": ["2026-12-03"] * 6})
    result = serialize_frame(frame, SCHEMA, timezone="Europe/Berlin")
    assert not result.errors
    assert [row["start"] for row in result.rows] == [
        berlin_ms("2026-12-03 14:30"), berlin_ms("2026-07-01 09:00"),  # CET, then CEST
        str(pd.Timestamp("2026-12-03T14:30:00Z").value // 1_000_000),
        berlin_ms("2026-12-03 14:30"), "1796304600000", berlin_ms("2026-12-03 14:30")]
    assert {row["day"] for row in result.rows} == {"2026-12-03"}  # dates stay dates: midnight UTC
    assert serialize_frame(frame.iloc[:1], SCHEMA).rows[0]["start"] == "1796308200000"  # default: UTC


def test_a_naive_datetime64_column_and_date_format_text_are_localized_too():
    column = pd.Series(pd.to_datetime(["2026-12-03 14:30"]))
    assert serialize_frame(pd.DataFrame({"start": column}), SCHEMA, timezone="Europe/Berlin").rows[0]["start"] == \
        berlin_ms("2026-12-03 14:30")
    result = serialize_frame(pd.DataFrame({"start": ["03.12.2026 14:30"]}), SCHEMA, date_format="%d.%m.%Y %H:%M",
                             timezone={"start": "Europe/Berlin"})
    assert result.rows[0]["start"] == berlin_ms("2026-12-03 14:30")


def test_local_times_that_dst_skips_or_repeats_are_refused_per_row_naming_the_value():
    frame = pd.DataFrame({"start": ["2026-03-29 02:30", "2026-10-25 02:30", "2026-10-25 03:30"]})
    result = serialize_frame(frame, SCHEMA, timezone="Europe/Berlin")
    assert result.errors == {
        0: "row 0, column 'start': '2026-03-29 02:30' does not exist in Europe/Berlin (the clocks skip it for "
           "daylight saving time)",
        1: "row 1, column 'start': '2026-10-25 02:30' happens twice in Europe/Berlin (the clocks repeat it when "
           "daylight saving time ends); pass ambiguous='earliest' or 'latest' to choose"}
    assert result.rows[2] == {"start": berlin_ms("2026-10-25 03:30")}


@pytest.mark.parametrize(("choice", "utc"), [("earliest", "2026-10-25T00:30:00Z"), ("latest", "2026-10-25T01:30:00Z")])
def test_ambiguous_chooses_one_of_the_repeated_moments(choice, utc):
    result = serialize_frame(pd.DataFrame({"start": ["2026-10-25 02:30"]}), SCHEMA, timezone="Europe/Berlin",
                             ambiguous=choice)
    assert result.rows == [{"start": str(pd.Timestamp(utc).value // 1_000_000)}]


def test_each_column_can_have_its_own_zone():
    frame = pd.DataFrame({"start": ["2026-12-03 14:30"], "end": ["2026-12-03 14:30"]})
    result = serialize_frame(frame, SCHEMA, timezone={"start": "Europe/Berlin", "end": "America/New_York"})
    assert result.rows[0]["end"] == str(pd.Timestamp("2026-12-03 14:30", tz="America/New_York").value // 1_000_000)
    assert result.rows[0]["start"] == berlin_ms("2026-12-03 14:30")


@pytest.mark.parametrize(("timezone", "ambiguous", "message"), [
    ("Europe/Berln", "raise", "timezone 'Europe/Berln' is not an IANA time zone (such as 'Europe/Berlin'); did you "
                              "mean Europe/Berlin"),
    ({"day": "Europe/Berlin"}, "raise", "timezone names 'day', which is not a datetime column being written"),
    ("Europe/Berlin", "first", "ambiguous must be one of raise, earliest, latest"),
])
def test_a_zone_or_choice_that_cannot_apply_is_refused_up_front(timezone, ambiguous, message):
    with pytest.raises(HubSpotInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        serialize_frame(pd.DataFrame({"start": ["2026-12-03 14:30"], "day": ["2026-12-03"]}), SCHEMA,
                        timezone=timezone, ambiguous=ambiguous)


def test_missing_values_stay_missing_with_a_zone():
    frame = pd.DataFrame({"start": [None, np.nan, "", "2026-12-03 14:30"]})
    result = serialize_frame(frame, SCHEMA, timezone="Europe/Berlin")
    assert not result.errors and [row.get("start") for row in result.rows] == [None, None, None,
                                                                               berlin_ms("2026-12-03 14:30")]


def test_naive_text_is_told_from_text_with_an_offset_only_after_a_time_of_day():
    frame = pd.DataFrame({"start": ["2026-12-03", "2026-12-03T00:00", "2026-12-03T14:30:00-05:00",
                                    "2026-12-03 14:30Z", "-1000000000000"]})
    rows = serialize_frame(frame, SCHEMA, timezone="America/New_York").rows
    utc = [pd.Timestamp(int(row["start"]), unit="ms", tz="UTC") for row in rows]
    assert utc[0] == utc[1] == pd.Timestamp("2026-12-03T05:00Z")  # a date alone is a naive midnight too
    assert utc[2] == pd.Timestamp("2026-12-03T19:30Z") and utc[3] == pd.Timestamp("2026-12-03T14:30Z")
    assert rows[4]["start"] == "-1000000000000"  # epoch milliseconds are moments, even before 1970


@pytest.mark.parametrize(("fmt", "text", "utc"), [
    ("%Y%m%d-%H%M", "20261203-1430", "2026-12-03T19:30Z"),  # the trailing -1430 is no offset
    ("%d-%m-%Y", "03-12-2026", "2026-12-03T05:00Z"),
    ("%Y-%m-%d %H:%M UTC", "2026-12-03 14:30 UTC", "2026-12-03T14:30Z"),  # the format says UTC
    ("%Y-%m-%d %H:%M%z", "2026-12-03 14:30+0100", "2026-12-03T13:30Z"),
])
def test_with_a_date_format_the_format_says_whether_text_carries_a_zone(fmt, text, utc):
    rows = serialize_frame(pd.DataFrame({"start": [text]}), SCHEMA, date_format=fmt, timezone="America/New_York").rows
    assert pd.Timestamp(int(rows[0]["start"]), unit="ms", tz="UTC") == pd.Timestamp(utc)


def test_value_map_keys_match_numbers_as_numbers_and_fold_only_words():
    frame = pd.DataFrame({"name": pd.Series([1.0, np.nan, -1, "1-2", "Room"], dtype=object)})
    result = serialize_frame(frame, SCHEMA, value_mapping={"name": {1: "Room A", -1: None, "12": "twelve",
                                                                    "ROOM": "Room B"}})
    assert [row.get("name") for row in result.rows] == ["Room A", None, None, "1-2", "Room B"]


def test_value_map_reaches_each_part_of_multi_select_text():
    result = serialize_frame(pd.DataFrame({"services": ["blood;X-ray"]}), SCHEMA,
                             value_mapping={"services": {"blood": "LAB"}})
    assert result.rows == [{"services": "LAB;XRAY"}]
