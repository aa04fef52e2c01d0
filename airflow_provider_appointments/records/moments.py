"""Date and datetime columns → epoch milliseconds, read only when unambiguous (the serialization rules
for moments; see `serialization` for the whole set).

ISO 8601 text, epoch milliseconds (integers, or digit strings of 10 or more digits), ``datetime``/
``date``/``Timestamp`` objects and datetime64 columns are read (naive = UTC); other text only with a
``date_format``. Day/month order is never guessed. With a ``timezone``, naive datetimes are wall-clock
times there; a local time that daylight saving time skips is refused, and one it repeats is refused
unless ``ambiguous`` says which of the two moments it is.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime

import numpy as np
import pandas as pd

from airflow_provider_appointments.api.timestamps import moment_forms, parse_forms

DAY_MS = 86_400_000
# ISO 8601 text with an offset: a time of day, then Z or ±hh[:mm] ("2026-12-03" or "03-12-2026" has none).
_OFFSET = re.compile(r"[T\s]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")
_EPOCH_DIGITS = re.compile(r"-?\d{10,}")
# A strptime format whose text carries its zone: %z / %Z, or a literal Z or UTC at its end.
_ZONED_FORMAT = re.compile(r"%[zZ]|(?:Z|UTC)$")
_NUMERIC_DATE = re.compile(r"\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4}")  # 01/02/2026, 1.2.26 …


def shown(value: object) -> str:
    """A value as a message shows it: its repr, cut at 60 characters."""
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 60 else text[:57] + "...'"


def datetimes(
    series: pd.Series, missing: np.ndarray, date_only: bool, date_format: str | None = None,
    timezone: str | None = None, ambiguous: str = "raise",
) -> tuple[list[str | None], dict[int, str]]:
    kind = "date" if date_only else "datetime"
    epoch_ms, valid, problems = _moments(series, missing, kind, date_format)
    if timezone and not date_only:
        naive = valid & ~missing & _naive(series, date_format)
        naive[list(problems)] = False
        problems.update(_localize(series, epoch_ms, naive, timezone, ambiguous))
    bad = ~valid & ~missing
    for position in np.flatnonzero(bad):
        problems.setdefault(int(position), f"{shown(series.iloc[position])} is not a {kind}")
    good = valid & ~missing & ~np.isin(np.arange(len(series)), list(problems))
    if date_only:
        off_midnight = good & (epoch_ms % DAY_MS != 0)
        for position in np.flatnonzero(off_midnight):
            problems[int(position)] = f"{shown(series.iloc[position])} has a time of day; a date property takes a date"
        good &= ~off_midnight
        texts = epoch_ms.astype("datetime64[ms]").astype("datetime64[D]").astype(str)
    else:
        texts = epoch_ms.astype(str)
    out = np.full(len(series), None, dtype=object)
    out[good] = texts[good].astype(object)
    return out.tolist(), problems


def _naive(series: pd.Series, date_format: str | None) -> np.ndarray:
    """Which values carry no offset (read as UTC so far): what a `timezone` applies to."""
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_numeric_dtype(dtype) \
            or pd.api.types.is_bool_dtype(dtype):
        return np.zeros(len(series), bool)
    if pd.api.types.is_datetime64_dtype(dtype):
        return np.ones(len(series), bool)
    zoned_format = bool(date_format and _ZONED_FORMAT.search(date_format.strip()))
    return np.fromiter((_is_naive(value, date_format, zoned_format) for value in series.tolist()), bool, len(series))


def _is_naive(value: object, date_format: str | None, zoned_format: bool) -> bool:
    if isinstance(value, str):
        text = value.strip()
        if date_format is not None:  # the format alone says whether its text carries a zone
            return not zoned_format
        return not _OFFSET.search(text) and not _EPOCH_DIGITS.fullmatch(text)
    if isinstance(value, datetime):
        return value.tzinfo is None
    return isinstance(value, (date, np.datetime64))


def _localize(series: pd.Series, epoch_ms: np.ndarray, naive: np.ndarray, zone: str,
              ambiguous: str) -> dict[int, str]:
    """Naive wall-clock times (in `epoch_ms` as if UTC) → the moments they are in `zone`, in place;
    the problems of local times that a DST change skips or (without an `ambiguous` choice) repeats."""
    where = np.flatnonzero(naive)
    if not len(where):
        return {}
    wall = pd.DatetimeIndex(epoch_ms[where].astype("datetime64[ms]"))
    local = wall.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    unset = np.asarray(local.isna())
    earliest = wall.tz_localize(zone, ambiguous=np.ones(len(wall), bool), nonexistent="NaT")
    skipped = unset & np.asarray(earliest.isna())
    repeated = unset & ~skipped
    problems: dict[int, str] = {}
    if repeated.any() and ambiguous != "raise":
        chosen = earliest if ambiguous == "earliest" else \
            wall.tz_localize(zone, ambiguous=np.zeros(len(wall), bool), nonexistent="NaT")
        local = local.where(~repeated, chosen)
        repeated[:] = False
    for index in np.flatnonzero(skipped | repeated):
        position = int(where[index])
        problems[position] = (
            f"{shown(series.iloc[position])} does not exist in {zone} (the clocks skip it for daylight saving time)"
            if skipped[index] else
            f"{shown(series.iloc[position])} happens twice in {zone} (the clocks repeat it when daylight saving "
            "time ends); pass ambiguous='earliest' or 'latest' to choose")
    fine = ~(skipped | repeated)
    epoch_ms[where[fine]] = local[fine].as_unit("ms").asi8
    return problems


def _moments(
    series: pd.Series, missing: np.ndarray, kind: str, date_format: str | None,
) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Epoch milliseconds, whether each was read, and the reasons for those that were refused."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        count = len(series)
        problems = {int(i): f"{shown(series.iloc[i])} is a boolean, not a {kind}" for i in np.flatnonzero(~missing)}
        return np.zeros(count, np.int64), np.zeros(count, bool), problems
    if pd.api.types.is_numeric_dtype(dtype):
        return *_epoch_ms(pd.to_datetime(series.astype("float64"), unit="ms", utc=True, errors="coerce")), {}
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        return *_epoch_ms(pd.to_datetime(series, utc=True)), {}  # naive values are taken as UTC
    values = series.to_numpy(dtype=object)  # missing values are never read
    if pd.api.types.is_object_dtype(dtype):  # what is not text is a Python/NumPy value, read one by one (the rare path)
        is_text = np.fromiter((isinstance(v, str) for v in values), bool, len(values)) & ~missing
    else:
        is_text = ~missing
    epoch_ms, valid, problems = np.zeros(len(values), np.int64), np.zeros(len(values), bool), {}
    texts = np.flatnonzero(is_text)
    epoch_ms[texts], valid[texts], text_problems = _parse_texts(values[texts], kind, date_format, str(series.name))
    problems.update({int(texts[i]): message for i, message in text_problems.items()})
    for position in np.flatnonzero(~is_text & ~missing):
        moment, problem = _moment(values[position], kind)
        if problem:
            problems[int(position)] = problem
        else:
            epoch_ms[position], valid[position] = moment, True
    return epoch_ms, valid, problems


def _epoch_ms(parsed: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    parsed = parsed.dt.as_unit("ms")
    valid = parsed.notna().to_numpy()
    raw = parsed.to_numpy(dtype="datetime64[ms]").astype(np.int64)
    return np.where(valid, raw, 0), valid


def _parse_texts(
    texts: np.ndarray, kind: str, date_format: str | None, column: str,
) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Text → epoch ms: with a format, exactly that format; without, ISO 8601 or epoch digits only."""
    text = pd.Series(texts, dtype=object).str.strip()
    problems: dict[int, str] = {}
    if date_format is not None:
        epoch_ms, valid = _epoch_ms(pd.to_datetime(text, format=date_format, utc=True, errors="coerce"))
        for i in np.flatnonzero(~valid):
            problems[int(i)] = f"{shown(texts[i])} does not match date_format {date_format!r}"
        return epoch_ms, valid, problems
    forms = moment_forms(texts)  # matched once: for the parse and for the messages
    _, iso, epoch = forms
    epoch_ms, valid = _epoch_ms(parse_forms(*forms))
    for i in np.flatnonzero(~valid):
        if iso.iloc[i] or epoch.iloc[i]:
            problems[int(i)] = f"{shown(texts[i])} is not a valid {kind} (no such day or time, or out of range)"
        else:
            problems[int(i)] = _unreadable(texts[i], kind, column)
    return epoch_ms, valid, problems


