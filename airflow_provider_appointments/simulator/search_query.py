"""Parsing a CRM search body: HubSpot's filter groups, free-text query, one sort rule and paging,
checked and compiled to `Condition`s that `search.run` executes.

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
- ``limit`` 1..200 (default 10); ``after`` is an offset; ``after + limit`` beyond 10,000 is a 400;
  a body over 3,000 characters is a 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import numpy as np

from airflow_provider_appointments.simulator.errors import validation_error
from airflow_provider_appointments.simulator.properties import PropertyDefinition, parse_epoch_ms
from airflow_provider_appointments.simulator.schema import ObjectSchema
from airflow_provider_appointments.simulator.store import Record

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
        raise validation_error(f"limit must be between 1 and {PAGE_MAX}; got {limit}.",
                               context={"limit": [str(limit)]})
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
    operands = _operands(definition, operator, spec)
    if operator == "CONTAINS_TOKEN":
        pattern = str(spec["value"]).lower()
        return Condition(name, lambda value: value is not None and _has_token(value, pattern))
    if operator == "NOT_CONTAINS_TOKEN":
        pattern = str(spec["value"]).lower()
        return Condition(name, lambda value: value is None or not _has_token(value, pattern))
    convert = value_converter(definition)
    compare = _COMPARE[operator]

    def test(value: str | None) -> bool:
        if value is None:
            return operator in _MATCH_MISSING
        if definition.type == "enumeration":
            return _enumeration_test(operator, set(value.split(";")), operands, compare)
        return compare(convert(value), operands)

    def numeric(array: np.ndarray) -> np.ndarray:
        return _ARRAY_COMPARE[operator](array, operands)

    vectorised = definition.type in ("number", "datetime", "date")
    # EQ reads `value` and IN reads `values` (checked above to be a list), as HubSpot does.
    exact = tuple(str(v) for v in (spec["values"] if operator == "IN" else [spec.get("value")])) \
        if operator in ("EQ", "IN") else None
    return Condition(name, test, numeric if vectorised else None, exact, operator, tuple(operands))


def _operands(definition: PropertyDefinition, operator: str, spec: dict) -> list[Any]:
    """The filter's values, each converted to the property's type (IN and NOT_IN take ``values``,
    BETWEEN ``value`` and ``highValue``, the others ``value``)."""
    name = definition.name
    if operator in ("IN", "NOT_IN"):
        raw = spec.get("values")
        if not isinstance(raw, list) or not raw:
            raise validation_error(f"Operator {operator} needs a non-empty values list.",
                                   context={"propertyName": [name]})
        return [_operand(definition, value) for value in raw]
    if spec.get("value") is None:
        raise validation_error(f"Operator {operator} needs a value.", context={"propertyName": [name]})
    operands = [_operand(definition, spec["value"])]
    if operator == "BETWEEN":
        if spec.get("highValue") is None:
            raise validation_error("Operator BETWEEN needs value and highValue.", context={"propertyName": [name]})
        operands.append(_operand(definition, spec["highValue"]))
    return operands


def _operand(definition: PropertyDefinition, value: Any) -> Any:
    try:
        return value_converter(definition)(str(value))
    except (ValueError, OverflowError):
        raise validation_error(f"{value!r} is not a valid {definition.type} value to filter {definition.name} on.",
                               context={"propertyName": [definition.name]}) from None


def value_converter(definition: PropertyDefinition) -> Callable[[str], Any]:
    """How stored values of a property compare: numbers and epoch ms as floats, strings lowercased."""
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
    """Per word of the free-text query, one condition per text property (any of them may match)."""
    if not text:
        return []
    fields = [d.name for d in schema.properties.values() if d.type == "string"]
    return [[Condition(name, _starts_a_word(word)) for name in fields] for word in _WORDS.findall(str(text).lower())]


def _starts_a_word(prefix: str) -> Callable[[str | None], bool]:
    """A test: a word of the value starts with `prefix`."""

    def test(value: str | None) -> bool:
        return value is not None and any(word.startswith(prefix) for word in _WORDS.findall(value.lower()))

    return test


def _sort(schema: ObjectSchema, sorts: Any) -> tuple[PropertyDefinition, bool] | None:
    if not sorts:
        return None
    if not isinstance(sorts, list):
        raise validation_error("sorts must be a list.")
    if len(sorts) > 1:
        raise validation_error("Only one sorting rule can be applied to any search.",
                               context={"sorts": [str(len(sorts))]})
    rule = sorts[0]
    if isinstance(rule, dict):
        direction = str(rule.get("direction", "ASCENDING")).upper()
        if direction not in ("ASCENDING", "DESCENDING"):
            raise validation_error(f"Unknown sort direction {direction!r}.", context={"direction": [direction]})
        return _definition(schema, rule.get("propertyName")), direction == "DESCENDING"
    text = str(rule)
    return _definition(schema, text.lstrip("-")), text.startswith("-")


# -- evaluating ----------------------------------------------------------------------------------
def record_matches(record: Record, request: SearchRequest) -> bool:
    """Whether one (written) record matches the filters and the query of `request`."""
    if request.groups and not any(all(c.test(record.value(c.name)) for c in group) for group in request.groups):
        return False
    return all(any(c.test(record.value(c.name)) for c in alternatives) for alternatives in request.query)
