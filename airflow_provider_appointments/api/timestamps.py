"""HubSpot's moments: ISO 8601 strings with ``Z`` or epoch milliseconds, to epoch milliseconds."""

from __future__ import annotations

from datetime import datetime, timezone

MODIFIED = "hs_lastmodifieddate"


def to_epoch_ms(moment: datetime | int | str) -> int:
    """A datetime (naive = UTC), ISO 8601 string or epoch ms as epoch milliseconds."""
    if isinstance(moment, int):
        return moment
    if isinstance(moment, str):
        if moment.lstrip("-").isdigit():
            return int(moment)
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


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
