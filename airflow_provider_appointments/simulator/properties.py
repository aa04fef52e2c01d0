"""The appointment property definitions the simulator serves, and HubSpot's value validation rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

MAX_STRING_LENGTH = 65_536

_STATUS = ("SCHEDULED", "CONFIRMED", "COMPLETED", "CANCELED", "NO_SHOW", "RESCHEDULED")
_TYPES = ("IN_PERSON", "VIDEO", "PHONE")
_SERVICES = ("CONSULTATION", "FOLLOW_UP", "LAB", "IMAGING", "THERAPY")


@dataclass(frozen=True)
class PropertySpec:
    name: str
    label: str
    type: str
    field_type: str
    options: tuple[str, ...] = ()
    unique: bool = False
    read_only: bool = False
    hubspot_defined: bool = True

    def as_api(self) -> dict:
        """The `Property` shape of the properties API."""
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": "appointment_information",
            "description": "",
            "options": [
                {"label": value.replace("_", " ").title(), "value": value, "hidden": False, "displayOrder": index}
                for index, value in enumerate(self.options)
            ],
            "displayOrder": -1,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": self.unique,
            "hidden": False,
            "hubspotDefined": self.hubspot_defined,
            "formField": False,
            "archived": False,
            "createdAt": "2025-01-01T00:00:00.000Z",
            "updatedAt": "2025-01-01T00:00:00.000Z",
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
        }


APPOINTMENT_PROPERTIES: dict[str, PropertySpec] = {
    spec.name: spec
    for spec in (
        PropertySpec("hs_appointment_name", "Appointment name", "string", "text"),
        PropertySpec("hs_appointment_start", "Start time", "datetime", "date"),
        PropertySpec("hs_appointment_end", "End time", "datetime", "date"),
        PropertySpec("hs_appointment_status", "Status", "enumeration", "select", _STATUS),
        PropertySpec("hs_appointment_location", "Location", "string", "text"),
        PropertySpec("hs_appointment_type", "Appointment type", "enumeration", "select", _TYPES),
        PropertySpec("hs_appointment_notes", "Notes", "string", "textarea"),
        PropertySpec("hs_duration", "Duration (minutes)", "number", "number"),
        PropertySpec("hs_appointment_price", "Price", "number", "number"),
        PropertySpec("hs_appointment_date", "Appointment date", "date", "date"),
        PropertySpec("hs_is_first_visit", "First visit", "bool", "booleancheckbox", ("true", "false")),
        PropertySpec("hs_appointment_services", "Services", "enumeration", "checkbox", _SERVICES),
        PropertySpec(
            "external_appointment_id", "External appointment ID", "string", "text", unique=True, hubspot_defined=False
        ),
        PropertySpec("hs_object_id", "Record ID", "number", "number", read_only=True),
        PropertySpec("hs_createdate", "Create date", "datetime", "date", read_only=True),
        PropertySpec("hs_lastmodifieddate", "Last modified date", "datetime", "date", read_only=True),
    )
}

CONTACT_PROPERTIES = ("firstname", "lastname", "email", "hs_object_id", "hs_createdate", "hs_lastmodifieddate")
COMPANY_PROPERTIES = ("name", "domain", "hs_object_id", "hs_createdate", "hs_lastmodifieddate")
DEAL_PROPERTIES = ("dealname", "amount", "hs_object_id", "hs_createdate", "hs_lastmodifieddate")

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$")


class InvalidPropertyValue(Exception):
    """A property value HubSpot would refuse: `code` is HubSpot's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def to_epoch_ms(value: str) -> int:
    """Parse a datetime the way HubSpot accepts it: epoch milliseconds or ISO 8601 (UTC if no offset)."""
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if not _ISO.match(text):
        raise ValueError(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)


def iso_ms(epoch_ms: int) -> str:
    """HubSpot's rendering of a timestamp: ISO 8601 with milliseconds and `Z`."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def normalize(spec: PropertySpec, value: object) -> str:
    """Validate one value for a property and return the string HubSpot would store.

    Raises `InvalidPropertyValue` with HubSpot's error code when the value is not acceptable.
    """
    text = "" if value is None else str(value) if not isinstance(value, bool) else str(value).lower()
    if text == "":
        return ""  # an empty string clears the value
    name = spec.name
    if spec.type == "number":
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise InvalidPropertyValue("INVALID_DECIMAL", f'{text!r} was not a valid number for property "{name}"') from None
        if not number.is_finite():
            raise InvalidPropertyValue("INVALID_DECIMAL", f'{text!r} was not a valid number for property "{name}"')
        return text
    if spec.type == "datetime":
        try:
            return iso_ms(to_epoch_ms(text))
        except (ValueError, OverflowError, OSError):
            raise InvalidPropertyValue("INVALID_DATE", f'{text!r} was not a valid datetime for property "{name}"') from None
    if spec.type == "date":
        try:
            epoch = to_epoch_ms(text)
        except (ValueError, OverflowError, OSError):
            raise InvalidPropertyValue("INVALID_DATE", f'{text!r} was not a valid date for property "{name}"') from None
        if epoch % 86_400_000:
            raise InvalidPropertyValue("INVALID_DATE", f'{text!r} is not at midnight UTC for date property "{name}"')
        return datetime.fromtimestamp(epoch / 1000, tz=timezone.utc).strftime("%Y-%m-%d")
    if spec.type == "bool":
        if text not in ("true", "false"):
            raise InvalidPropertyValue("INVALID_BOOLEAN", f'{text!r} was not a valid boolean for property "{name}"')
        return text
    if spec.type == "enumeration":
        parts = text.split(";") if spec.field_type == "checkbox" else [text]
        for part in parts:
            if part not in spec.options:
                raise InvalidPropertyValue(
                    "INVALID_OPTION",
                    f'{part!r} was not one of the allowed options: [{", ".join(spec.options)}] for property "{name}"',
                )
        return text
    if len(text) > MAX_STRING_LENGTH:
        raise InvalidPropertyValue(
            "INVALID_STRING_LENGTH", f'value for property "{name}" is {len(text)} characters; the limit is {MAX_STRING_LENGTH}'
        )
    return text
