"""CRM search: HubSpot's filter groups, free-text query, one sort rule and offset paging.

Each filter compiles to a `Condition`: a test on a stored property string, plus (for timestamps,
numbers with always-present values and ids) the same test on a numpy array. Seeded records are
evaluated column-wise (categorical columns by testing each distinct value once), written records
one by one, so both follow exactly the same rules.

Rules (HubSpot's where documented, otherwise marked as model choices):

- groups are OR-ed, filters in a group AND-ed; at most 5 groups, 6 filters per group, 18 in all;
  a top-level ``filters`` list is one more group;
- numbers compare numerically, datetimes and dates as epoch milliseconds (ISO accepted too);
  strings compare case-insensitively, enumerations and booleans exactly; a multi-select value
  matches ``EQ``/``IN`` when one of its ``;`` parts does;
- a record without the property matches only ``NEQ``, ``NOT_IN``, ``NOT_HAS_PROPERTY`` and
  ``NOT_CONTAINS_TOKEN`` (model choice);
- ``CONTAINS_TOKEN`` matches a word of the value (``*`` wildcards allowed); ``query`` matches
  records where every word of it starts a word of one of the type's text properties;
- default order is by id (creation order); with a sort, ties are broken by id and records without
  the property come last in both directions (model choice);
- ``limit`` 1..200 (default 10); ``after`` is an offset; ``after + limit`` beyond 10,000 is a 400;
  archived records are never found; a body over 3,000 characters is a 400.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import numpy as np

from airflow_provider_appointments.simulator.errors import validation_error
from airflow_provider_appointments.simulator.properties import PropertyDefinition, iso_ms, parse_epoch_ms
from airflow_provider_appointments.simulator.schema import ObjectSchema
from airflow_provider_appointments.simulator.seed import SeededTable
from airflow_provider_appointments.simulator.store import Record, Store

MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18
PAGE_MAX, DEFAULT_PAGE, RESULT_CAP = 200, 10, 10_000
MAX_BODY_CHARS = 3_000
OPERATORS = ("EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY",
             "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN")
_MATCH_MISSING = ("NEQ", "NOT_IN", "NOT_HAS_PROPERTY", "NOT_CONTAINS_TOKEN")
_WORDS = re.compile(r"[\w@.+'-]+")


@dataclass(frozen=True)
class Condition:
    """One compiled filter.

    :param name: the property tested.
    :param test: the filter on a stored value (None when the record has none).
    :param numeric: the same filter on an array of values every record has (epoch ms, ids); None
        when the filter has to look at the strings.
    :param exact: for ``EQ``/``IN``, the values that can match (lets derived unique keys be looked up).
    :param operator: the filter's operator.
    :param operands: its converted values (numbers for numeric properties).
    """

    name: str
    test: Callable[[str | None], bool]
    numeric: Callable[[np.ndarray], np.ndarray] | None = None
    exact: tuple[str, ...] | None = None
    operator: str = ""
    operands: tuple[Any, ...] = ()


@dataclass(frozen=True)
class SearchRequest:
    """A parsed search body.

    :param groups: OR of ANDs of conditions.
    :param query: the free-text query: AND over words of OR over text properties.
    :param sort: (property definition, descending), or None for creation order.
    :param properties: properties to return besides the defaults.
    :param limit: page size.
    :param after: offset of the page.
    """

    groups: list[list[Condition]]
    query: list[list[Condition]]
    sort: tuple[PropertyDefinition, bool] | None
    properties: list[str] | None
    limit: int
    after: int


def parse_request(schema: ObjectSchema, body: Any, raw_length: int) -> SearchRequest:
    """Check and compile a search body, or raise HubSpot's 400."""
    if raw_length > MAX_BODY_CHARS:
        raise validation_error(f"Search request bodies are limited to {MAX_BODY_CHARS} characters; this one has "
                               f"{raw_length}. Ask for fewer properties or filters.")
    if not isinstance(body, dict):
        raise validation_error("The search request body must be a JSON object.")
    groups = body.get("filterGroups")
    groups = [] if groups is None else groups
    if not isinstance(groups, list) or not all(isinstance(g, dict) and isinstance(g.get("filters", []), list)
                                               for g in groups):
        raise validation_error("filterGroups must be a list of {filters: [...]}.")
    filters = [list(group.get("filters") or []) for group in groups]
    top_level = body.get("filters")
    if top_level is not None and not isinstance(top_level, list):
        raise validation_error("filters must be a list of filters.")
    if top_level:
        filters.append(list(top_level))
    total = sum(len(group) for group in filters)
    if len(filters) > MAX_GROUPS or any(len(g) > MAX_FILTERS_PER_GROUP for g in filters) or total > MAX_FILTERS:
        raise validation_error(
            f"Too many filters: at most {MAX_GROUPS} filterGroups of up to {MAX_FILTERS_PER_GROUP} filters each, "
            f"{MAX_FILTERS} filters in total (got {len(filters)} groups, {total} filters).",
            context={"filterGroups": [str(len(filters))], "filters": [str(total)]})
    limit = _integer(DEFAULT_PAGE if body.get("limit") is None else body["limit"], "limit")
    after = _integer(0 if body.get("after") in (None, "") else body["after"], "after")
    if not 1 <= limit <= PAGE_MAX:
        raise validation_error(f"limit must be between 1 and {PAGE_MAX}; got {limit}.", context={"limit": [str(limit)]})
    if after < 0 or after + limit > RESULT_CAP:
        raise validation_error(
            f"Search can page through at most {RESULT_CAP} results per query; after={after} with limit={limit} goes "
            "beyond it. Narrow the filters (e.g. on hs_lastmodifieddate or hs_object_id) and start again.",
            context={"after": [str(after)], "limit": [str(limit)]})
    properties = body.get("properties")
    if isinstance(properties, str):
        properties = [name for name in properties.split(",") if name]
    if properties is not None and not (isinstance(properties, list) and all(isinstance(p, str) for p in properties)):
        raise validation_error("properties must be a list of property names.")
    return SearchRequest(
        groups=[[_condition(schema, spec) for spec in group] for group in filters if group],
        query=_query(schema, body.get("query")),
        sort=_sort(schema, body.get("sorts")),
        properties=properties if isinstance(properties, list) else None,
        limit=limit,
        after=after,
    )


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
        definition, descending = request.sort  # type: ignore[misc]
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
    return [i for i, record in enumerate(records) if _record_matches(record, request)]


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
    shadowed = store.shadowed[kind]
    wanted = request.after + request.limit
    order, sorted_keys = _sorted_index(store, table, key_name, numbers, descending)
    if len(request.groups) <= 1 and not request.query:
        conditions = request.groups[0] if request.groups else []
        ranged = [c for c in conditions if _bounds_key(c, key_name)]
        residual = [c for c in conditions if not _bounds_key(c, key_name)]
        low, high = _key_bounds(ranged)
        if low > high:
            start = stop = 0
        else:
            low, high = (-high, -low) if descending else (low, high)
            start = int(np.searchsorted(sorted_keys, np.int64(low), "left"))
            stop = int(np.searchsorted(sorted_keys, np.int64(high), "right"))
        shadowed_rows = _shadowed_rows(store, kind)
        if not residual:
            # Count the shadowed rows inside the slice from their keys; read just enough rows for the page.
            inside = 0
            if len(shadowed_rows) and stop > start:
                keys = -numbers[shadowed_rows] if descending else numbers[shadowed_rows]
                inside = int(np.count_nonzero((keys >= sorted_keys[start]) & (keys <= sorted_keys[stop - 1])))
            total = stop - start - inside
            head = order[start:min(stop, start + wanted + inside)]
            if inside:
                head = head[~shadowed[head]]
            head = head[:wanted]
        elif 4 * (stop - start) > table.size and all(_cost(table, schema, c) == 0 for c in residual):
            # A wide slice: column-wise masks over whole columns are cheaper than gathering the slice's rows.
            mask = ~shadowed
            for condition in residual:
                mask &= _condition_mask(table, schema, condition, mask)
            rows = order[start:stop]
            rows = rows[mask[rows]]
            total, head = len(rows), rows[:wanted]
        else:
            rows = order[start:stop]
            if len(shadowed_rows):
                rows = rows[~shadowed[rows]]
            for condition in sorted(residual, key=lambda c: _cost(table, schema, c)):
                if not len(rows):
                    break
                rows = rows[_rows_mask(table, schema, condition, rows)]
            total, head = len(rows), rows[:wanted]
    else:
        matched = ~shadowed & _seeded_matches(table, schema, request)
        rows = order[matched[order]]
        total, head = len(rows), rows[:wanted]

    records = [overlay.records[i] for i in written]
    seeded_ids = head.astype(np.int64) + table.id_base + 1
    keys = np.concatenate([numbers[head].astype(np.float64), _written_keys(schema, key_name, records)])
    missing = np.isnan(keys)
    keys[missing] = 0.0
    ids = np.concatenate([seeded_ids, np.array([r.id for r in records], dtype=np.int64)])
    merged = np.lexsort((ids, -keys if descending else keys, missing))[request.after:wanted]
    page = []
    for position in merged.tolist():
        if position < len(head):
            page.append(store._view(kind, int(head[position])))
        else:
            page.append(records[position - len(head)])
    return total + len(records), page


