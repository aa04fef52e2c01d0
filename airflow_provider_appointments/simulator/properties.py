"""Property definitions of every object type the simulator serves, and HubSpot's value rules.

Every value travels as a string. `normalize` checks one incoming value the way HubSpot does and
returns the string HubSpot stores (datetimes become ISO 8601 with milliseconds and ``Z``, dates
``YYYY-MM-DD``); it raises `InvalidPropertyValue` with HubSpot's error code otherwise.

Error codes (HubSpot documents only some of them; the rest are model choices):

- ``PROPERTY_DOESNT_EXIST`` unknown property name (documented);
- ``INVALID_INTEGER`` a number property given something that is not a finite decimal number
  (documented example: "... was not a valid number"; used for every number property, decimals are
  accepted as HubSpot's number type does);
- ``INVALID_DATE`` a datetime that is neither epoch milliseconds nor ISO 8601, or a date that is
  not at midnight UTC;
- ``INVALID_OPTION`` an enumeration value that is not an option (each ``;`` part of a multi-select);
- ``INVALID_BOOLEAN`` anything but ``true``/``false``;
- ``READ_ONLY_VALUE`` a write to a read-only property;
- ``REQUIRED_PROPERTY`` ``hs_appointment_name`` missing or empty on create;
- ``INVALID_STRING_LENGTH`` a string longer than 65,536 characters (HubSpot's documented limit).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_STRING_LENGTH = 65_536
DAY_MS = 86_400_000
_DEFINED_AT = "2025-09-01T00:00:00.000Z"  # when the simulated account's properties were "created"
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:?\d{2})?$")
_EPOCH = re.compile(r"^-?\d{1,15}$")
_EPOCH_START = datetime(1970, 1, 1, tzinfo=timezone.utc)


class InvalidPropertyValue(Exception):
    """A value HubSpot would refuse; `code` is HubSpot's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PropertyDefinition:
    """One property of an object type, served in HubSpot's `Property` shape by `as_api`.

    :param name: internal name.
    :param label: label shown in HubSpot.
    :param type: ``string`` | ``number`` | ``datetime`` | ``date`` | ``enumeration`` | ``bool``.
    :param field_type: ``text`` | ``textarea`` | ``number`` | ``date`` | ``select`` | ``checkbox`` |
        ``booleancheckbox``; ``checkbox`` enumerations are multi-select (``;``-joined).
    :param options: ``(value, label)`` pairs of enumerations and booleans.
    :param group_name: property group.
    :param description: description shown in HubSpot.
    :param has_unique_value: values are unique across records (usable as ``idProperty``).
    :param read_only: values are set by HubSpot only.
    :param hubspot_defined: a HubSpot default property (False for the account's custom ones).
    :param display_order: position in HubSpot's forms (-1 = unordered).
    """

    name: str
    label: str
    type: str
    field_type: str
    options: tuple[tuple[str, str], ...] = ()
    group_name: str = "appointment_information"
    description: str = ""
    has_unique_value: bool = False
    read_only: bool = False
    hubspot_defined: bool = True
    display_order: int = -1

    @property
    def option_values(self) -> tuple[str, ...]:
        return tuple(value for value, _ in self.options)

    @property
    def multi_select(self) -> bool:
        """A multiple checkboxes enumeration: its values are ``;``-separated lists of options."""
        return self.type == "enumeration" and self.field_type == "checkbox"

    def as_api(self) -> dict:
        """The `Property` shape of ``GET /crm/properties/2026-03/{objectType}``."""
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": self.group_name,
            "description": self.description,
            "options": [{"label": label, "value": value, "hidden": False, "displayOrder": index, "description": ""}
                        for index, (value, label) in enumerate(self.options)],
            "displayOrder": self.display_order,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": self.has_unique_value,
            "hidden": False,
            "hubspotDefined": self.hubspot_defined,
            "formField": not self.read_only,
            "archived": False,
            "dataSensitivity": "non_sensitive",
            "createdAt": _DEFINED_AT,
            "updatedAt": _DEFINED_AT,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
        }
        if not self.hubspot_defined:
            body["createdUserId"] = body["updatedUserId"] = "51446676"
        if self.type == "datetime":
            body["dateDisplayHint"] = "absolute"
        return body


def _options(*values: str) -> tuple[tuple[str, str], ...]:
    return tuple((value, value.replace("_", " ").capitalize()) for value in values)


