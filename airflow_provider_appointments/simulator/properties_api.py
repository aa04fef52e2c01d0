"""The properties API: list, read and create an object type's property definitions.

Model choices where HubSpot's documentation is silent: a created property is a custom one
(``hubspotDefined: false``) and is usable at once by every endpoint; at most 10 unique-value
properties per object type, as HubSpot's help pages say; a name already taken is a 409 ``CONFLICT``.
"""

from __future__ import annotations

import re
from typing import Any

from airflow_provider_appointments.simulator.errors import HubSpotHTTPError, validation_error
from airflow_provider_appointments.simulator.properties import PropertyDefinition
from airflow_provider_appointments.simulator.routing import Call, Reply
from airflow_provider_appointments.simulator.store import Store

TYPES = {"string": ("text", "textarea", "phonenumber", "html", "file"), "number": ("number",),
         "date": ("date",), "datetime": ("date",), "bool": ("booleancheckbox",),
         "enumeration": ("select", "radio", "checkbox", "booleancheckbox")}
MAX_UNIQUE = 10
_NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")


class PropertiesAPI:
    """Property definitions of the simulated account (each simulator has its own)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def list(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        wanted = call.query_list("properties")
        definitions = [] if call.flag("archived") else [d for d in schema.properties.values()
                                                         if wanted is None or d.name in wanted]
        return Reply(200, {"results": [definition.as_api() for definition in definitions]})

    def read(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        definition = schema.properties.get(call.params["property_name"])
        if definition is None:
            raise HubSpotHTTPError(404, "OBJECT_NOT_FOUND",
                                   f"Unable to find property {call.params['property_name']} for object type "
                                   f"{schema.name}", context={"propertyName": [call.params["property_name"]]})
        return Reply(200, definition.as_api())

    def create(self, call: Call) -> Reply:
        schema = self.store.schema(call.params["object_type"])
        definition = _definition(call.body)
        with self.store.lock:
            if definition.name in schema.properties:
                raise HubSpotHTTPError(409, "CONFLICT", f"Property named '{definition.name}' already exists.",
                                       context={"name": [definition.name]})
            if definition.has_unique_value and len(schema.unique_properties) >= MAX_UNIQUE:
                raise validation_error(f"{schema.name} already has {MAX_UNIQUE} unique value properties, "
                                       "the most HubSpot allows.")
            self.store.add_property(schema.name, definition)
        return Reply(201, definition.as_api())


def _definition(body: Any) -> PropertyDefinition:
    """A `PropertyCreate` body as a definition, or HubSpot's 400 naming what is wrong."""
    if not isinstance(body, dict):
        raise validation_error("Invalid input JSON: the body must be a JSON object (PropertyCreate).")
    missing = [name for name in ("name", "label", "type", "fieldType", "groupName")
               if not isinstance(body.get(name), str) or not body[name]]
    if missing:
        raise validation_error(f"Invalid input JSON: {', '.join(missing)} must be given as non-empty strings.",
                               context={"propertyName": missing})
    name, kind, field_type = body["name"], body["type"], body["fieldType"]
    if not _NAME.fullmatch(name):
        raise validation_error(f"Property name '{name}' must start with a lowercase letter and hold only lowercase "
                               "letters, digits and underscores.", context={"name": [name]})
    if kind not in TYPES or field_type not in TYPES[kind]:
        raise validation_error(f"fieldType '{field_type}' is not valid for a property of type '{kind}'.",
                               context={"type": [str(kind)], "fieldType": [str(field_type)]})
    unique = body.get("hasUniqueValue", False)
    if not isinstance(unique, bool) or unique and kind not in ("string", "number"):
        raise validation_error("hasUniqueValue must be a boolean, and only string and number properties can "
                               "require unique values.", context={"hasUniqueValue": [str(unique)]})
    options = body.get("options") or []
    if not isinstance(options, list) or any(not isinstance(o, dict) or not isinstance(o.get("value"), str)
                                            for o in options):
        raise validation_error("options must be a list of objects with a string value.")
    if kind == "enumeration" and not options:
        raise validation_error("An enumeration property needs at least one option.")
    return PropertyDefinition(name, body["label"], kind, field_type,
                              options=tuple((o["value"], str(o.get("label") or o["value"])) for o in options),
                              group_name=body["groupName"], description=str(body.get("description") or ""),
                              has_unique_value=unique, hubspot_defined=False)
