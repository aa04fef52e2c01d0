"""Association types: HubSpot's categories, create-input entries, and errors that name the missing side."""

from __future__ import annotations

from airflow_provider_appointments.api.results import OBJECT_NOT_FOUND

# HubSpot numbers its own association types below this; an account's labelled types come after.
FIRST_USER_DEFINED_TYPE = 1000


def association_category(type_id: int) -> str:
    """``HUBSPOT_DEFINED`` or ``USER_DEFINED``, as HubSpot needs it beside an association type id."""
    return "HUBSPOT_DEFINED" if type_id < FIRST_USER_DEFINED_TYPE else "USER_DEFINED"


def association_input(to_object_id: str, type_id: int) -> dict:
    """One entry of a create input's ``associations``."""
    return {"to": {"id": str(to_object_id)},
            "types": [{"associationCategory": association_category(type_id), "associationTypeId": int(type_id)}]}


def explain_association_error(error: dict, to_object_type: str) -> dict:
    """Key each failing pair the way inputs are keyed, and name the record that does not exist
    (HubSpot's association 404 does not always say which side is missing)."""
    context = error.get("context") or {}
    pairs = [f"{a}->{b}" for a, b in zip(context.get("fromObjectId", []), context.get("toObjectId", []))]
    message = str(error.get("message") or "")
    if error.get("category") == OBJECT_NOT_FOUND:
        missing = set(map(str, context.get("id", [])))
        sides = [f"appointment {value}" for value in context.get("fromObjectId", []) if str(value) in missing]
        sides += [f"{to_object_type} record {value}" for value in context.get("toObjectId", [])
                  if str(value) in missing]
        if sides:
            message = f"{' and '.join(sides)} does not exist ({message})"
    return {**error, "context": {**context, "pair": pairs}, "message": message}