def system_properties(created: str, modified: str, group: str) -> tuple[PropertyDefinition, ...]:
    """The read-only properties every CRM record has (names differ between object types)."""
    return (
        PropertyDefinition("hs_object_id", "Record ID", "number", "number", group_name=group, read_only=True,
                           description="The unique ID for this record. This value is set automatically by HubSpot."),
        PropertyDefinition(created, "Create date", "datetime", "date", group_name=group, read_only=True,
                           description="The date and time this record was created."),
        PropertyDefinition(modified, "Last modified date", "datetime", "date", group_name=group, read_only=True,
                           description="Most recent timestamp of any property update for this record."),
    )


APPOINTMENT_STATUSES = ("SCHEDULED", "CONFIRMED", "COMPLETED", "CANCELED", "NO_SHOW", "RESCHEDULED")
APPOINTMENT_TYPES = ("IN_PERSON", "VIDEO", "PHONE")
APPOINTMENT_SERVICES = ("CONSULTATION", "FOLLOW_UP", "LAB", "IMAGING", "THERAPY")


def _by_name(*definitions: PropertyDefinition) -> dict[str, PropertyDefinition]:
    return {definition.name: definition for definition in definitions}


APPOINTMENT_PROPERTIES: dict[str, PropertyDefinition] = _by_name(
    PropertyDefinition("hs_appointment_name", "Appointment name", "string", "text", display_order=0,
                       description="The name of the appointment. Required to create an appointment."),
    PropertyDefinition("hs_appointment_start", "Start time", "datetime", "date", display_order=1,
                       description="When the appointment starts."),
    PropertyDefinition("hs_appointment_end", "End time", "datetime", "date", display_order=2,
                       description="When the appointment ends."),
    PropertyDefinition("hs_appointment_status", "Status", "enumeration", "select", _options(*APPOINTMENT_STATUSES),
                       display_order=3, description="The status of the appointment."),
    PropertyDefinition("hs_appointment_location", "Location", "string", "text", display_order=4,
                       description="Where the appointment takes place."),
    PropertyDefinition("hs_appointment_type", "Appointment type", "enumeration", "select",
                       _options(*APPOINTMENT_TYPES), display_order=5,
                       description="How the appointment takes place."),
    PropertyDefinition("hs_appointment_notes", "Notes", "string", "textarea", display_order=6,
                       description="Notes about the appointment."),
    PropertyDefinition("hs_duration", "Duration", "number", "number", display_order=7,
                       description="Length of the appointment in minutes."),
    PropertyDefinition("hs_appointment_price", "Price", "number", "number", display_order=8,
                       description="Price of the appointment."),
    PropertyDefinition("hs_appointment_date", "Appointment date", "date", "date", display_order=9,
                       description="The day of the appointment (midnight UTC)."),
    PropertyDefinition("hs_is_first_visit", "First visit", "bool", "booleancheckbox",
                       (("true", "Yes"), ("false", "No")), display_order=10,
                       description="Whether this is the patient's first visit."),
    PropertyDefinition("hs_appointment_services", "Services", "enumeration", "checkbox",
                       _options(*APPOINTMENT_SERVICES), display_order=11,
                       description="Services booked for the appointment (multiple values, separated by ;)."),
    PropertyDefinition("external_appointment_id", "External appointment ID", "string", "text",
                       has_unique_value=True, hubspot_defined=False, display_order=12,
                       description="The appointment's ID in the booking system. Unique."),
    *system_properties("hs_createdate", "hs_lastmodifieddate", "appointment_information"),
)

CONTACT_PROPERTIES: dict[str, PropertyDefinition] = _by_name(
    PropertyDefinition("firstname", "First Name", "string", "text", group_name="contactinformation"),
    PropertyDefinition("lastname", "Last Name", "string", "text", group_name="contactinformation"),
    PropertyDefinition("email", "Email", "string", "text", group_name="contactinformation", has_unique_value=True),
    PropertyDefinition("phone", "Phone Number", "string", "text", group_name="contactinformation"),
    *system_properties("createdate", "lastmodifieddate", "contactinformation"),
)

COMPANY_PROPERTIES: dict[str, PropertyDefinition] = _by_name(
    PropertyDefinition("name", "Company name", "string", "text", group_name="companyinformation"),
    PropertyDefinition("domain", "Company Domain Name", "string", "text", group_name="companyinformation"),
    PropertyDefinition("city", "City", "string", "text", group_name="companyinformation"),
    *system_properties("createdate", "hs_lastmodifieddate", "companyinformation"),
)

