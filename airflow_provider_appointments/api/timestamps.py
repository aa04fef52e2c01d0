"""HubSpot's moments: ISO 8601 strings with ``Z`` or epoch milliseconds, to epoch milliseconds.

The one place moments are read: one value (`parse_moment`) or a column (`parse_moments`, used for
HubSpot's answers in extracts and for the users' date columns alike).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pandas as pd

from airflow_provider_appointments.errors import HubSpotInputError

MODIFIED = "hs_lastmodifieddate"
ISO_8601 = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
EPOCH_MS_TEXT = r"-?\d{10,}"  # fewer digits would be a year or a small number, never a moment


def moment_forms(values: Any) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Each value as stripped text, and whether it is in ISO 8601 form or epoch-millisecond digits."""
    text = pd.Series(values, dtype=object).astype("string").str.strip()
    return (text, text.str.fullmatch(ISO_8601).fillna(False).astype(bool),
            text.str.fullmatch(EPOCH_MS_TEXT).fillna(False).astype(bool))


def parse_moments(values: Any) -> pd.Series:
    """A column of ISO 8601 text (naive = UTC) or epoch-millisecond digits → UTC timestamps; NaT where a
    value is missing, in neither form, or no such moment (2026-02-30)."""
    return parse_forms(*moment_forms(values))


def parse_forms(text: pd.Series, iso: pd.Series, epoch: pd.Series) -> pd.Series:
    """`parse_moments` of what `moment_forms` found (for callers that also need the forms)."""
    parsed = pd.to_datetime(text.where(iso).astype(object), format="ISO8601", utc=True, errors="coerce")
    if epoch.any():
        numbers = pd.to_numeric(text.where(epoch), errors="coerce").astype("float64")
        parsed = parsed.where(~epoch, pd.to_datetime(numbers, unit="ms", utc=True, errors="coerce"))
    return parsed


def parse_moment(value: Any, name: str = "moment") -> datetime | None:
    """An ISO 8601 string (``Z`` or an offset) or a datetime as an aware datetime (naive = UTC); None
    for an empty value. `name` is what the error calls it."""
    if value in (None, "", "None"):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise HubSpotInputError(f"{name} must be an ISO 8601 date or datetime (e.g. 2026-03-01T00:00:00+00:00 "
                                f"or {{{{ data_interval_start }}}}), got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def to_epoch_ms(moment: datetime | int | str) -> int:
    """A datetime (naive = UTC), ISO 8601 string or epoch ms as epoch milliseconds."""
    if isinstance(moment, int):
        return moment
    if isinstance(moment, str) and moment.lstrip("-").isdigit():
        return int(moment)
    parsed = parse_moment(moment)
    if parsed is None:
        raise HubSpotInputError(f"an empty moment has no epoch milliseconds: {moment!r}")
    return int(parsed.timestamp() * 1000)


def modified_filters(lower_ms: int | None, upper_ms: int | None) -> list[dict]:
    """Search filters for ``lower_ms <= hs_lastmodifieddate < upper_ms`` (a None bound is open)."""
    return [{"propertyName": MODIFIED, "operator": operator, "value": str(bound)}
            for operator, bound in (("GTE", lower_ms), ("LT", upper_ms)) if bound is not None]


def created_ms(record: dict) -> int:
    """When a record was created (-1 when the answer does not say)."""
    stamp = record.get("createdAt") or (record.get("properties") or {}).get("hs_createdate")
    return to_epoch_ms(stamp) if stamp else -1


def modified_ms(record: dict) -> int:
    """When a record was last modified, from ``hs_lastmodifieddate`` or ``updatedAt``."""
    stamp = (record.get("properties") or {}).get(MODIFIED) or record.get("updatedAt")
    if stamp is None:
        raise ValueError(f"record {record.get('id')} has neither {MODIFIED} nor updatedAt")
    return to_epoch_ms(stamp)
