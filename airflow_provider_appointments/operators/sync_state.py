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
    """The previous run's state, indexed by key, with the marks this run makes on it (seen in the source,
    rewritten, archived) as boolean arrays; its text columns stay in Arrow's buffers."""

    def __init__(self, frame: pd.DataFrame) -> None:
        frame = frame.drop_duplicates("key", keep="last")
        self.frame = frame.set_index("key")
        self.index = self.frame.index
        self.seen = np.zeros(len(frame), dtype=bool)
        self.rewritten = np.zeros(len(frame), dtype=bool)
        self.archived = np.zeros(len(frame), dtype=bool)

    @classmethod
    def empty(cls) -> SyncState:
        return cls(STATE_SCHEMA.empty_table().to_pandas())

    @classmethod
    def load(cls, path: str) -> SyncState | None:
        """The state at `path`, or None when there is none yet (the first run)."""
        if not exists(path):
            return None
        try:
            with open_path(path) as handle:
                table = pq.read_table(handle, columns=STATE_SCHEMA.names)
        except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
            reason = str(exc).splitlines()[0]
            raise HubSpotInputError(f"state_path {path} is not a sync state this provider wrote ({reason}). Move it "
                                    "away to start over (the first run then compares with HubSpot)") from None
        # Text stays in Arrow's buffers (not a Python object per value): a million keys cost far less.
        return cls(table.to_pandas(types_mapper={pa.string(): pd.ArrowDtype(pa.string())}.get))

    def __len__(self) -> int:
        return len(self.index)

    def positions(self, keys: Iterable[str | None]) -> np.ndarray:
        """Each key's position in the state (-1: not in it)."""
        return self.index.get_indexer(pd.Index(list(keys), dtype=object))

    def mark_seen(self, keys: Iterable[str | None]) -> None:
        found = self.positions(keys)
        self.seen[found[found >= 0]] = True

    def values(self, column: str, positions: Any) -> list[Any]:
        """A column's values at `positions` (None where the position is -1: not in the state)."""
        positions = np.asarray(positions, dtype=np.int64)
        found = positions >= 0
        taken = self.frame[column].array.take(positions[found]) if found.any() else []
        values: list[Any] = [None] * len(positions)
        for index, value in zip(np.flatnonzero(found), list(taken)):
            values[index] = value
        return values

    def unseen(self) -> pd.DataFrame:
        """The keys this sync wrote that the source no longer has (with their HubSpot ids)."""
        return self.frame[~self.seen]

    def kept(self) -> pd.DataFrame:
        """The entries the new state carries over as they are: neither rewritten nor archived."""
        return self.frame[~(self.rewritten | self.archived)].reset_index()


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
        return self._writer

    def add(self, entries: list[StateEntry]) -> None:
        if entries:
            self._open().write_table(pa.Table.from_pylist([vars(entry) for entry in entries], schema=STATE_SCHEMA))
            self.rows += len(entries)

    def add_columns(self, columns: dict[str, list]) -> None:
        """Entries given column by column (``STATE_SCHEMA``'s names)."""
        if columns["key"]:
            self._open().write_table(pa.table(columns, schema=STATE_SCHEMA))
            self.rows += len(columns["key"])

    def add_frame(self, frame: pd.DataFrame) -> None:
        if len(frame):
            self._open().write_table(pa.Table.from_pandas(frame[STATE_SCHEMA.names], schema=STATE_SCHEMA,
                                                          preserve_index=False))
            self.rows += len(frame)

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