DEAL_PROPERTIES: dict[str, PropertyDefinition] = _by_name(
    PropertyDefinition("dealname", "Deal Name", "string", "text", group_name="dealinformation"),
    PropertyDefinition("amount", "Amount", "number", "number", group_name="dealinformation"),
    PropertyDefinition("dealstage", "Deal Stage", "enumeration", "radio", group_name="dealinformation",
                       options=_options("appointmentscheduled", "qualifiedtobuy", "contractsent", "closedwon",
                                        "closedlost")),
    PropertyDefinition("pipeline", "Pipeline", "enumeration", "select", _options("default"),
                       group_name="dealinformation"),
    PropertyDefinition("closedate", "Close Date", "datetime", "date", group_name="dealinformation"),
    *system_properties("createdate", "hs_lastmodifieddate", "dealinformation"),
)

TICKET_PROPERTIES: dict[str, PropertyDefinition] = _by_name(
    PropertyDefinition("subject", "Ticket name", "string", "text", group_name="ticketinformation"),
    PropertyDefinition("content", "Ticket description", "string", "textarea", group_name="ticketinformation"),
    *system_properties("createdate", "hs_lastmodifieddate", "ticketinformation"),
)


# -- time ----------------------------------------------------------------------------------------
def iso_ms(epoch_ms: int) -> str:
    """HubSpot's rendering of a moment: ISO 8601 with milliseconds and ``Z``."""
    seconds, millis = divmod(epoch_ms, 1000)
    t = time.gmtime(seconds)  # three times faster than datetime formatting; reads render many of these
    # %-formatting: almost twice as fast as the same f-string with format specs here.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (t[0], t[1], t[2], t[3], t[4], t[5], millis)  # noqa: UP031


def iso_date(epoch_ms: int) -> str:
    """A moment's UTC date as ``YYYY-MM-DD``."""
    t = time.gmtime(epoch_ms // 1000)
    return f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}"


def parse_epoch_ms(value: str) -> int:
    """A moment as HubSpot accepts it: epoch milliseconds or ISO 8601 (UTC when no offset is given).

    Raises ValueError otherwise.
    """
    text = value.strip()
    if _EPOCH.match(text):
        return int(text)
    if not _ISO.match(text):
        raise ValueError(text)
    parsed = datetime.fromisoformat(text.replace(" ", "T").replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return (parsed - _EPOCH_START) // timedelta(milliseconds=1)


# -- values --------------------------------------------------------------------------------------
def as_text(value: Any) -> str:
    """A JSON value as the string HubSpot stores: JSON booleans and numbers are accepted too."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def normalize(definition: PropertyDefinition, value: Any) -> str:
    """Check one value for `definition` and return what HubSpot stores; ``""`` clears a value.

    Raises `InvalidPropertyValue` with HubSpot's error code when the value is refused.
    """
    text = as_text(value)
    if text == "":
        return ""
    name, kind = definition.name, definition.type
    if kind == "number":
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            raise InvalidPropertyValue("INVALID_INTEGER", f'{text} was not a valid number for property "{name}".')
        return text.strip()
    if kind in ("datetime", "date"):
        try:
            epoch = parse_epoch_ms(text)
            rendered = iso_ms(epoch)
        except (ValueError, OverflowError, OSError):
            raise InvalidPropertyValue(
                "INVALID_DATE", f'{text} was not a valid {kind} for property "{name}": use epoch milliseconds '
                                "or ISO 8601.") from None
        if kind == "datetime":
            return rendered
        if epoch % DAY_MS:
            raise InvalidPropertyValue(
                "INVALID_DATE", f'{text} is not midnight UTC ({rendered}); date property "{name}" only takes '
                                "dates at midnight UTC.")
        return rendered[:10]
    if kind == "bool":
        if text not in ("true", "false"):
            raise InvalidPropertyValue("INVALID_BOOLEAN", f'{text} was not a valid boolean for property "{name}": '
                                                          "use true or false.")
        return text
    if kind == "enumeration":
        parts = text.split(";") if definition.multi_select else [text]
        allowed = definition.option_values
        for part in parts:
            if part not in allowed:
                raise InvalidPropertyValue(
                    "INVALID_OPTION", f'{part} was not one of the allowed options: [{", ".join(allowed)}] '
                                      f'for property "{name}".')
        return text
    if len(text) > MAX_STRING_LENGTH:
        raise InvalidPropertyValue("INVALID_STRING_LENGTH", f'The value for property "{name}" has {len(text)} '
                                                            f"characters; the limit is {MAX_STRING_LENGTH}.")
    return text
