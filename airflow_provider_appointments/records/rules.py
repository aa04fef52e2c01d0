"""The per-column rules a user adds to the serialization: value maps and the time zone of naive datetimes.

Both are checked before anything is sent: a rule naming a column that is not written, a map onto a value
no option has, or a time zone that does not exist fails the task at once (a typo in a rule would
otherwise be as silent as no rule at all).
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.properties import PropertySchema, fold

AMBIGUOUS = ("raise", "earliest", "latest")
_DATETIME = "datetime"


def resolve_value_mapping(value_mapping: Mapping[str, Mapping[Any, Any]] | None, resolved: Mapping[str, str],
                          schema: PropertySchema) -> dict[str, dict[Any, Any]]:
    """Input column → {source value: value sent}; refuses columns not written and, for enumerations,
    targets that are no option's value or label."""
    if not value_mapping:
        return {}
    if not isinstance(value_mapping, Mapping):
        raise HubSpotInputError(f"value_mapping must be {{column: {{value: replacement}}}}, got {value_mapping!r}")
    maps: dict[str, dict[Any, Any]] = {}
    for column, mapping in value_mapping.items():
        if column not in resolved:
            mapped = [name for name, prop in resolved.items() if prop == column]
            hint = f"; column {mapped[0]!r} is written to it: key value_mapping by that column" if mapped else ""
            raise HubSpotInputError(f"value_mapping names {column!r}, which is not a column being written "
                                    f"(those are: {', '.join(map(repr, resolved))}){hint}")
        if not isinstance(mapping, Mapping):
            raise HubSpotInputError(f"value_mapping[{column!r}] must be a dict of value → replacement, got {mapping!r}")
        definition = schema[resolved[column]]
        if definition.type == "enumeration":
            lookup = definition.option_lookup()
            for source, target in mapping.items():
                if target is not None and str(target).strip() not in definition.options \
                        and not lookup.get(fold(str(target))):
                    raise HubSpotInputError(
                        f"value_mapping[{column!r}] maps {source!r} to {target!r}, which is not an option of "
                        f"{definition.name} (options: {', '.join(definition.options)})")
        maps[column] = dict(mapping)
    return maps


def map_values(series: pd.Series, mapping: Mapping[Any, Any], multi_select: bool = False) -> pd.Series:
    """`series` with each value the map names replaced: matched as text (numbers as numbers: ``1.0``
    matches a key ``1``), then, for keys with letters, folded (``"Cancelled "`` matches ``"cancelled"``);
    None as a replacement leaves the value missing. Multi-select values are mapped part by part."""
    exact = {_canonical(key): value for key, value in mapping.items()}
    folded = {fold(_canonical(key)): value for key, value in mapping.items() if _LETTER.search(_canonical(key))}
    values = series.to_numpy(dtype=object).copy()
    for position, value in enumerate(values.tolist()):
        if value is None or (isinstance(value, float) and value != value):
            continue
        if isinstance(value, (list, tuple, np.ndarray)) or (multi_select and isinstance(value, str)):
            parts = value.split(";") if isinstance(value, str) else value
            values[position] = [_mapped(part, exact, folded) for part in parts]
        else:
            values[position] = _mapped(value, exact, folded)
    return pd.Series(values, index=series.index, dtype=object, name=series.name)


_LETTER = re.compile(r"[^\W\d_]")


def _canonical(value: Any) -> str:
    """A value as a map key matches it: stripped text; an integral float as its integer (``1.0`` → ``1``)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _mapped(value: Any, exact: Mapping[str, Any], folded: Mapping[str, Any]) -> Any:
    text = _canonical(value)
    if text in exact:
        return exact[text]
    if _LETTER.search(text):
        return folded.get(fold(text), value)
    return value


def resolve_timezones(timezone: str | Mapping[str, str] | None, ambiguous: str, resolved: Mapping[str, str],
                      schema: PropertySchema) -> dict[str, str]:
    """Input column → IANA time zone of its naive datetimes; refuses unknown zones and columns that are
    not datetime columns being written."""
    if ambiguous not in AMBIGUOUS:
        raise HubSpotInputError(f"ambiguous must be one of {', '.join(AMBIGUOUS)}, got {ambiguous!r}")
    if timezone is None:
        return {}
    dated = [column for column, name in resolved.items() if schema[name].type == _DATETIME]
    if isinstance(timezone, str):
        zones = dict.fromkeys(dated, timezone)
    elif isinstance(timezone, Mapping):
        zones = {str(column): zone for column, zone in timezone.items()}
        unknown = [column for column in zones if column not in dated]
        if unknown:
            raise HubSpotInputError(f"timezone names {unknown[0]!r}, which is not a datetime column being written "
                                    f"(those are: {', '.join(map(repr, dated)) or 'none'})")
    else:
        raise HubSpotInputError(f"timezone must be an IANA name such as 'Europe/Berlin' or {{column: name}}, "
                                f"got {timezone!r}")
    for zone in set(zones.values()):
        check_zone(zone)
    return zones


def check_zone(zone: Any) -> None:
    """Refuse a name that is no IANA time zone, with the closest names."""
    try:
        zoneinfo.ZoneInfo(str(zone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(str(zone), _zones(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise HubSpotInputError(f"timezone {zone!r} is not an IANA time zone (such as 'Europe/Berlin'){hint}") from None


@lru_cache(maxsize=1)
def _zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())
