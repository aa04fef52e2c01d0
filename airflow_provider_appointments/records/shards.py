"""Splitting a large input into shards for mapped write tasks: streamed, whole batches per shard, row
numbers kept, and no key written by two shards at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from airflow_provider_appointments.api.results import BATCH_LIMIT
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.storage import Publication


@dataclass(frozen=True)
class Shard:
    """One shard file and where its first row was in the original input (the operator's ``row_offset``)."""

    path: str
    row_offset: int
    rows: int


def _batches(source: Path) -> tuple[int, Any]:
    """(rows, record batches) of a Parquet or CSV file; CSV columns are all text (ids keep their zeros)."""
    if source.suffix == ".parquet":
        parquet = pq.ParquetFile(source)
        return parquet.metadata.num_rows, parquet.iter_batches(batch_size=10_000)
    names = pa_csv.open_csv(source).schema.names
    convert = pa_csv.ConvertOptions(column_types={name: pa.string() for name in names})
    # A CSV has no row count: a first streaming pass counts, so shards can be sized evenly.
    total = sum(len(batch) for batch in pa_csv.open_csv(source, convert_options=convert))
    return total, pa_csv.open_csv(source, convert_options=convert)


def split_into_shards(source: str | Path, shards: int, out_dir: str | Path, *, key_column: str | None = None,
                      batch_size: int = BATCH_LIMIT) -> list[Shard]:
    """Stream `source` (Parquet or CSV) into at most `shards` Parquet files of whole batches.

    :param key_column: the column the writes are keyed by: a key in two shards would be written by
        two tasks at once, in no fixed order, so that is refused (naming the key and both rows);
        repeats within one shard are left to the operator's ``on_duplicate_keys``.
    """
    source, out = Path(source), Path(out_dir)
    if shards < 1:
        raise HubSpotInputError(f"shards must be at least 1, got {shards}")
    total, batches = _batches(source)
    per_shard = max(batch_size, -(-total // shards // batch_size) * batch_size)
    seen: dict[str, tuple[int, int]] = {}  # key → (shard, row) where it first appeared
    current: tuple[Publication, pq.ParquetWriter] | None = None
    written = 0
    try:
        for batch in batches:
            if key_column is not None and key_column not in batch.schema.names:
                raise HubSpotInputError(f"{source}: no column {key_column!r} (columns: "
                                        f"{', '.join(batch.schema.names)})")
            offset = 0
            while offset < len(batch):
                index = written // per_shard
                take = min(len(batch) - offset, per_shard - written % per_shard)
                part = batch.slice(offset, take)
                if key_column is not None:
                    _check_keys(part.column(key_column).to_pylist(), index, written, seen, key_column)
                if current is None:  # shards are written one after another, each published whole
                    publication = Publication(out / f"shard-{index:03d}.parquet")
                    current = (publication, pq.ParquetWriter(publication.handle, batch.schema))
                current[1].write_batch(part)
                offset += take
                written += take
                if written % per_shard == 0:
                    current[1].close()
                    current[0].commit()
                    current = None
        if current is not None:
            current[1].close()
            current[0].commit()
            current = None
    finally:
        if current is not None:
            current[0].abort()
    return [Shard(str(out / f"shard-{index:03d}.parquet"), index * per_shard,
                  min(per_shard, total - index * per_shard)) for index in range(-(-total // per_shard))]


def _check_keys(keys: list[Any], shard: int, first_row: int, seen: dict[str, tuple[int, int]], name: str) -> None:
    for position, value in enumerate(keys):
        if value is None or str(value).strip() == "":
            continue
        key = str(value).strip()
        where = seen.setdefault(key, (shard, first_row + position))
        if where[0] != shard:
            raise HubSpotInputError(
                f"{name} {key!r} is in row {where[1]} (shard {where[0]}) and row {first_row + position} "
                f"(shard {shard}): two tasks would write it at once, in no fixed order. Remove the repeat, "
                "or use one shard")
