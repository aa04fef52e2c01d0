"""A sync's state: what HubSpot holds from this sync, per key, published whole after each successful run.

One Parquet file (local path or URI) with a row per key: ``key``, ``hubspot_id``, ``row_hash`` and
``property_hashes`` (of the properties last written or confirmed, see `records.fingerprints`), and
``synced_at`` (epoch ms of that write). The next run compares the source with it; mirror mode archives
only keys found here, so it never touches records the sync did not write.

The new state is written as the run goes, under a temporary name (`storage.Publication`), and moved into
place only when the run succeeded: a failed or killed run leaves the previous state as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.storage import Publication, exists, open_path

ROW_GROUP = 50_000
STATE_SCHEMA = pa.schema([
    ("key", pa.string()), ("hubspot_id", pa.string()), ("row_hash", pa.string()),
    ("property_hashes", pa.string()), ("synced_at", pa.int64()),
])


@dataclass(frozen=True)
class StateEntry:
    key: str
    hubspot_id: str | None
    row_hash: str
    property_hashes: str
    synced_at: int


class SyncState:
    """The previous run's state, as an Arrow table (text in Arrow's buffers, not a Python object per
    value), looked up by 64-bit hashes of its keys, with the marks this run makes on it (seen in the
    source, rewritten, archived) as boolean arrays: a million keys cost tens of megabytes."""

    # Read at the start; the per-property hashes (the bulk of the file) are read only where needed.
    LOADED = ["key", "hubspot_id", "row_hash", "synced_at"]

    def __init__(self, table: pa.Table, path: str | None = None) -> None:
        """`table`: the state's entries (with or without ``property_hashes``); `path`: the file they come
        from, read again for ``property_hashes`` and for the entries carried over."""
        self.path = path
        self._row_groups: list[int] | None = None
        hashes = _hashes(table.column("key"))
        keep = np.ones(len(table), dtype=bool)
        values, counts = np.unique(hashes, return_counts=True)
        for value in values[counts > 1]:  # a key written twice: its last entry holds
            rows = np.flatnonzero(hashes == value)
            last: dict[str, int] = {}
            for row, key in zip(rows.tolist(), table.column("key").take(rows).to_pylist()):
                last[key] = row
            keep[rows] = False
            keep[list(last.values())] = True
        self._keep = keep
        self.table = table.filter(pa.array(keep)) if not keep.all() else table
        kept = hashes[keep]
        self._order = np.argsort(kept, kind="stable")
        self._sorted = kept[self._order]
        self.seen = np.zeros(len(self.table), dtype=bool)
        self.rewritten = np.zeros(len(self.table), dtype=bool)
        self.archived = np.zeros(len(self.table), dtype=bool)

    @classmethod
    def load(cls, path: str) -> SyncState | None:
        """The state at `path`, or None when there is none yet (the first run)."""
        if not exists(path):
            return None
        try:
            with open_path(path) as handle:
                names = pq.ParquetFile(handle).schema_arrow.names
                if missing := sorted(set(STATE_SCHEMA.names) - set(names)):
                    raise KeyError(f"no column {', '.join(missing)}")
                handle.seek(0)
                table = _read_by_row_group(handle, cls.LOADED)
        except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
            reason = str(exc).splitlines()[0]
            raise HubSpotInputError(f"state_path {path} is not a sync state this provider wrote ({reason}). Move it "
                                    "away to start over (the first run then compares with HubSpot)") from None
        return cls(table, path)

    def __len__(self) -> int:
        return len(self.table)

    def positions(self, keys: Iterable[str | None]) -> np.ndarray:
        """Each key's position in the state (-1: not in it)."""
        wanted = list(keys)
        found = np.full(len(wanted), -1, dtype=np.int64)
        if not wanted or not len(self.table):
            return found
        hashes = _hashes(pa.array([key or "" for key in wanted], pa.string()))
        at = np.minimum(np.searchsorted(self._sorted, hashes), len(self._sorted) - 1)
        candidates = np.flatnonzero((self._sorted[at] == hashes) & np.array([key is not None for key in wanted]))
        if not len(candidates):
            return found
        stored = self.table.column("key").take(self._order[at[candidates]]).to_pylist()
        for index, key in zip(candidates.tolist(), stored):
            if key == wanted[index]:
                found[index] = self._order[at[index]]
            else:  # two keys with one hash (about once in 10^19 pairs): look through that hash's run
                found[index] = self._search(wanted[index], int(at[index]))
        return found

    def _search(self, key: str | None, start: int) -> int:
        column = self.table.column("key")
        position = start
        while position < len(self._sorted) and self._sorted[position] == self._sorted[start]:
            if column[int(self._order[position])].as_py() == key:
                return int(self._order[position])
            position += 1
        return -1

    def mark_seen(self, keys: Iterable[str | None]) -> None:
        found = self.positions(keys)
        self.seen[found[found >= 0]] = True

    def values(self, column: str, positions: Any) -> list[Any]:
        """A column's values at `positions` (None where the position is -1: not in the state)."""
        positions = np.asarray(positions, dtype=np.int64)
        found = positions >= 0
        if not found.any():
            taken: list[Any] = []
        elif column in self.table.column_names:
            taken = self.table.column(column).take(positions[found]).to_pylist()
        else:
            taken = self._read_at(column, positions[found])
        values: list[Any] = [None] * len(positions)
        for index, value in zip(np.flatnonzero(found).tolist(), taken):
            values[index] = value
        return values

    def unseen(self) -> pd.DataFrame:
        """The keys this sync wrote that the source no longer has (with their HubSpot ids), by key."""
        rows = self.table.filter(pa.array(~self.seen)).select(["key", "hubspot_id"])
        return rows.to_pandas().set_index("key")

    def _file_rows(self) -> np.ndarray:
        """Each entry's row in the file (entries are the file's rows less the repeated keys)."""
        return np.flatnonzero(self._keep)

    def _read_at(self, column: str, positions: np.ndarray) -> list[Any]:
        """A column the start did not load, at these positions: only the row groups holding them are read."""
        assert self.path is not None, "a state built in memory has every column"
        rows = self._file_rows()[positions]
        with open_path(self.path) as handle:
            parquet = pq.ParquetFile(handle)
            starts = np.cumsum([0] + [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)])
            groups = np.searchsorted(starts, rows, side="right") - 1
            values: list[Any] = [None] * len(rows)
            for group in np.unique(groups).tolist():
                chunk = parquet.read_row_group(group, columns=[column]).column(0)
                where = np.flatnonzero(groups == group)
                for index, value in zip(where.tolist(), chunk.take(rows[where] - starts[group]).to_pylist()):
                    values[index] = value
        return values

    def iter_kept(self) -> Any:
        """The entries the new state carries over as they are (neither rewritten nor archived), read from
        the file a row group at a time."""
        carried = ~(self.rewritten | self.archived)
        if self.path is None:
            yield self.table.filter(pa.array(carried))
            return
        wanted = np.zeros(len(self._keep), dtype=bool)
        wanted[self._file_rows()[carried]] = True
        with open_path(self.path) as handle:
            parquet = pq.ParquetFile(handle)
            start = 0
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group, columns=STATE_SCHEMA.names)
                mask = wanted[start:start + len(table)]
                start += len(table)
                if mask.any():
                    yield table.filter(pa.array(mask))
                del table
                pa.default_memory_pool().release_unused()


