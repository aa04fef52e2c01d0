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
    """

    name: str
    test: Callable[[str | None], bool]
    numeric: Callable[[np.ndarray], np.ndarray] | None = None
    exact: tuple[str, ...] | None = None


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
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or not all(isinstance(g, dict) and isinstance(g.get("filters", []), list)
                                               for g in groups):
        raise validation_error("filterGroups must be a list of {filters: [...]}.")
    filters = [list(group.get("filters") or []) for group in groups]
    if body.get("filters"):
        filters.append(list(body["filters"]))
    total = sum(len(group) for group in filters)
    if len(filters) > MAX_GROUPS or any(len(g) > MAX_FILTERS_PER_GROUP for g in filters) or total > MAX_FILTERS:
        raise validation_error(
            f"Too many filters: at most {MAX_GROUPS} filterGroups of up to {MAX_FILTERS_PER_GROUP} filters each, "
            f"{MAX_FILTERS} filters in total (got {len(filters)} groups, {total} filters).",
            context={"filterGroups": [str(len(filters))], "filters": [str(total)]})
    limit, after = _integer(body.get("limit", DEFAULT_PAGE), "limit"), _integer(body.get("after", 0) or 0, "after")
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
    return SearchRequest(
        groups=[[_condition(schema, spec) for spec in group] for group in filters if group],
        query=_query(schema, body.get("query")),
        sort=_sort(schema, body.get("sorts")),
        properties=properties if isinstance(properties, list) else None,
        limit=limit,
        after=after,
    )


def run(store: Store, schema: ObjectSchema, request: SearchRequest) -> tuple[int, list[Record]]:
    """(total matches, the records of the requested page)."""
    kind = schema.name
    with store.lock:
        table = store.tables[kind]
        seeded = ~store.shadowed[kind] & _seeded_matches(table, schema, request)
        seeded_rows = np.flatnonzero(seeded)
        written = [r for r in store.records[kind].values() if not r.archived and _record_matches(r, request)]
        ids = np.concatenate([seeded_rows.astype(np.int64) + table.id_base + 1,
                              np.array([r.id for r in written], dtype=np.int64)])
        if request.sort is None:
            order = np.argsort(ids, kind="stable")
        else:
            definition, descending = request.sort
            keys, missing = _sort_keys(table, schema, definition, seeded_rows, written)
            order = np.lexsort((ids, -keys if descending else keys, missing))
        page = ids[order[request.after:request.after + request.limit]]
        records = [store.get(kind, int(record_id)) for record_id in page]
        return len(ids), [r for r in records if r is not None]


# -- compiling -----------------------------------------------------------------------------------
def _integer(value: Any, name: str) -> int:
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
    exact = tuple(str(v) for v in (spec.get("values") or [spec.get("value")])) if operator in ("EQ", "IN") else None
    return Condition(name, test, numeric, exact)


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
