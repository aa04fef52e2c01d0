"""Checks on request bodies shared by the objects and associations APIs: batch inputs, the
``properties`` and ``associations`` of an input, and record ids."""

from __future__ import annotations

from typing import Any

from airflow_provider_appointments.simulator.errors import (
    SCALARS,
    expect_fields,
    expect_list,
    expect_object,
    expect_scalar,
    expect_type_id,
    property_errors,
    validation_error,
)
from airflow_provider_appointments.simulator.properties import InvalidPropertyValue, normalize
from airflow_provider_appointments.simulator.schema import ObjectSchema

BATCH_LIMIT = 100
MAX_RECORD_ID = 2 ** 63 - 1  # HubSpot's ids are longs

# The fields of each batch input, by the JSON type HubSpot's request types give them.
INPUT_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "create": {"scalars": ("objectWriteTraceId",), "objects": ("properties",), "lists": ("associations",)},
    "read": {"scalars": ("id",)},
    "update": {"scalars": ("id", "idProperty", "objectWriteTraceId"), "objects": ("properties",)},
    "upsert": {"scalars": ("id", "idProperty", "objectWriteTraceId"), "objects": ("properties",)},
    "archive": {"scalars": ("id",)},
}


def batch_inputs(body: Any, kind: str | None = None) -> list:
    """The ``inputs`` of a batch body (at most 100), or HubSpot's 400.

    :param kind: a key of `INPUT_FIELDS`: every input must then be an object whose fields have the
        JSON types that batch takes (checked for all inputs before any is applied).
    """
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise validation_error("Invalid input JSON: the request body must be a JSON object with an inputs array.",
                               context={"field": ["inputs"]})
    inputs = body["inputs"]
    if len(inputs) > BATCH_LIMIT:
        raise validation_error(f"Batch input size {len(inputs)} is larger than the limit of {BATCH_LIMIT} inputs "
                               "per request.", context={"inputs": [str(len(inputs))], "limit": [str(BATCH_LIMIT)]})
    if kind is not None:
        for position, item in enumerate(inputs):
            expect_fields(item, f"inputs[{position}]", **INPUT_FIELDS[kind])
            if kind == "create":
                check_properties_shape(item.get("properties"), f"inputs[{position}].properties")
                check_associations_shape(item.get("associations"), f"inputs[{position}].associations")
            elif kind in ("update", "upsert"):
                check_properties_shape(item.get("properties"), f"inputs[{position}].properties")
    return inputs


def check_properties_shape(properties: Any, where: str) -> None:
    """A ``properties`` map: a JSON object whose values are strings (numbers and booleans coerce)."""
    for name, value in expect_object(properties, where, optional=True).items():
        expect_scalar(value, f"{where}.{name}")


def check_associations_shape(associations: Any, where: str) -> None:
    """The ``associations`` of a create input: ``[{to: {id}, types: [AssociationSpec]}]``."""
    for position, item in enumerate(expect_list(associations, where, optional=True)):
        at = f"{where}[{position}]"
        item = expect_fields(item, at, objects=("to",), lists=("types",))
        expect_fields(item.get("to") or {}, f"{at}.to", scalars=("id",))
        for number, spec in enumerate(item.get("types") or []):
            expect_type_id(spec, f"{at}.types[{number}]")



def record_id(raw: Any) -> int | None:
    """The record id a path segment or input names: ASCII digits only, within a long; else None."""
    if not isinstance(raw, SCALARS) or isinstance(raw, bool):
        return None
    text = str(raw).strip()
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= MAX_RECORD_ID else None

def validate_properties(schema: ObjectSchema, properties: Any, *, creating: bool) -> dict[str, str]:
    """HubSpot's checks on a ``properties`` map: the stored values, or a 400 naming every problem."""
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise validation_error("properties must be a JSON object of property name to value.")
    problems: list[tuple[str, str, str]] = []
    values: dict[str, str] = {}
    for name, value in properties.items():
        definition = schema.properties.get(name)
        if definition is None:
            problems.append((name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
        elif definition.read_only:
            problems.append((name, "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'))
        else:
            try:
                values[name] = normalize(definition, value)
            except InvalidPropertyValue as problem:
                problems.append((name, problem.code, problem.message))
    if creating:
        for name in schema.required:
            if not values.get(name) and not any(p[0] == name for p in problems):
                problems.append((name, "REQUIRED_PROPERTY",
                                 f'Property "{name}" is required to create a {schema.singular}.'))
    if problems:
        raise property_errors(problems)
    return values