def _read_by_row_group(handle: Any, columns: list[str]) -> pa.Table:
    """`columns` of a Parquet file, a row group at a time on this thread: a whole-file read decodes the
    groups in parallel, and Arrow's allocator keeps the peak of that (about twice the table, 150 MB for a
    million keys) long after it is freed. Handed back to the system here."""
    parquet = pq.ParquetFile(handle, pre_buffer=False)
    groups = [parquet.read_row_group(group, columns=columns, use_threads=False)
              for group in range(parquet.num_row_groups)]
    table = pa.concat_tables(groups) if groups else parquet.schema_arrow.empty_table().select(columns)
    pa.default_memory_pool().release_unused()
    return table


def _hashes(keys: Any) -> np.ndarray:
    """64-bit hashes of an Arrow column of keys (pandas' SipHash), 50,000 at a time (each as Python text
    only while it is hashed)."""
    if not len(keys):
        return np.empty(0, dtype=np.uint64)
    if isinstance(keys, pa.ChunkedArray):
        keys = pa.concat_arrays(keys.chunks) if keys.num_chunks != 1 else keys.chunk(0)
    parts = [pd.util.hash_array(np.asarray(keys.slice(start, 50_000).to_numpy(zero_copy_only=False), dtype=object))
             for start in range(0, len(keys), 50_000)]
    return np.concatenate(parts).astype(np.uint64)


class StateWriter:
    """The next state, written as the run goes and published whole by `commit`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._publication: Publication | None = None
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def _open(self) -> pq.ParquetWriter:
        if self._writer is None:
            self._publication = Publication(self.path)
            self._writer = pq.ParquetWriter(self._publication.handle, STATE_SCHEMA)
        # Row groups of at most ROW_GROUP entries, so a later run reads only those it needs.
        return self._writer

    def add(self, entries: list[StateEntry]) -> None:
        if entries:
            self._open().write_table(pa.Table.from_pylist([vars(entry) for entry in entries], schema=STATE_SCHEMA),
                                     row_group_size=ROW_GROUP)
            self.rows += len(entries)

    def add_columns(self, columns: dict[str, list]) -> None:
        """Entries given column by column (``STATE_SCHEMA``'s names)."""
        if columns["key"]:
            self._open().write_table(pa.table(columns, schema=STATE_SCHEMA), row_group_size=ROW_GROUP)
            self.rows += len(columns["key"])

    def add_table(self, table: pa.Table) -> None:
        if len(table):
            self._open().write_table(table.select(STATE_SCHEMA.names).cast(STATE_SCHEMA), row_group_size=ROW_GROUP)
            self.rows += len(table)

    def commit(self) -> None:
        writer = self._open()  # an empty state is a state too: the next run starts from nothing owned
        writer.close()
        assert self._publication is not None
        self._publication.commit()

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                assert self._publication is not None
                self._publication.abort()