def _written_keys(schema: ObjectSchema, key_name: str, records: list[Record]) -> np.ndarray:
    """Sort keys of written records (NaN: no value)."""
    if key_name == "hs_object_id":
        return np.array([r.id for r in records], dtype=np.float64)
    if key_name == schema.created_property:
        return np.array([r.created_ms for r in records], dtype=np.float64)
    if key_name == schema.modified_property:
        return np.array([r.updated_ms for r in records], dtype=np.float64)
    convert = _converter(schema.properties[key_name])
    values = [r.value(key_name) for r in records]
    return np.array([math.nan if v is None else convert(v) for v in values], dtype=np.float64)


def _shadowed_rows(store: Store, kind: str) -> np.ndarray:
    cache_key = ("shadowed", kind)
    cached = store.search_cache.get(cache_key)
    if cached is None or cached[0] != store.version:
        cached = store.search_cache[cache_key] = (store.version, np.flatnonzero(store.shadowed[kind]))
    return cached[1]


# -- compiling -----------------------------------------------------------------------------------
def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise validation_error(f"{name} must be an integer; got {value!r}.", context={name: [str(value)]})
    try:
        return int(str(value).strip())
    except ValueError:
        raise validation_error(f"{name} must be an integer; got {value!r}.", context={name: [str(value)]}) from None


