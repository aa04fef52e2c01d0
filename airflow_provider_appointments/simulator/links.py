"""The store's associations: seeded links read from the seeded columns (in both directions) until a
record's links are written; from then on that record, and every record it was linked to, keeps its
links in ``links``, which is then the whole truth for them (see `store`)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_provider_appointments.simulator.schema import ASSOCIATION_TYPES

if TYPE_CHECKING:
    from airflow_provider_appointments.simulator.seed import SeededTable

Links = dict[str, dict[int, set[int]]]  # to object type -> {to id: {association type ids}}


class StoredLinks:
    """Association methods of `Store` (which sets these attributes in its `reset`)."""

    lock: threading.RLock
    links: dict[tuple[str, int], Links]
    tables: dict[str, SeededTable]
    _reverse_index: dict[tuple[str, str], Any]

    def associations_of(self, kind: str, record_id: int) -> Links:
        """Every association of a record (targets may be archived); do not modify the result."""
        with self.lock:
            links = self.links.get((kind, record_id))
            return links if links is not None else self._seeded_links(kind, record_id)

    def associate(self, kind: str, record_id: int, to_kind: str, to_id: int, type_ids: set[int]) -> None:
        """Add association types between two records, in both directions."""
        with self.lock:
            forward = self._writable_links(kind, record_id)
            backward = self._writable_links(to_kind, to_id)
            forward.setdefault(to_kind, {}).setdefault(to_id, set()).update(type_ids)
            backward.setdefault(kind, {}).setdefault(record_id, set()).update(
                ASSOCIATION_TYPES[type_id].inverse_id for type_id in type_ids)

    def dissociate(self, kind: str, record_id: int, to_kind: str, to_id: int, type_ids: set[int] | None = None) -> None:
        """Remove association types (all of them when `type_ids` is None) between two records."""
        with self.lock:
            inverse = None if type_ids is None else {ASSOCIATION_TYPES[t].inverse_id for t in type_ids}
            for (a_kind, a_id), (b_kind, b_id), types in (((kind, record_id), (to_kind, to_id), type_ids),
                                                           ((to_kind, to_id), (kind, record_id), inverse)):
                targets = self._writable_links(a_kind, a_id).get(b_kind, {})
                remaining = set() if types is None else targets.get(b_id, set()) - types
                if remaining:
                    targets[b_id] = remaining
                else:
                    targets.pop(b_id, None)

    def _writable_links(self, kind: str, record_id: int) -> Links:
        """A record's links as stored overlay, created from the seeded links on first write.

        Its seeded neighbours get their own overlay first, so they keep seeing it afterwards.
        """
        key = (kind, record_id)
        links = self.links.get(key)
        if links is None:
            seeded = self._seeded_links(kind, record_id)
            for to_kind, targets in seeded.items():
                for to_id in targets:
                    neighbour = (to_kind, to_id)
                    if neighbour not in self.links:
                        self.links[neighbour] = _copy(self._seeded_links(to_kind, to_id))
            links = self.links[key] = _copy(seeded)
        return links

    def _seeded_links(self, kind: str, record_id: int) -> Links:
        table = self.tables[kind]
        row = table.row_of(record_id)
        if row is None:
            return {}
        result: Links = {}
        for to_kind, (targets, type_id) in table.links.items():
            target = int(targets[row])
            if target >= 0:
                result.setdefault(to_kind, {})[self.tables[to_kind].id_base + target + 1] = {type_id}
        for from_kind, from_table in self.tables.items():
            if kind not in from_table.links:
                continue
            inverse = ASSOCIATION_TYPES[from_table.links[kind][1]].inverse_id
            for from_row in self._rows_linking(from_kind, kind, row):
                result.setdefault(from_kind, {})[from_table.id_base + int(from_row) + 1] = {inverse}
        return result

    def _rows_linking(self, from_kind: str, to_kind: str, to_row: int) -> np.ndarray:
        """Seeded rows of `from_kind` linked to row `to_row` of `to_kind` (index built once)."""
        index = self._reverse_index.get((from_kind, to_kind))
        if index is None:
            targets = self.tables[from_kind].links[to_kind][0]
            order = np.argsort(targets, kind="stable")
            index = self._reverse_index[(from_kind, to_kind)] = (order, targets[order])
        order, sorted_targets = index
        return order[np.searchsorted(sorted_targets, to_row, "left"):np.searchsorted(sorted_targets, to_row, "right")]


def _copy(links: Links) -> Links:
    return {kind: {target: set(types) for target, types in targets.items()} for kind, targets in links.items()}
