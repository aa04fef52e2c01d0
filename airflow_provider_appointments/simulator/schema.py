"""The simulated account's schema: its object types and the association types between them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_appointments.simulator.errors import HubSpotHTTPError
from airflow_provider_appointments.simulator.properties import (
    APPOINTMENT_PROPERTIES,
    COMPANY_PROPERTIES,
    CONTACT_PROPERTIES,
    DEAL_PROPERTIES,
    TICKET_PROPERTIES,
    PropertyDefinition,
)

APPOINTMENTS, CONTACTS, COMPANIES, DEALS, TICKETS = "appointments", "contacts", "companies", "deals", "tickets"

@dataclass(frozen=True)
class ObjectSchema:
    """One object type: its names, properties and the properties a read returns by default.

    :param name: plural name used in paths (``appointments``).
    :param type_id: HubSpot's object type id (``0-421``).
    :param singular: singular name, used in association type names (``appointment``).
    :param properties: property definitions by name.
    :param created_property: the read-only creation-date property (``hs_createdate``, ``createdate``).
    :param modified_property: the read-only last-modified property.
    :param default_properties: what a read without ``properties`` returns.
    :param required: properties a create must set.
    :param id_base: record ids of this type start after this number.
    """

    name: str
    type_id: str
    singular: str
    properties: dict[str, PropertyDefinition]
    created_property: str
    modified_property: str
    default_properties: tuple[str, ...]
    required: tuple[str, ...] = ()
    id_base: int = 0

    @property
    def unique_properties(self) -> tuple[str, ...]:
        return tuple(name for name, definition in self.properties.items() if definition.has_unique_value)


SCHEMAS: dict[str, ObjectSchema] = {
    schema.name: schema
    for schema in (
        ObjectSchema(APPOINTMENTS, "0-421", "appointment", APPOINTMENT_PROPERTIES, "hs_createdate",
                     "hs_lastmodifieddate", ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
                     required=("hs_appointment_name",), id_base=100_000),
        ObjectSchema(CONTACTS, "0-1", "contact", CONTACT_PROPERTIES, "createdate", "lastmodifieddate",
                     ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
                     id_base=9_000_000),
        ObjectSchema(COMPANIES, "0-2", "company", COMPANY_PROPERTIES, "createdate", "hs_lastmodifieddate",
                     ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"), id_base=8_000_000),
        ObjectSchema(DEALS, "0-3", "deal", DEAL_PROPERTIES, "createdate", "hs_lastmodifieddate",
                     ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
                      "hs_object_id", "pipeline"), id_base=7_000_000),
        ObjectSchema(TICKETS, "0-5", "ticket", TICKET_PROPERTIES, "createdate", "hs_lastmodifieddate",
                     ("content", "createdate", "hs_lastmodifieddate", "hs_object_id", "subject"), id_base=6_000_000),
    )
}
_ALIASES = {alias: schema.name for schema in SCHEMAS.values()
            for alias in (schema.name, schema.singular, schema.type_id)}


def object_schema(name: str) -> ObjectSchema:
    """The object type a path names (``appointments``, ``appointment`` or ``0-421``), or HubSpot's 400."""
    kind = _ALIASES.get(name.lower())
    if kind is None:
        raise HubSpotHTTPError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}",
                               context={"objectType": [name]})
    return SCHEMAS[kind]


@dataclass(frozen=True)
class AssociationType:
    """One association type from one object type to another.

    :param from_type: plural name of the source object type.
    :param to_type: plural name of the target object type.
    :param type_id: ``associationTypeId``.
    :param category: ``HUBSPOT_DEFINED`` or ``USER_DEFINED``.
    :param label: None for the default (unlabelled) type.
    :param inverse_id: the type id of the same association seen from the other side.
    """

    from_type: str
    to_type: str
    type_id: int
    category: str
    label: str | None
    inverse_id: int

    @property
    def name(self) -> str:
        """The v3 ``type`` string (``appointment_to_contact``; labelled types use their label)."""
        if self.label is None:
            return f"{SCHEMAS[self.from_type].singular}_to_{SCHEMAS[self.to_type].singular}"
        return self.label.lower().replace(" ", "_")

    def as_api(self) -> dict:
        """HubSpot's `AssociationSpecWithLabel` (``label`` is null for the default type)."""
        return {"category": self.category, "typeId": self.type_id, "label": self.label}


def _pair(from_type: str, to_type: str, type_id: int, inverse_id: int, category: str = "HUBSPOT_DEFINED",
          label: str | None = None) -> tuple[AssociationType, AssociationType]:
    return (AssociationType(from_type, to_type, type_id, category, label, inverse_id),
            AssociationType(to_type, from_type, inverse_id, category, label, type_id))


# HubSpot-defined ids for appointments (HubSpot's Python SDK enum), plus one label the account defined.
ASSOCIATION_TYPES: dict[int, AssociationType] = {
    association.type_id: association
    for pair in (
        _pair(APPOINTMENTS, CONTACTS, 906, 907),
        _pair(APPOINTMENTS, COMPANIES, 908, 909),
        _pair(APPOINTMENTS, DEALS, 944, 945),
        _pair(APPOINTMENTS, TICKETS, 946, 947),
        _pair(APPOINTMENTS, CONTACTS, 1001, 1002, "USER_DEFINED", "Primary patient"),
    )
    for association in pair
}


def association_types(from_type: str, to_type: str) -> list[AssociationType]:
    """Every association type from one object type to another, the default first."""
    return [a for a in ASSOCIATION_TYPES.values() if a.from_type == from_type and a.to_type == to_type]


def default_association_type(from_type: str, to_type: str) -> AssociationType | None:
    """The unlabelled association type between two object types, if they have one."""
    return next((a for a in association_types(from_type, to_type) if a.label is None), None)


def association_for_spec(spec: Any, from_type: str, to_type: str | None = None) -> AssociationType | None:
    """The association type an ``{associationCategory, associationTypeId}`` spec names, when it is
    valid from `from_type` (to `to_type` if given) and its category matches; None otherwise."""
    if not isinstance(spec, dict) or isinstance(spec.get("associationTypeId"), bool):
        return None
    try:
        association = ASSOCIATION_TYPES.get(int(spec["associationTypeId"]))
    except (KeyError, TypeError, ValueError):
        return None
    if association is None or association.from_type != from_type or to_type not in (None, association.to_type):
        return None
    return association if spec.get("associationCategory", association.category) == association.category else None