def _definition(schema: ObjectSchema, name: Any) -> PropertyDefinition:
    definition = schema.properties.get(str(name))
    if definition is None:
        raise validation_error(f'Property "{name}" does not exist on {schema.name}, so it cannot be searched.',
                               context={"propertyName": [str(name)]})
    return definition


def _condition(schema: ObjectSchema, spec: Any) -> Condition:
    if not isinstance(spec, dict):
        raise validation_error("Each filter must be an object with propertyName and operator.")
    definition = _definition(schema, spec.get("propertyName"))
    operator = str(spec.get("operator", ""))
    if operator not in OPERATORS:
        raise validation_error(f"Unknown filter operator {operator!r}; use one of {', '.join(OPERATORS)}.",
                               context={"operator": [operator]})
    name = definition.name
    if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        wanted = operator == "HAS_PROPERTY"
        return Condition(name, lambda value: (value is not None) == wanted,
                         lambda array: np.full(len(array), wanted))
    if operator in ("IN", "NOT_IN"):
        raw = spec.get("values")
        if not isinstance(raw, list) or not raw:
            raise validation_error(f"Operator {operator} needs a non-empty values list.", context={"propertyName": [name]})
        operands = [_operand(definition, value) for value in raw]
    else:
        if spec.get("value") is None:
            raise validation_error(f"Operator {operator} needs a value.", context={"propertyName": [name]})
        operands = [_operand(definition, spec["value"])]
        if operator == "BETWEEN":
            if spec.get("highValue") is None:
                raise validation_error("Operator BETWEEN needs value and highValue.", context={"propertyName": [name]})
            operands.append(_operand(definition, spec["highValue"]))
    if operator == "CONTAINS_TOKEN":
        pattern = str(spec["value"]).lower()
        return Condition(name, lambda value: value is not None and _has_token(value, pattern))
    if operator == "NOT_CONTAINS_TOKEN":
        pattern = str(spec["value"]).lower()
        return Condition(name, lambda value: value is None or not _has_token(value, pattern))
    convert = _converter(definition)
    compare = _COMPARE[operator]

    def test(value: str | None) -> bool:
        if value is None:
            return operator in _MATCH_MISSING
        if definition.type == "enumeration":
            return _enumeration_test(operator, set(value.split(";")), operands, compare)
        return compare(convert(value), operands)

    numeric = None
    if definition.type in ("number", "datetime", "date"):
        numeric = lambda array: _ARRAY_COMPARE[operator](array, operands)  # noqa: E731
    # EQ reads `value` and IN reads `values` (checked above to be a list), as HubSpot does.
    exact = tuple(str(v) for v in (spec["values"] if operator == "IN" else [spec.get("value")])) \
        if operator in ("EQ", "IN") else None
    return Condition(name, test, numeric, exact, operator, tuple(operands))


