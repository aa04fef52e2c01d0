"""DataFrame values → the strings HubSpot expects for each property type, one column at a time.

Rules (HubSpot's): datetimes as UTC epoch milliseconds; dates as ``YYYY-MM-DD`` (midnight UTC);
booleans ``true``/``false``; numbers as decimal strings without float noise (``3.0`` → ``3``);
enumerations as an option's internal value (multi-select joined with ``;``); text up to 65,536
characters. Missing values (None, NaN, NaT, empty strings) are left out, or sent as ``""`` to clear
the property with ``clear_missing``. A value that cannot be converted becomes a row error naming the
row, the column and the value; that row is not sent.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.properties import PropertyDefinition, PropertySchema

MAX_TEXT = 65_536
DAY_MS = 86_400_000
_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


@dataclass
class SerializedFrame:
    """Per row: the property strings to send, and the problems that keep a row from being sent."""

    rows: list[dict[str, str]]
    errors: dict[int, str] = field(default_factory=dict)


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


def serialize_frame(
    frame: pd.DataFrame,
    schema: PropertySchema,
    *,
    column_mapping: Mapping[str, str] | None = None,
    clear_missing: bool = False,
    ignore_columns: Sequence[str] = (),
    first_row: int = 0,
) -> SerializedFrame:
    """Serialize every row of `frame` into a HubSpot ``properties`` dict.

    :param first_row: the input row number of the frame's first row, used in error messages.
    """
    resolved = resolve_columns(list(frame.columns), schema, column_mapping, ignore_columns)
    count = len(frame)
    names: list[str] = []
    columns: list[list[str | None]] = []
    errors: dict[int, list[str]] = {}
    for column, name in resolved.items():
        values, problems = serialize_column(frame[column], schema[name])
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
    return SerializedFrame(rows, {position: "; ".join(messages) for position, messages in errors.items()})


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def _missing(series: pd.Series) -> np.ndarray:
    missing = series.isna().to_numpy().copy()
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        missing |= series.astype("string").str.strip().eq("").fillna(True).to_numpy(dtype=bool)
    return missing


def serialize_column(series: pd.Series, definition: PropertyDefinition) -> tuple[list[str | None], dict[int, str]]:
    """One column: its strings (None where missing) and the problems by row position."""
    missing = _missing(series)
    kind = definition.type
    if kind == "number":
        return _numbers(series, missing)
    if kind in ("datetime", "date"):
        return _datetimes(series, missing, date_only=kind == "date")
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
    values = text.astype(object).where(~missing, None).tolist()
    for position in problems:
        values[position] = None
    return values, problems


def _numbers(series: pd.Series, missing: np.ndarray) -> tuple[list[str | None], dict[int, str]]:
    if pd.api.types.is_bool_dtype(series.dtype):
        numbers = series.astype("float64")
    else:
        numbers = pd.to_numeric(series, errors="coerce")
    as_float = numbers.astype("float64").to_numpy()
    bad = np.isnan(as_float) & ~missing | np.isinf(as_float)
    problems = {int(i): f"{_show(series.iloc[i])} is not a number" for i in np.flatnonzero(bad)}
    values: list[str | None] = [None] * len(series)
    good = ~missing & ~bad
    integral = good & (np.floor(as_float) == as_float) & (np.abs(as_float) < 2**53)
    if integral.any():
        for position, text in zip(np.flatnonzero(integral), as_float[integral].astype(np.int64).astype(str)):
            values[position] = str(text)
    for position in np.flatnonzero(good & ~integral):
        values[position] = _decimal_text(float(as_float[position]))
    return values, problems


def _decimal_text(number: float) -> str:
    """Shortest faithful decimal: 0.1 + 0.2 → '0.3', 1e20 → '100000000000000000000'."""
    text = format(Decimal(f"{number:.15g}"), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _datetimes(series: pd.Series, missing: np.ndarray, date_only: bool) -> tuple[list[str | None], dict[int, str]]:
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        parsed = pd.to_datetime(series, unit="ms", utc=True, errors="coerce")
    elif isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series.dtype):
        parsed = pd.to_datetime(series, utc=True)  # naive values are taken as UTC
    else:
        text = series.astype("string").str.strip()
        epoch = text.str.fullmatch(r"-?\d{10,}").fillna(False).to_numpy(dtype=bool)
        parsed = pd.to_datetime(text.where(~epoch), utc=True, errors="coerce", format="mixed")
        if epoch.any():
            parsed = parsed.where(~epoch, pd.to_datetime(pd.to_numeric(text.where(epoch), errors="coerce"),
                                                         unit="ms", utc=True, errors="coerce"))
    parsed = parsed.dt.as_unit("ms")
    bad = parsed.isna().to_numpy() & ~missing
    problems = {int(i): f"{_show(series.iloc[i])} is not a {'date' if date_only else 'datetime'}"
                for i in np.flatnonzero(bad)}
    epoch_ms = np.where(parsed.isna().to_numpy(), 0, parsed.to_numpy(dtype="datetime64[ms]").astype(np.int64))
    good = ~missing & ~bad
    if date_only:
        off_midnight = good & (epoch_ms % DAY_MS != 0)
        for position in np.flatnonzero(off_midnight):
            problems[int(position)] = f"{_show(series.iloc[position])} has a time of day; a date property takes a date"
        good &= ~off_midnight
        texts = parsed.dt.strftime("%Y-%m-%d").astype(object)
    else:
        texts = pd.Series(epoch_ms.astype(str), index=series.index, dtype=object)
    return texts.where(good, None).tolist(), problems


def _booleans(series: pd.Series, missing: np.ndarray) -> tuple[list[str | None], dict[int, str]]:
    text = series.astype("string").str.strip().str.lower()
    truthy = text.isin(_TRUE).fillna(False).to_numpy(dtype=bool)
    falsy = text.isin(_FALSE).fillna(False).to_numpy(dtype=bool)
    bad = ~missing & ~truthy & ~falsy
    problems = {int(i): f"{_show(series.iloc[i])} is not a boolean (true/false)" for i in np.flatnonzero(bad)}
    values = np.where(truthy, "true", np.where(falsy, "false", None))
    return [None if missing[i] or bad[i] else values[i] for i in range(len(values))], problems


def _enumerations(series: pd.Series, missing: np.ndarray, definition: PropertyDefinition) -> tuple[list[str | None], dict[int, str]]:
    allowed = set(definition.options)
    shown = ", ".join(definition.options[:8]) + (", …" if len(definition.options) > 8 else "")
    if definition.multi_select:
        values: list[str | None] = []
        problems: dict[int, str] = {}
        for position, value in enumerate(series.tolist()):
            if missing[position] if not isinstance(value, (list, tuple, set)) else False:
                values.append(None)
                continue
            parts = [str(part).strip() for part in value] if isinstance(value, (list, tuple, set)) \
                else [part.strip() for part in str(value).split(";")]
            unknown = [part for part in parts if part not in allowed]
            if unknown:
                problems[position] = f"{_show(unknown[0])} is not an option of {definition.name} ({shown})"
                values.append(None)
            else:
                values.append(";".join(parts))
        return values, problems
    text = series.astype("string").str.strip()
    known = text.isin(allowed).fillna(False).to_numpy(dtype=bool)
    bad = ~missing & ~known
    problems = {int(i): f"{_show(series.iloc[i])} is not an option of {definition.name} ({shown})"
                for i in np.flatnonzero(bad)}
    return text.astype(object).where(known, None).tolist(), problems
