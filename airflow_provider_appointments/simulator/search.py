"""CRM search execution: the records a parsed `SearchRequest` finds, in order, one page at a time.

Each filter is compiled (in `search_query`) to a `Condition`: a test on a stored property string,
plus (for timestamps, numbers with always-present values and ids) the same test on a numpy array.
Seeded records are evaluated column-wise (categorical columns by testing each distinct value once),
written records one by one, so both follow exactly the same rules.

Rules (model choices where HubSpot's documentation is silent): default order is by id (creation
order); with a sort, ties are broken by id and records without the property come last in both
directions; archived records are never found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from airflow_provider_appointments.simulator.properties import PropertyDefinition, iso_ms
from airflow_provider_appointments.simulator.schema import ObjectSchema
from airflow_provider_appointments.simulator.search_query import (
    Condition,
    SearchRequest,
    record_matches,
    value_converter,
)
from airflow_provider_appointments.simulator.seed import SeededTable
from airflow_provider_appointments.simulator.store import Record, Store


def run(store: Store, schema: ObjectSchema, request: SearchRequest) -> tuple[int, list[Record]]:
    """(total matches, the records of the requested page), as the search index sees them now."""
    kind = schema.name
    with store.lock:
        table = store.tables[kind]
        overlay = _overlay(store, kind)
        written = _overlay_matches(overlay, schema, request)
        key_name = request.sort[0].name if request.sort is not None else "hs_object_id"
        descending = request.sort is not None and request.sort[1]
        numbers = _numbers(table, schema, key_name)
        if numbers is not None:
            return _run_indexed(store, schema, request, numbers, key_name, descending, overlay, written)
        # Sorting on a property seeded records keep as strings or codes: mask everything, then sort.
        seeded = ~store.shadowed[kind] & _seeded_matches(table, schema, request)
        seeded_rows = np.flatnonzero(seeded)
        records = [overlay.records[i] for i in written]
        ids = np.concatenate([seeded_rows.astype(np.int64) + table.id_base + 1,
                              np.array([r.id for r in records], dtype=np.int64)])
        assert request.sort is not None  # without a sort the key is the id, which every seeded record has
        definition, descending = request.sort
        keys, missing = _sort_keys(table, schema, definition, seeded_rows, records)
        order = np.lexsort((ids, -keys if descending else keys, missing))
        page = ids[order[request.after:request.after + request.limit]]
        by_id = {r.id: r for r in records}
        return len(ids), [by_id[i] if i in by_id else store._view(kind, i - table.id_base - 1)
                          for i in (int(x) for x in page)]


# -- indexes -------------------------------------------------------------------------------------
@dataclass
class _Overlay:
    """The written records search sees now (lagging writes replaced by their earlier state), not
    archived, in id order, with their ids and timestamps as arrays."""

    records: list[Record]
    ids: np.ndarray
    created: np.ndarray
    updated: np.ndarray
    version: int
    valid_until: int | None


def _overlay(store: Store, kind: str) -> _Overlay:
    now = store.now_ms()
    cached = store.search_cache.get(("overlay", kind))
    if cached is not None and cached.version == store.version and (cached.valid_until is None
                                                                    or now < cached.valid_until):
        return cached
    overrides, valid_until = store.search_overrides(kind, now)
    visible = [r for i, r in store.records[kind].items() if i not in overrides and not r.archived]
    visible += [r for r in overrides.values() if r is not None and not r.archived]
    visible.sort(key=lambda r: r.id)
    overlay = _Overlay(visible, np.array([r.id for r in visible], dtype=np.int64),
                       np.array([r.created_ms for r in visible], dtype=np.int64),
                       np.array([r.updated_ms for r in visible], dtype=np.int64), store.version, valid_until)
    store.search_cache[("overlay", kind)] = overlay
    return overlay


def _overlay_matches(overlay: _Overlay, schema: ObjectSchema, request: SearchRequest) -> list[int]:
    """Positions in the overlay of the records matching the request."""
    records = overlay.records
    if len(request.groups) == 1 and not request.query:
        arrays = {"hs_object_id": overlay.ids, schema.created_property: overlay.created,
                  schema.modified_property: overlay.updated}
        mask = np.ones(len(records), dtype=bool)
        rest = []
        for condition in request.groups[0]:
            if condition.numeric is not None and condition.name in arrays:
                mask &= condition.numeric(arrays[condition.name])
            else:
                rest.append(condition)
        return [i for i in np.flatnonzero(mask).tolist()
                if all(c.test(records[i].value(c.name)) for c in rest)]
    return [i for i, record in enumerate(records) if record_matches(record, request)]


def _sorted_index(store: Store, table: SeededTable, key_name: str, numbers: np.ndarray,
                  descending: bool) -> tuple[np.ndarray, np.ndarray]:
    """(rows in sort order, ties by id; their keys in ascending order: the key, or minus the key when
    descending), built once per seeded table and kept until the store is reset."""
    cache_key = ("order", table.object_type, key_name, descending)
    index = store.search_cache.get(cache_key)
    if index is None:
        if key_name == "hs_object_id":  # rows are in id order already
            order = np.arange(table.size, dtype=np.int64)
            index = (order[::-1], -numbers[::-1]) if descending else (order, numbers)
        else:
            keys = -numbers if descending else numbers
            order = np.argsort(keys, kind="stable")
            index = (order, keys[order])
        store.search_cache[cache_key] = index
    return index


_INT_LIMIT = 2 ** 62


def _key_bounds(conditions: list[Condition]) -> tuple[int, int]:
    """The integer key range [low, high] that range conditions on the sort key allow (low > high: none)."""
    low, high = -_INT_LIMIT, _INT_LIMIT
    for condition in conditions:
        operator, operands = condition.operator, condition.operands
        if any(math.isnan(v) for v in operands):
            return 1, 0
        if operator == "GT":
            low = max(low, _above(operands[0], strict=True))
        elif operator == "GTE":
            low = max(low, _above(operands[0], strict=False))
        elif operator == "LT":
            high = min(high, _below(operands[0], strict=True))
        elif operator == "LTE":
            high = min(high, _below(operands[0], strict=False))
        elif operator == "EQ":
            if not math.isfinite(operands[0]) or operands[0] != math.floor(operands[0]):
                return 1, 0
            low, high = max(low, _above(operands[0], False)), min(high, _below(operands[0], False))
        elif operator == "BETWEEN":
            low, high = max(low, _above(operands[0], False)), min(high, _below(operands[1], False))
    return low, high


def _above(value: float, strict: bool) -> int:
    """The lowest integer above `value` (or equal to it unless strict), clamped."""
    if math.isinf(value):
        return _INT_LIMIT + 1 if value > 0 else -_INT_LIMIT
    lowest = math.floor(value) + 1 if strict else math.ceil(value)
    return max(-_INT_LIMIT, min(_INT_LIMIT + 1, lowest))


def _below(value: float, strict: bool) -> int:
    """The highest integer below `value` (or equal to it unless strict), clamped."""
    if math.isinf(value):
        return _INT_LIMIT if value > 0 else -_INT_LIMIT - 1
    highest = math.ceil(value) - 1 if strict else math.floor(value)
    return max(-_INT_LIMIT - 1, min(_INT_LIMIT, highest))


_RANGE_OPERATORS = ("GT", "GTE", "LT", "LTE", "EQ", "BETWEEN")


def _bounds_key(condition: Condition, key_name: str) -> bool:
    return condition.name == key_name and condition.numeric is not None and condition.operator in _RANGE_OPERATORS


def _run_indexed(store: Store, schema: ObjectSchema, request: SearchRequest, numbers: np.ndarray, key_name: str,
                 descending: bool, overlay: _Overlay, written: list[int]) -> tuple[int, list[Record]]:
    """Search sorted on ids or a timestamp every seeded record has: seeded rows come in order from a
    sorted index (a contiguous slice of it when the filters bound the sort key), are filtered
    column-wise, and are merged with the matching written records."""
    kind = schema.name
    table = store.tables[kind]
    wanted = request.after + request.limit
    order, sorted_keys = _sorted_index(store, table, key_name, numbers, descending)
    if len(request.groups) <= 1 and not request.query:
        conditions = request.groups[0] if request.groups else []
        ranged = [c for c in conditions if _bounds_key(c, key_name)]
        residual = [c for c in conditions if not _bounds_key(c, key_name)]
        start, stop = _slice_of(sorted_keys, _key_bounds(ranged), descending)
        if residual:
            rows = _filter_slice(store, schema, residual, order[start:stop])
            total, head = len(rows), rows[:wanted]
        else:
            shadowed_keys = _shadowed_keys(store, kind, numbers, descending)
            total, head = _slice_head(store.shadowed[kind], order, sorted_keys, shadowed_keys, start, stop, wanted)
    else:
        matched = ~store.shadowed[kind] & _seeded_matches(table, schema, request)
        rows = order[matched[order]]
        total, head = len(rows), rows[:wanted]
    records = [overlay.records[i] for i in written]
    seeded_keys = numbers[head].astype(np.float64)
    return total + len(records), _merge_page(store, schema, request, head, seeded_keys, records, key_name, descending)


def _slice_of(sorted_keys: np.ndarray, bounds: tuple[int, int], descending: bool) -> tuple[int, int]:
    """[start, stop) of the sorted index whose keys are within the (ascending) key bounds."""
    low, high = bounds
    if low > high:
        return 0, 0
    low, high = (-high, -low) if descending else (low, high)
    return (int(np.searchsorted(sorted_keys, np.int64(low), "left")),
            int(np.searchsorted(sorted_keys, np.int64(high), "right")))


def _shadowed_keys(store: Store, kind: str, numbers: np.ndarray, descending: bool) -> np.ndarray:
    """The index keys of the seeded rows that written records shadow."""
    shadowed_rows = _shadowed_rows(store, kind)
    return -numbers[shadowed_rows] if descending else numbers[shadowed_rows]


def _slice_head(shadowed: np.ndarray, order: np.ndarray, sorted_keys: np.ndarray, shadowed_keys: np.ndarray,
                start: int, stop: int, wanted: int) -> tuple[int, np.ndarray]:
    """(rows of the slice [start, stop) not shadowed, the first `wanted` of them). The shadowed rows
    inside the slice are counted from their keys, so only enough rows for the page are read."""
    inside = 0
    if len(shadowed_keys) and stop > start:
        in_slice = (shadowed_keys >= sorted_keys[start]) & (shadowed_keys <= sorted_keys[stop - 1])
        inside = int(np.count_nonzero(in_slice))
    head = order[start:min(stop, start + wanted + inside)]
    if inside:
        head = head[~shadowed[head]]
    return stop - start - inside, head[:wanted]


def _filter_slice(store: Store, schema: ObjectSchema, conditions: list[Condition], rows: np.ndarray) -> np.ndarray:
    """The rows of a slice of the sorted index (in its order) that are not shadowed and match every condition."""
    kind = schema.name
    table, shadowed = store.tables[kind], store.shadowed[kind]
    if 4 * len(rows) > table.size and all(_cost(table, schema, c) == 0 for c in conditions):
        # A wide slice: column-wise masks over whole columns are cheaper than gathering the slice's rows.
        mask = ~shadowed
        for condition in conditions:
            mask &= _condition_mask(table, schema, condition, mask)
        return rows[mask[rows]]
    if len(_shadowed_rows(store, kind)):
        rows = rows[~shadowed[rows]]
    for condition in sorted(conditions, key=lambda c: _cost(table, schema, c)):
        if not len(rows):
            break
        rows = rows[_rows_mask(table, schema, condition, rows)]
    return rows


def _merge_page(store: Store, schema: ObjectSchema, request: SearchRequest, head: np.ndarray, seeded_keys: np.ndarray,
                records: list[Record], key_name: str, descending: bool) -> list[Record]:
    """The requested page: the first seeded rows in sort order (`head`, with their sort keys) merged
    with the matching written records."""
    table = store.tables[schema.name]
    keys = np.concatenate([seeded_keys, _written_keys(schema, key_name, records)])
    missing = np.isnan(keys)
    keys[missing] = 0.0
    ids = np.concatenate([head.astype(np.int64) + table.id_base + 1, np.array([r.id for r in records], dtype=np.int64)])
    merged = np.lexsort((ids, -keys if descending else keys, missing))[request.after:request.after + request.limit]
    page = []
    for position in merged.tolist():
        if position < len(head):
            page.append(store._view(schema.name, int(head[position])))
        else:
            page.append(records[position - len(head)])
    return page


def _written_keys(schema: ObjectSchema, key_name: str, records: list[Record]) -> np.ndarray:
    """Sort keys of written records (NaN: no value)."""
    if key_name == "hs_object_id":
        return np.array([r.id for r in records], dtype=np.float64)
    if key_name == schema.created_property:
        return np.array([r.created_ms for r in records], dtype=np.float64)
    if key_name == schema.modified_property:
        return np.array([r.updated_ms for r in records], dtype=np.float64)
    convert = value_converter(schema.properties[key_name])
    values = [r.value(key_name) for r in records]
    return np.array([math.nan if v is None else convert(v) for v in values], dtype=np.float64)


def _shadowed_rows(store: Store, kind: str) -> np.ndarray:
    cache_key = ("shadowed", kind)
    cached = store.search_cache.get(cache_key)
    if cached is None or cached[0] != store.version:
        cached = store.search_cache[cache_key] = (store.version, np.flatnonzero(store.shadowed[kind]))
    return cached[1]


# -- evaluating ----------------------------------------------------------------------------------
def _numbers(table: SeededTable, schema: ObjectSchema, name: str) -> np.ndarray | None:
    """The seeded values of `name` as an array, when every seeded record has one."""
    if name == "hs_object_id":
        return table.ids()
    if name == schema.created_property:
        return table.created_ms
    if name == schema.modified_property:
        return table.updated_ms
    column = table.columns.get(name)
    return column.epoch_ms if column is not None else None


def _condition_mask(table: SeededTable, schema: ObjectSchema, condition: Condition,
                    candidates: np.ndarray) -> np.ndarray:
    """`condition` on every seeded row; rows outside `candidates` may be left False when it has to
    look at strings."""
    numbers = _numbers(table, schema, condition.name)
    if numbers is not None and condition.numeric is not None:
        return condition.numeric(numbers)
    column = table.columns.get(condition.name)
    if column is None and numbers is None:  # no seeded record has this property
        return np.full(table.size, condition.test(None))
    if column is not None and column.codes is not None:
        by_category = np.array([condition.test(value) for value in column.categories], dtype=bool)
        return by_category[column.codes]
    result = np.zeros(table.size, dtype=bool)
    if column is not None and column.invert is not None and condition.exact is not None:
        # A derived unique key (EXT-000001): find the rows by inverting the derivation.
        for value in condition.exact:
            for spelling in {value, value.upper(), value.lower()}:
                row = column.invert(spelling)
                if row is not None and condition.test(column.value(row)):
                    result[row] = True
        return result
    rows = np.flatnonzero(candidates)
    result[rows] = [condition.test(_seeded_value(table, schema, condition.name, int(row))) for row in rows]
    return result


def _rows_mask(table: SeededTable, schema: ObjectSchema, condition: Condition, rows: np.ndarray) -> np.ndarray:
    """`condition` on some seeded rows only (the same rules as `_condition_mask`)."""
    numbers = _numbers(table, schema, condition.name)
    if numbers is not None and condition.numeric is not None:
        return condition.numeric(numbers[rows])
    column = table.columns.get(condition.name)
    if column is None and numbers is None:
        return np.full(len(rows), condition.test(None))
    if column is not None and column.codes is not None:
        by_category = np.array([condition.test(value) for value in column.categories], dtype=bool)
        return by_category[column.codes[rows]]
    if column is not None and column.invert is not None and condition.exact is not None:
        found = np.flatnonzero(_condition_mask(table, schema, condition, np.zeros(table.size, dtype=bool)))
        return np.isin(rows, found)
    return np.array([condition.test(_seeded_value(table, schema, condition.name, int(row))) for row in rows.tolist()],
                    dtype=bool)


def _seeded_value(table: SeededTable, schema: ObjectSchema, name: str, row: int) -> str | None:
    if name == "hs_object_id":
        return str(table.id_base + row + 1)
    if name in (schema.created_property, schema.modified_property):
        return iso_ms(int((table.created_ms if name == schema.created_property else table.updated_ms)[row]))
    column = table.columns.get(name)
    return column.value(row) if column is not None else None


def _all_of(table: SeededTable, schema: ObjectSchema, conditions: list[Condition],
            candidates: np.ndarray) -> np.ndarray:
    """AND of conditions; conditions that must look at strings run last, on the survivors only."""
    mask = candidates.copy()
    for condition in sorted(conditions, key=lambda c: _cost(table, schema, c)):
        mask &= _condition_mask(table, schema, condition, mask)
    return mask


def _cost(table: SeededTable, schema: ObjectSchema, condition: Condition) -> int:
    column = table.columns.get(condition.name)
    vectorised = (_numbers(table, schema, condition.name) is not None and condition.numeric is not None) or \
        (column is not None and column.codes is not None)
    return 0 if vectorised else 1


def _seeded_matches(table: SeededTable, schema: ObjectSchema, request: SearchRequest) -> np.ndarray:
    everything = np.ones(table.size, dtype=bool)
    if request.groups:
        matched = np.zeros(table.size, dtype=bool)
        for group in request.groups:
            matched |= _all_of(table, schema, group, everything & ~matched)
    else:
        matched = everything
    for alternatives in request.query:
        word = np.zeros(table.size, dtype=bool)
        for condition in alternatives:
            word |= _condition_mask(table, schema, condition, matched & ~word)
        matched &= word
    return matched



def _sort_keys(table: SeededTable, schema: ObjectSchema, definition: PropertyDefinition, rows: np.ndarray,
               written: list[Record]) -> tuple[np.ndarray, np.ndarray]:
    """Sort keys (numbers, or ranks of strings) and a missing-value flag: seeded rows, then written records.

    Categorical columns are keyed once per distinct value, so sorting a million seeded records
    never builds a million strings.
    """
    name = definition.name
    numeric = definition.type in ("number", "datetime", "date")
    convert = value_converter(definition)
    written_values = [record.value(name) for record in written]
    numbers = _numbers(table, schema, name)
    column = table.columns.get(name)
    if numbers is not None:  # ids and timestamps: numeric, and every record has one
        keys = np.concatenate([numbers[rows].astype(np.float64),
                               np.array([convert(v) if v is not None else 0.0 for v in written_values], np.float64)])
        return keys, np.array([False] * len(rows) + [v is None for v in written_values], dtype=bool)
    if column is not None and column.codes is not None:
        seeded_values, index = list(column.categories), column.codes[rows]
    else:
        seeded_values = [_seeded_value(table, schema, name, int(row)) for row in rows]
        index = np.arange(len(rows))
    values = [None if v is None else convert(v) for v in seeded_values + written_values]
    if not numeric:
        rank = {value: position for position, value in enumerate(sorted({v for v in values if v is not None}))}
        values = [None if v is None else rank[v] for v in values]
    keys = np.array([0.0 if v is None else v for v in values], dtype=np.float64)
    missing = np.array([v is None for v in values], dtype=bool)
    split = len(seeded_values)
    return (np.concatenate([keys[:split][index], keys[split:]]),
            np.concatenate([missing[:split][index], missing[split:]]))