def _operand(definition: PropertyDefinition, value: Any) -> Any:
    try:
        return _converter(definition)(str(value))
    except (ValueError, OverflowError):
        raise validation_error(f"{value!r} is not a valid {definition.type} value to filter {definition.name} on.",
                               context={"propertyName": [definition.name]}) from None


def _converter(definition: PropertyDefinition) -> Callable[[str], Any]:
    if definition.type == "number":
        return float
    if definition.type in ("datetime", "date"):
        return lambda text: float(parse_epoch_ms(text))
    if definition.type == "string":
        return str.lower
    return str


def _enumeration_test(operator: str, parts: set[str], operands: list[Any], compare: Callable) -> bool:
    if operator in ("EQ", "IN"):
        return not parts.isdisjoint(operands)
    if operator in ("NEQ", "NOT_IN"):
        return parts.isdisjoint(operands)
    return compare(";".join(sorted(parts)), operands)


def _has_token(value: str, pattern: str) -> bool:
    words = _WORDS.findall(value.lower())
    if "*" in pattern:
        return any(fnmatchcase(word, pattern) for word in words) or fnmatchcase(value.lower(), pattern)
    return pattern in words or value.lower() == pattern


_COMPARE: dict[str, Callable[[Any, list[Any]], bool]] = {
    "EQ": lambda v, o: v == o[0], "NEQ": lambda v, o: v != o[0],
    "LT": lambda v, o: v < o[0], "LTE": lambda v, o: v <= o[0],
    "GT": lambda v, o: v > o[0], "GTE": lambda v, o: v >= o[0],
    "BETWEEN": lambda v, o: o[0] <= v <= o[1],
    "IN": lambda v, o: v in o, "NOT_IN": lambda v, o: v not in o,
}
_ARRAY_COMPARE: dict[str, Callable[[np.ndarray, list[Any]], np.ndarray]] = {
    "EQ": lambda a, o: a == o[0], "NEQ": lambda a, o: a != o[0],
    "LT": lambda a, o: a < o[0], "LTE": lambda a, o: a <= o[0],
    "GT": lambda a, o: a > o[0], "GTE": lambda a, o: a >= o[0],
    "BETWEEN": lambda a, o: (a >= o[0]) & (a <= o[1]),
    "IN": lambda a, o: np.isin(a, o), "NOT_IN": lambda a, o: ~np.isin(a, o),
}


def _query(schema: ObjectSchema, text: Any) -> list[list[Condition]]:
    if not text:
        return []
    fields = [d.name for d in schema.properties.values() if d.type == "string"]
    return [[Condition(name, lambda value, word=word: value is not None and any(
        token.startswith(word) for token in _WORDS.findall(value.lower()))) for name in fields]
            for word in _WORDS.findall(str(text).lower())]


def _sort(schema: ObjectSchema, sorts: Any) -> tuple[PropertyDefinition, bool] | None:
    if not sorts:
        return None
    if not isinstance(sorts, list):
        raise validation_error("sorts must be a list.")
    if len(sorts) > 1:
        raise validation_error("Only one sorting rule can be applied to any search.", context={"sorts": [str(len(sorts))]})
    rule = sorts[0]
    if isinstance(rule, dict):
        direction = str(rule.get("direction", "ASCENDING")).upper()
        if direction not in ("ASCENDING", "DESCENDING"):
            raise validation_error(f"Unknown sort direction {direction!r}.", context={"direction": [direction]})
        return _definition(schema, rule.get("propertyName")), direction == "DESCENDING"
    text = str(rule)
    return _definition(schema, text.lstrip("-")), text.startswith("-")


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


def _condition_mask(table: SeededTable, schema: ObjectSchema, condition: Condition, candidates: np.ndarray) -> np.ndarray:
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


def _all_of(table: SeededTable, schema: ObjectSchema, conditions: list[Condition], candidates: np.ndarray) -> np.ndarray:
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


def _record_matches(record: Record, request: SearchRequest) -> bool:
    if request.groups and not any(all(c.test(record.value(c.name)) for c in group) for group in request.groups):
        return False
    return all(any(c.test(record.value(c.name)) for c in alternatives) for alternatives in request.query)


def _sort_keys(table: SeededTable, schema: ObjectSchema, definition: PropertyDefinition, rows: np.ndarray,
               written: list[Record]) -> tuple[np.ndarray, np.ndarray]:
    """Sort keys (numbers, or ranks of strings) and a missing-value flag: seeded rows, then written records.

    Categorical columns are keyed once per distinct value, so sorting a million seeded records
    never builds a million strings.
    """
    name = definition.name
    numeric = definition.type in ("number", "datetime", "date")
    convert = _converter(definition)
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
