"""Input records for the write operators: a DataFrame, a list of dicts, a Parquet / CSV / JSON Lines
file (local path or any URI Airflow's ObjectStoragePath understands) or a SQL query (`records.sql`),
yielded in chunks, never whole."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.formats import format_of
from airflow_provider_appointments.records.storage import open_path

__all__ = ["iter_record_frames", "open_path"]


def iter_record_frames(records: Any, *, chunk_rows: int = 5000,
                       columns: list[str] | None = None) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(number of the chunk's first input row, chunk)``; row numbers count from 0.

    :param columns: read only these columns where the input allows it (Parquet and CSV read nothing
        else); columns the input lacks are left out, so a check on the chunk can name them.
    """
    if isinstance(records, pd.DataFrame):
        for start in range(0, len(records), chunk_rows):
            yield start, records.iloc[start:start + chunk_rows]
        return
    if isinstance(records, (list, tuple)):
        bad = [i for i, item in enumerate(records) if not isinstance(item, dict)]
        if bad:
            raise HubSpotInputError(f"records must be dicts; row {bad[0]} is {type(records[bad[0]]).__name__}")
        for start in range(0, len(records), chunk_rows):
            yield start, _frame_from_dicts(list(records[start:start + chunk_rows]))
        return
    from airflow_provider_appointments.records.sql import MaterializedSource, SqlSource

    if isinstance(records, MaterializedSource):  # its own chunks (the windows of the run that copied it)
        yield from records.iter_frames(columns)
        return
    if isinstance(records, SqlSource):
        for start, frame in records.iter_frames(chunk_rows):
            present = [name for name in columns or () if name in frame.columns]
            yield start, frame[present] if present else frame
        return
    if isinstance(records, dict) and "path" in records:  # an extract summary from XCom
        records = records["path"]
    if isinstance(records, (str, os.PathLike)) or _is_object_storage_path(records):
        yield from _iter_file(str(records), chunk_rows, columns)
        return
    raise HubSpotInputError("records must be a DataFrame, a list of dicts or a file path, "
                            f"not {type(records).__name__}")


def _is_object_storage_path(value: Any) -> bool:
    """Airflow's ObjectStoragePath, which is not an os.PathLike (airflow is imported only when asked)."""
    from airflow.sdk import ObjectStoragePath

    return isinstance(value, ObjectStoragePath)


def frame_from_rows(names: list[str], rows: list[Any]) -> pd.DataFrame:
    """A database cursor's rows as a DataFrame, by the rules of a list of dicts."""
    if rows and isinstance(rows[0], Mapping):  # a driver's dict rows (e.g. a DictCursor)
        frame = _frame_from_dicts([{name: row[name] for name in names} for row in rows])
    else:
        frame = _frame_from_dicts([dict(zip(names, row)) for row in rows])
    return frame.reindex(columns=names) if list(frame.columns) != names else frame


def _frame_from_dicts(records: list[dict]) -> pd.DataFrame:
    """pandas turns ints with a gap (None/NaN) into float64, where 12345678901234567890 loses digits:
    such columns become nullable Int64, or stay Python ints (object) beyond int64. NaN stays missing."""
    frame = pd.DataFrame.from_records(records)
    for column in frame.columns:
        if frame[column].dtype != "float64":
            continue
        values = pd.Series([record.get(column) for record in records], dtype=object, index=frame.index)
        if pd.api.types.infer_dtype(values, skipna=True) != "integer":
            continue
        try:
            frame[column] = values.astype("Int64")
        except (OverflowError, TypeError, ValueError):
            frame[column] = values.where(values.notna(), None)
    return frame


def _iter_file(path: str, chunk_rows: int, columns: list[str] | None = None) -> Iterator[tuple[int, pd.DataFrame]]:
    kind = format_of(path)
    with open_path(path) as handle:
        head = handle.read(4)
        handle.seek(0)
        if kind == "parquet" and head != b"PAR1":
            raise HubSpotInputError(f"{path} is not a Parquet file (its content does not start with PAR1)")
        if kind != "parquet" and head == b"PAR1":
            raise HubSpotInputError(f"{path} is a Parquet file, not {kind}: rename it to .parquet")
        start = 0
        try:
            if kind == "parquet":
                parquet = pq.ParquetFile(handle)
                present = [name for name in columns or () if name in parquet.schema_arrow.names]
                for batch in parquet.iter_batches(batch_size=chunk_rows, columns=present or None):
                    frame = batch.to_pandas()
                    yield start, frame
                    start += len(frame)
            elif kind == "csv":
                # Text as text: ids keep leading zeros; values are converted per property type later.
                # Only an empty cell is missing: pandas would also take "NA", "null", "None", "nan"… for
                # missing, losing a patient called Nan or a country code NA without a word.
                wanted = set(columns or ())
                use = (lambda name: name in wanted) if columns and _csv_has_any(handle, wanted) else None
                for frame in pd.read_csv(handle, chunksize=chunk_rows, dtype=str, keep_default_na=False,
                                         na_values=[""], usecols=use):
                    yield start, frame
                    start += len(frame)
            else:
                for frame in pd.read_json(handle, lines=True, chunksize=chunk_rows, dtype=False):
                    yield start, frame
                    start += len(frame)
        except pd.errors.EmptyDataError:
            return
        except (ValueError, pd.errors.ParserError, OSError) as exc:
            raise HubSpotInputError(f"{path}: cannot read it as {kind} near row {start}: {exc}") from None


def _csv_has_any(handle: Any, names: set[str]) -> bool:
    """Whether the CSV header names any of `names` (a chunk without columns would lose its row count)."""
    header = pd.read_csv(handle, nrows=0, dtype=str).columns
    handle.seek(0)
    return bool(names & set(header))
