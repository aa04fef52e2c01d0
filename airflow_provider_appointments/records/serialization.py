"""DataFrame values → the strings HubSpot expects for each property type, one column at a time.

Rules (HubSpot's): datetimes as UTC epoch milliseconds; dates as ``YYYY-MM-DD`` (midnight UTC);
booleans ``true``/``false``; numbers as decimal strings without float noise (``3.0`` → ``3``);
enumerations as an option's internal value, given as that value or (case, spaces and underscores
aside) as an option's value or label (multi-select joined with ``;``); text up to 65,536
characters. Missing values (None, NaN, NaT, pd.NA, empty strings) are left out, or sent as ``""`` to
clear the property with ``clear_missing``. A value that cannot be converted becomes a row error naming
the row, the column and the value; that row is not sent, the others are.

Dates and datetimes: only unambiguous inputs are read by default, never guessed —
ISO 8601 text (``2026-01-13``, ``2026-01-13T09:00:00Z``, ``2026-01-13 09:00:00.250+02:00``),
epoch milliseconds (integers, or digit strings of 10 or more digits), ``datetime``/``date``/
``Timestamp`` objects and datetime64 columns. Naive values are UTC. Any other text is refused,
``01/02/2026`` (day/month or month/day?) as much as ``Jan 5 2026``: month names are unambiguous
about the day but not about their language or two-digit years, and one rule is easier to trust
than a list of exceptions. To read such text, pass ``date_format`` (a strptime format, e.g.
``"%d/%m/%Y"`` or ``"%b %d %Y"``) for every date column, or ``{column: format}`` per column;
text that does not match the format is refused.

Numbers: integers (any size, from int columns, Python ints or digit strings) and decimal strings
(``0.1``, ``-2.50``, ``1e3``) keep their exact value; float columns are written with 15 significant
digits so that float noise (``0.1 + 0.2``) disappears. Booleans, ``inf`` and text such as ``nan``
are refused. Non-finite floats in text columns are refused too.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.moments import datetimes as _datetimes
from airflow_provider_appointments.records.moments import shown as _show
from airflow_provider_appointments.records.properties import PropertyDefinition, PropertySchema, fold
from airflow_provider_appointments.records.rules import map_values, resolve_timezones, resolve_value_mapping

MAX_TEXT = 65_536
_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}
_DATE_TYPES = ("date", "datetime")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_MAX_EXPONENT = 1000  # "1e999999" would expand to a megabyte of zeros


@dataclass
class SerializedFrame:
    """Per row: the property strings to send, and the problems that keep a row from being sent."""

    rows: list[dict[str, str]]
    errors: dict[int, str] = field(default_factory=dict)
    # The same values column by column (None: missing), for hashing rows at once (`records.fingerprints`).
    columns: dict[str, list[str | None]] = field(default_factory=dict)


def resolve_columns(
    columns: Sequence[str],
    schema: PropertySchema,
    column_mapping: Mapping[str, str] | None = None,
    ignore_columns: Sequence[str] = (),
) -> dict[str, str]:
    """Column → property; raises `HubSpotInputError` before anything is sent for columns that map to
    no property, or to a property nobody can write."""
    mapping = dict(column_mapping or {})
    resolved: dict[str, str] = {}
    for column in columns:
        if column in ignore_columns:
            continue
        name = mapping.get(column, column)
        definition = schema.get(name)
        if definition is None:
            close = difflib.get_close_matches(name, schema.names(), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise HubSpotInputError(
                f"column {column!r} matches no appointment property{hint} "
                "Map it with column_mapping, or list it in ignore_columns")
        if definition.read_only or definition.calculated:
            raise HubSpotInputError(f"column {column!r} maps to {name!r}, which HubSpot does not let anyone write")
        resolved[column] = name
    return resolved


def resolve_date_formats(
    date_format: str | Mapping[str, str] | None, resolved: Mapping[str, str], schema: PropertySchema,
) -> dict[str, str]:
    """Input column → strptime format; raises `HubSpotInputError` up front for a bad format or a
    mapping key that is not a date/datetime column being written (a typo would otherwise be silent)."""
    dated = [column for column, name in resolved.items() if schema[name].type in _DATE_TYPES]
    if date_format is None:
        return {}
    if isinstance(date_format, str):
        formats = dict.fromkeys(dated, date_format)
    else:
        formats = dict(date_format)
        unknown = [column for column in formats if column not in dated]
        if unknown:
            raise HubSpotInputError(f"date_format names {unknown[0]!r}, which is not a date or datetime column "
                                    f"being written (those are: {', '.join(map(repr, dated)) or 'none'})")
    for column, fmt in formats.items():
        if not isinstance(fmt, str) or "%" not in fmt:
            raise HubSpotInputError(f"date_format for {column!r} must be a strptime format such as '%d/%m/%Y', "
                                    f"got {fmt!r}")
        try:
            pd.to_datetime(pd.Series(["x"], dtype=object), format=fmt, errors="coerce")
        except ValueError as exc:
            raise HubSpotInputError(
                f"date_format {fmt!r} for {column!r} is not a valid strptime format: {exc}") from None
    return formats


def serialize_frame(
    frame: pd.DataFrame,
    schema: PropertySchema,
    *,
    column_mapping: Mapping[str, str] | None = None,
    clear_missing: bool = False,
    ignore_columns: Sequence[str] = (),
    first_row: int = 0,
    date_format: str | Mapping[str, str] | None = None,
    value_mapping: Mapping[str, Mapping[Any, Any]] | None = None,
    timezone: str | Mapping[str, str] | None = None,
    ambiguous: str = "raise",
) -> SerializedFrame:
    """Serialize every row of `frame` into a HubSpot ``properties`` dict.

    :param first_row: the input row number of the frame's first row, used in error messages.
    :param date_format: a strptime format (``"%d/%m/%Y"``) for the text of every date and datetime
        column, or ``{input column: format}``; without it only unambiguous text (ISO 8601, epoch
        milliseconds) is read.
    :param value_mapping: ``{input column: {value: replacement}}``, applied before the type's rules.
    :param timezone: IANA time zone of naive datetimes (default UTC), or ``{input column: zone}``.
    :param ambiguous: a local time that a DST change repeats: ``"raise"`` (refuse the row),
        ``"earliest"`` or ``"latest"`` of the two moments.
    """
    resolved = resolve_columns(list(frame.columns), schema, column_mapping, ignore_columns)
    formats = resolve_date_formats(date_format, resolved, schema)
    maps = resolve_value_mapping(value_mapping, resolved, schema)
    zones = resolve_timezones(timezone, ambiguous, resolved, schema)
    count = len(frame)
    names: list[str] = []
    columns: list[list[str | None]] = []
    errors: dict[int, list[str]] = {}
    for column, name in resolved.items():
        values, problems = serialize_column(frame[column], schema[name], date_format=formats.get(column),
                                            value_map=maps.get(column), timezone=zones.get(column),
                                            ambiguous=ambiguous)
        if clear_missing:
            values = ["" if value is None else value for value in values]
        names.append(name)
        columns.append(values)
        for position, problem in problems.items():
            errors.setdefault(position, []).append(f"row {first_row + position}, column {column!r}: {problem}")
    if columns:
        rows = [{name: value for name, value in zip(names, values) if value is not None} for values in zip(*columns)]
    else:
        rows = [{} for _ in range(count)]
    return SerializedFrame(rows, {position: "; ".join(messages) for position, messages in errors.items()},
                           dict(zip(names, columns)))


# What exports write for "no value" (pandas' read_csv takes these as missing). Text read as text keeps
# them: in a text property "NA" may be a name or a code. In a number, date, datetime or boolean
# property, and in an enumeration none of whose options is called so, they can only mean missing.
PLACEHOLDERS = frozenset({"na", "n/a", "#n/a", "#na", "null", "none", "nan", "-nan", "nat", "<na>"})
_TYPED = frozenset({"number", "date", "datetime", "bool", "enumeration"})


def _missing(series: pd.Series, definition: PropertyDefinition | None = None) -> np.ndarray:
    missing = series.isna().to_numpy().copy()
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        text = series.astype("string").str.strip()
        missing |= text.eq("").fillna(True).to_numpy(dtype=bool)
        if definition is not None and definition.type in _TYPED and not definition.multi_select:
            tokens = PLACEHOLDERS - set(definition.option_lookup())  # an option called "None" stays one
            missing |= text.str.casefold().isin(tokens).fillna(False).to_numpy(dtype=bool)
        if series.dtype == object:  # Decimal("NaN") is NaN too, though pandas does not say so
            missing |= np.fromiter((isinstance(v, Decimal) and v.is_nan() for v in series.tolist()), bool, len(series))
    return missing


def serialize_column(
    series: pd.Series, definition: PropertyDefinition, *, date_format: str | None = None,
    value_map: Mapping[Any, Any] | None = None, timezone: str | None = None, ambiguous: str = "raise",
) -> tuple[list[str | None], dict[int, str]]:
    """One column: its strings (None where missing) and the problems by row position."""
    series = series.reset_index(drop=True)  # positions, whatever the caller's index
    if value_map:
        series = map_values(series, value_map, multi_select=definition.multi_select)
    missing = _missing(series, definition)
    kind = definition.type
    if kind == "number":
        return _numbers(series, missing)
    if kind in _DATE_TYPES:
        return _datetimes(series, missing, date_only=kind == "date", date_format=date_format,
                          timezone=timezone, ambiguous=ambiguous)
    if kind == "bool":
        return _booleans(series, missing)
    if kind == "enumeration":
        return _enumerations(series, missing, definition)
    return _strings(series, missing)


def _strings(series: pd.Series, missing: np.ndarray) -> tuple[list[str | None], dict[int, str]]:
    text = series.astype("string")
    too_long = (text.str.len().fillna(0).to_numpy() > MAX_TEXT) & ~missing
    problems = {int(i): f"text of {int(text.iloc[i].__len__())} characters is over HubSpot's {MAX_TEXT}"
                for i in np.flatnonzero(too_long)}
    if pd.api.types.is_float_dtype(series.dtype) or series.dtype == object:  # inf would be sent as "inf"
        infinite = np.fromiter((isinstance(v, float) and math.isinf(v) for v in series.tolist()), bool, len(series))
        problems.update({int(i): f"{_show(series.iloc[i])} is not a finite value; text properties take text"
                         for i in np.flatnonzero(infinite)})
    values = text.astype(object).where(~missing, None).tolist()
    for position in problems:
        values[position] = None
    return values, problems


# --- numbers ---------------------------------------------------------------------------------------

def _numbers(series: pd.Series, missing: np.ndarray) -> tuple[list[str | None], dict[int, str]]:
    dtype = series.dtype
    out = np.full(len(series), None, dtype=object)
    present = np.flatnonzero(~missing)
    if pd.api.types.is_bool_dtype(dtype):  # True is not 1 for a price or a duration
        return out.tolist(), {int(i): f"{_show(series.iloc[i])} is a boolean, not a number" for i in present}
    if pd.api.types.is_integer_dtype(dtype):  # exact, uint64 included: never through float64
        out[present] = series.iloc[present].to_numpy(dtype=_numpy_dtype(dtype)).astype(str).astype(object)
        return out.tolist(), {}
    if pd.api.types.is_float_dtype(dtype):
        return _float_numbers(series.to_numpy(dtype="float64", na_value=np.nan), missing, _numpy_dtype(dtype))
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return _text_numbers(series, missing)
    problems: dict[int, str] = {}
    values = series.tolist()
    for position in present:  # object columns: mixed Python values, the rare slow path
        text, problem = _number_text(values[position])
        out[position] = text
        if problem:
            problems[int(position)] = problem
    return out.tolist(), problems


def _numpy_dtype(dtype: Any) -> np.dtype:
    """A column's NumPy dtype: a nullable dtype's own (Int64 → int64, Float32 → float32), else the dtype."""
    return np.dtype(getattr(dtype, "numpy_dtype", dtype))


def _float_numbers(numbers: np.ndarray, missing: np.ndarray,
                   dtype: np.dtype) -> tuple[list[str | None], dict[int, str]]:
    out = np.full(len(numbers), None, dtype=object)
    infinite = np.isinf(numbers) & ~missing
    problems = {int(i): f"{_show(float(numbers[i]))} is not a finite number" for i in np.flatnonzero(infinite)}
    good = ~missing & ~infinite
    if dtype.itemsize < 8:  # float32 0.1 is 0.100000001…: its own shortest repr is what was meant
        for position in np.flatnonzero(good):
            out[position] = _float_text(float(np.format_float_positional(dtype.type(numbers[position]))))
        return out.tolist(), problems
    integral = good & (np.floor(numbers) == numbers) & (np.abs(numbers) < 2**53)
    out[integral] = numbers[integral].astype(np.int64).astype(str).astype(object)
    for position in np.flatnonzero(good & ~integral):
        out[position] = _decimal_text(float(numbers[position]))
    return out.tolist(), problems


def _text_numbers(series: pd.Series, missing: np.ndarray) -> tuple[list[str | None], dict[int, str]]:
    """Decimal text (CSV input): plain integers vectorised, the rest once per distinct value."""
    text = series.astype("string").str.strip()
    out = np.full(len(series), None, dtype=object)
    plain = text.str.fullmatch(r"-?\d{1,18}").fillna(False).to_numpy(dtype=bool) & ~missing
    out[plain] = pd.to_numeric(text[plain]).to_numpy(dtype=np.int64).astype(str).astype(object)
    rest = np.flatnonzero(~plain & ~missing)
    codes, uniques = pd.factorize(text.iloc[rest].to_numpy(dtype=object))
    converted = [_number_text(value) for value in uniques]
    problems: dict[int, str] = {}
    for position, code in zip(rest, codes):
        number, problem = converted[code]
        out[position] = number
        if problem:
            problems[int(position)] = problem
    return out.tolist(), problems


def _number_text(value: object) -> tuple[str | None, str | None]:
    """One value → (decimal text, None) or (None, problem)."""
    shown = _show(value)
    if isinstance(value, (bool, np.bool_)):
        return None, f"{shown} is a boolean, not a number"
    if isinstance(value, (int, np.integer)):
        return str(int(value)), None  # Python ints have every digit; float64 would not
    if isinstance(value, (float, np.floating)):
        return (None, f"{shown} is not a finite number") if math.isinf(value) else (_float_text(float(value)), None)
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value.strip()):
            return None, f"{shown} is not a number"
        value = Decimal(value.strip())
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None, f"{shown} is not a finite number"
        if abs(value.adjusted()) > _MAX_EXPONENT:
            return None, f"{shown} is out of range for a number"
        text = format(value, "f")
        text = text.rstrip("0").rstrip(".") if "." in text else text
        return ("0" if text == "-0" else text), None
    return None, f"{shown} is not a number"


def _float_text(number: float) -> str:
    if number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    return _decimal_text(number)


def _decimal_text(number: float) -> str:
    """Shortest faithful decimal: 0.1 + 0.2 → '0.3', 1e20 → '100000000000000000000'."""
    text = format(Decimal(f"{number:.15g}"), "f")
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text == "-0" else text


# --- booleans and enumerations ------------------------------------------------------------------------

def _booleans(series: pd.Series, missing: np.ndarray) -> tuple[list[str | None], dict[int, str]]:
    text = series.astype("string").str.strip().str.lower()
    truthy = text.isin(_TRUE).fillna(False).to_numpy(dtype=bool)
    falsy = text.isin(_FALSE).fillna(False).to_numpy(dtype=bool)
    bad = ~missing & ~truthy & ~falsy
    problems = {int(i): f"{_show(series.iloc[i])} is not a boolean (true/false)" for i in np.flatnonzero(bad)}
    values = np.where(truthy, "true", "false")  # read only where the value is one or the other
    return [None if missing[i] or bad[i] else str(values[i]) for i in range(len(values))], problems


def _enumerations(series: pd.Series, missing: np.ndarray,
                  definition: PropertyDefinition) -> tuple[list[str | None], dict[int, str]]:
    """Each value as an option's internal value: the value itself, or (folded, see `properties.fold`)
    an option's value or label, ``"no show"`` → ``NO_SHOW``."""
    lookup = definition.option_lookup()
    allowed = set(definition.options)

    def option(text: str) -> str | None:
        return text if text in allowed else lookup.get(fold(text))

    def problem(text: str) -> str:
        shown = ", ".join(definition.options[:8]) + (", …" if len(definition.options) > 8 else "")
        if fold(text) in lookup:  # folded, it names two options
            return f"{_show(text)} matches more than one option of {definition.name} by label; use the value"
        return f"{_show(text)} is not an option of {definition.name} ({shown})"

    values: list[str | None] = []
    problems: dict[int, str] = {}
    if definition.multi_select:
        for position, value in enumerate(series.tolist()):
            listed = isinstance(value, (list, tuple, set, np.ndarray))  # Parquet list columns arrive as arrays
            if missing[position] if not listed else False:
                values.append(None)
                continue
            parts = [str(part).strip() for part in value if not _missing_part(part)] if listed \
                else [part.strip() for part in str(value).split(";")]
            chosen = [option(part) for part in parts]
            unknown = [part for part, found in zip(parts, chosen) if found is None]
            if unknown:
                problems[position] = problem(unknown[0])
            values.append(None if unknown else ";".join(str(found) for found in chosen))
        return values, problems
    text = series.astype("string").str.strip()
    found = {value: option(value) for value in text.dropna().unique().tolist()}
    picked = text.astype(object).map(found).where(~missing, None)
    bad = ~missing & picked.isna().to_numpy(dtype=bool)
    problems = {int(i): problem(str(text.iloc[i])) for i in np.flatnonzero(bad)}
    return picked.astype(object).where(picked.notna(), None).tolist(), problems


def _missing_part(part: object) -> bool:
    """None/NaN inside a multi-select list: nothing selected there, not an option called 'nan'."""
    return part is None or part is pd.NA or (isinstance(part, float) and math.isnan(part))
