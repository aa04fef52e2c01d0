"""Sharding a large input for mapped tasks: whole batches, original row numbers, no key in two shards."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.shards import split_into_shards


def test_a_csv_is_split_into_whole_batches_keeping_text_and_row_numbers(tmp_path):
    source = tmp_path / "export.csv"
    pd.DataFrame({"external_appointment_id": [f"K-{i:05d}" for i in range(650)],
                  "phone": ["007"] * 650}).to_csv(source, index=False)
    shards = split_into_shards(source, 3, tmp_path / "shards", key_column="external_appointment_id")
    assert [(shard.row_offset, shard.rows) for shard in shards] == [(0, 300), (300, 300), (600, 50)]
    tables = [pq.read_table(shard.path).to_pandas() for shard in shards]
    assert [len(table) for table in tables] == [300, 300, 50]
    assert tables[1]["external_appointment_id"].iloc[0] == "K-00300" and tables[0]["phone"].iloc[0] == "007"
    assert sorted(path.name for path in (tmp_path / "shards").iterdir()) == [
        "shard-000.parquet", "shard-001.parquet", "shard-002.parquet"]  # no temporaries left


def test_a_key_in_two_shards_is_refused_naming_both_rows_and_no_partial_shard_is_left(tmp_path):
    source = tmp_path / "export.parquet"
    keys = [f"K-{i}" for i in range(250)]
    keys[220] = "K-5"  # shard 0 holds rows 0-99 (with 250 rows in 3 shards: 100 per shard)
    pd.DataFrame({"external_appointment_id": keys}).to_parquet(source)
    with pytest.raises(HubSpotInputError, match=r"'K-5' is in row 5 \(shard 0\) and row 220 \(shard 2\)"):
        split_into_shards(source, 3, tmp_path / "shards", key_column="external_appointment_id")
    assert sorted(path.name for path in (tmp_path / "shards").iterdir()) == ["shard-000.parquet", "shard-001.parquet"]


def test_a_key_repeated_within_one_shard_is_left_to_the_operator(tmp_path):
    source = tmp_path / "export.parquet"
    pd.DataFrame({"external_appointment_id": ["A", "A", "B"]}).to_parquet(source)
    shards = split_into_shards(source, 2, tmp_path / "shards", key_column="external_appointment_id")
    assert len(shards) == 1 and shards[0].rows == 3
