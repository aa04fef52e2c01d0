"""Fingerprints and the sync state: pure functions and files, no server."""

from __future__ import annotations

import pandas as pd
import pytest

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.operators.sync_state import StateEntry, StateWriter, SyncState
from airflow_provider_appointments.records.fingerprints import (
    changed_properties,
    decode_hashes,
    encode_hashes,
    property_hashes,
    row_hash,
    row_hashes,
)


def test_rows_hashed_together_hash_as_each_alone_and_a_missing_value_differs_from_an_empty_one():
    columns = {"b": ["2", None, ""], "a": ["1", "1", "1"]}
    together = row_hashes(columns, 3)
    assert together == [row_hash({"a": "1", "b": "2"}), row_hash({"a": "1"}, ["a", "b"]),
                        row_hash({"a": "1", "b": ""})]
    assert len(set(together)) == 3 and row_hashes({}, 2) == [row_hashes({}, 1)[0]] * 2
    assert row_hashes({"a": ["1"]}, 1) != row_hashes({"c": ["1"]}, 1)  # the name counts


def test_a_row_hash_ignores_property_order_and_tells_values_names_and_clearing_apart():
    one = {"a": "1", "b": "2"}
    assert row_hash(one) == row_hash({"b": "2", "a": "1"})
    assert row_hash(one) != row_hash({"a": "1", "b": "3"})
    assert row_hash({"a": "12"}) != row_hash({"a1": "2"})  # name and value
    assert row_hash({"a": "1", "b": "2\x1eb\x1f3"}) != row_hash({"a": "1", "b": "2", "bb": "3"})
    assert property_hashes({"a": ""}) != property_hashes({"a": None})  # cleared is not absent
    assert row_hash({"a": ""}) != row_hash({"a": None})
    assert row_hash(one) != row_hash({"a": "1"})  # a property fewer is a change


def test_changed_properties_names_what_differs_and_leaves_dropped_ones_alone():
    before = property_hashes({"a": "1", "b": "2", "gone": "x"})
    now = {"a": "1", "b": "20", "new": "y"}
    assert changed_properties(now, property_hashes(now), before) == {"b": "20", "new": "y"}
    assert decode_hashes(encode_hashes(before)) == before and decode_hashes(None) == {}


def test_the_state_is_published_whole_and_read_back_with_the_last_entry_of_a_key(tmp_path):
    path = str(tmp_path / "state.parquet")
    writer = StateWriter(path)
    writer.add([StateEntry("K1", "1", "h1", "{}", 1), StateEntry("K2", "2", "h2", "{}", 2)])
    assert not (tmp_path / "state.parquet").exists()  # nothing at the final path before commit
    writer.add([StateEntry("K1", "1", "h1b", "{}", 3)])
    writer.commit()
    state = SyncState.load(path)
    assert state is not None and len(state) == 2
    assert state.values("row_hash", state.positions(["K1"])) == ["h1b"]
    found = state.positions(["K2", "nope", None])
    assert state.values("key", found) == ["K2", None, None]
    state.mark_seen(["K2"])
    assert list(state.unseen().index) == ["K1"]


def test_an_aborted_state_leaves_the_previous_one_and_no_temporary_file(tmp_path):
    path = str(tmp_path / "state.parquet")
    first = StateWriter(path)
    first.add([StateEntry("K1", "1", "h1", "{}", 1)])
    first.commit()
    before = (tmp_path / "state.parquet").read_bytes()
    second = StateWriter(path)
    second.add([StateEntry("K9", "9", "h9", "{}", 9)])
    second.abort()
    assert (tmp_path / "state.parquet").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.parquet"]


def test_a_file_that_is_not_a_state_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "state.parquet"
    pd.DataFrame({"other": [1]}).to_parquet(path)
    with pytest.raises(HubSpotInputError, match="not a sync state.*Move it away"):
        SyncState.load(str(path))
    assert SyncState.load(str(tmp_path / "absent.parquet")) is None


def test_the_copy_of_a_sql_answer_gives_back_exactly_the_values_the_driver_gave():
    import datetime
    import decimal
    import uuid

    from airflow_provider_appointments.records.readers import frame_from_rows
    from airflow_provider_appointments.records.sql import _from_arrow, _to_arrow

    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    rows = [("a", 1, 12345678901234567890, decimal.Decimal("1.5"), {"a": 1}, ["x", "y"],
             datetime.datetime(2026, 1, 1, tzinfo=plus_two), None, 1.5, True, datetime.date(2026, 1, 2),
             uuid.UUID(int=7), b"\x00\xff"),
            ("b", None, None, decimal.Decimal("1.50"), {"b": "x"}, [], datetime.datetime(2026, 1, 1, tzinfo=None),
             "s", float("nan"), False, None, None, None)]
    names = ["k", "i", "big", "dec", "js", "arr", "dt", "s", "f", "b", "d", "u", "raw"]
    direct = frame_from_rows(names, rows)
    copied = _from_arrow(_to_arrow(direct))

    def plain(series):
        return [None if value is None or value is pd.NA or (isinstance(value, float) and value != value) else value
                for value in series.astype(object).tolist()]

    assert list(copied.columns) == names
    for name in names:
        assert plain(copied[name]) == plain(direct[name]), name
        assert [type(v) for v in plain(copied[name])] == [type(v) for v in plain(direct[name])], name


def test_dict_rows_from_a_driver_keep_their_values():
    from airflow_provider_appointments.records.readers import frame_from_rows

    frame = frame_from_rows(["k", "n"], [{"k": "A", "n": 1}, {"n": 2, "k": "B"}])
    assert frame.to_dict("list") == {"k": ["A", "B"], "n": [1, 2]}


def test_state_lookups_find_every_key_by_hash_even_among_many():
    import pyarrow as pa

    keys = [f"K{i:06d}" for i in range(20_000)]
    table = pa.table({"key": keys, "hubspot_id": [str(i) for i in range(20_000)], "row_hash": ["h"] * 20_000,
                      "property_hashes": ["{}"] * 20_000, "synced_at": [0] * 20_000})
    state = SyncState(table)
    wanted = ["K019999", "nope", "K000000", None, "K010000"]
    assert state.values("hubspot_id", state.positions(wanted)) == ["19999", None, "0", None, "10000"]
    state.mark_seen(keys[:19_998])
    assert list(state.unseen().index) == ["K019998", "K019999"]
