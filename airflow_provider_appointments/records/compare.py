"""Whether a value a write would send equals what HubSpot holds, per property type (for dry runs).

HubSpot answers datetimes as ISO 8601 while writes send epoch milliseconds, numbers may come back as
``30`` for ``30.0``, and multi-select order is not kept: comparing the strings would report changes
that are none.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from airflow_provider_appointments.api.timestamps import to_epoch_ms
from airflow_provider_appointments.records.properties import PropertyDefinition, PropertySchema


def _epoch_ms(text: str) -> int | None:
    try:
        return to_epoch_ms(text)
    except ValueError:
        return None


def same_value(definition: PropertyDefinition | None, sent: str | None, stored: str | None) -> bool:
    """True when writing `sent` would leave the property as HubSpot holds it (`stored`)."""
    sent, stored = sent or "", stored or ""
    if sent == stored:
        return True
    if not sent or not stored or definition is None:
        return False
    kind = definition.type
    if kind == "datetime":
        return _epoch_ms(sent) is not None and _epoch_ms(sent) == _epoch_ms(stored)
    if kind == "date":
        return sent[:10] == stored[:10] if not sent.isdigit() else _epoch_ms(sent) == _epoch_ms(stored[:10])
    if kind == "number":
        try:
            return Decimal(sent) == Decimal(stored)
        except InvalidOperation:
            return False
    if kind == "bool":
        return sent.lower() == stored.lower()
    if kind == "enumeration" and definition.multi_select:
        return set(sent.split(";")) == set(stored.split(";"))
    return False


def changes(schema: PropertySchema, sent: dict[str, str], stored: dict[str, str | None]) -> dict[str, dict]:
    """The properties a write would change: name → ``{"from": HubSpot's value, "to": the sent one}``."""
    return {name: {"from": stored.get(name), "to": value} for name, value in sent.items()
            if not same_value(schema.get(name), value, stored.get(name))}