def _unreadable(value: str, kind: str, column: str) -> str:
    example = "2026-01-13" if kind == "date" else "2026-01-13T09:00:00Z"
    fmt = "%d/%m/%Y" if kind == "date" else "%d/%m/%Y %H:%M"
    why = ("; day/month or month/day is never guessed" if _NUMERIC_DATE.match(value.strip())
           else " or epoch milliseconds")
    return (f"{shown(value)} is not a {kind} in ISO 8601 form (such as {example}){why}; to read it, "
            f"pass date_format, e.g. date_format={fmt!r} or {{{column!r}: {fmt!r}}}")


def _moment(value: object, kind: str) -> tuple[int, str | None]:
    """One non-text value → (epoch ms, None) or (0, problem)."""
    text = shown(value)
    if isinstance(value, (bool, np.bool_)):
        return 0, f"{text} is a boolean, not a {kind}"
    try:
        if isinstance(value, (datetime, date, np.datetime64)):
            stamp = pd.Timestamp(value)
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
            return int(stamp.as_unit("ms").asm8.astype(np.int64)), None
        if isinstance(value, (int, float, np.integer, np.floating)):
            if not math.isfinite(value):
                return 0, f"{text} is not a {kind}"
            return int(pd.Timestamp(int(value), unit="ms").as_unit("ms").asm8.astype(np.int64)), None
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        return 0, f"{text} is out of range for a {kind}"
    return 0, f"{text} is not a {kind}"
