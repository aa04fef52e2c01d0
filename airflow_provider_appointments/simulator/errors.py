"""HubSpot's error bodies, as the simulator answers them.

Handlers raise `HubSpotHTTPError`; the request pipeline turns it into HubSpot's `Error` JSON (one
failed request) and the batch handlers into `StandardError` items (one failed input of a 207).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

NOT_FOUND_MESSAGE = "Object not found.  objectId are usually numeric."  # two spaces, as HubSpot writes it


class HubSpotHTTPError(Exception):
    """An answer HubSpot would give instead of the result: status, category, message and details.

    :param status: HTTP status code.
    :param category: HubSpot's error category (``VALIDATION_ERROR``, ``OBJECT_NOT_FOUND``, ...).
    :param message: the human-readable message.
    :param errors: ``ErrorDetail`` items (``{message, code?, context?}``).
    :param context: ``map<string, string[]>`` naming what failed.
    :param sub_category: HubSpot's optional finer category.
    :param headers: extra response headers (e.g. ``Retry-After``).
    :param body: a complete body that replaces the standard one (429s and the OAuth endpoint use
        other shapes).
    """

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        errors: list[dict] | None = None,
        context: dict[str, list[str]] | None = None,
        sub_category: str | None = None,
        headers: dict[str, str] | None = None,
        body: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.errors = errors or []
        self.context = context or {}
        self.sub_category = sub_category
        self.headers = headers or {}
        self.body = body

    def to_body(self, correlation_id: str) -> dict:
        """HubSpot's `Error` shape for a whole failed request."""
        if self.body is not None:
            return {**self.body, "correlationId": correlation_id}
        body: dict[str, Any] = {"status": "error", "message": self.message, "correlationId": correlation_id,
                                "category": self.category}
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.errors:
            body["errors"] = self.errors
        if self.context:
            body["context"] = self.context
        return body

    def to_standard_error(self, context: dict[str, list[str]] | None = None) -> dict:
        """HubSpot's `StandardError` shape for one failed input of a multi-status (207) answer.

        :param context: what identifies the input (``objectWriteTraceId``, ``ids``, ...), merged
            over the error's own context.
        """
        item: dict[str, Any] = {"status": "error", "category": self.category, "message": self.message,
                                "context": {**self.context, **(context or {})}, "errors": self.errors, "links": {}}
        if self.sub_category:
            item["subCategory"] = self.sub_category
        return item


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def not_found(object_id: str) -> HubSpotHTTPError:
    """HubSpot's 404 ``OBJECT_NOT_FOUND`` for a record id."""
    return HubSpotHTTPError(404, "OBJECT_NOT_FOUND", NOT_FOUND_MESSAGE, context={"id": [object_id]})


def validation_error(message: str, *, errors: list[dict] | None = None,
                     context: dict[str, list[str]] | None = None) -> HubSpotHTTPError:
    """HubSpot's 400 ``VALIDATION_ERROR``."""
    return HubSpotHTTPError(400, "VALIDATION_ERROR", message, errors=errors, context=context)


def property_errors(problems: list[tuple[str, str, str]]) -> HubSpotHTTPError:
    """HubSpot's 400 for invalid property values: `problems` are (property name, code, message).

    The top-level message embeds the JSON list HubSpot puts there; `errors[]` carries one
    ``{message, code, context: {propertyName: [...]}}`` per problem.
    """
    detail = [{"isValid": False, "message": message, "error": code, "name": name, "localizedErrorMessage": message}
              for name, code, message in problems]
    return validation_error(
        "Property values were not valid: " + json.dumps(detail, separators=(",", ":"), ensure_ascii=False),
        errors=[{"message": message, "code": code, "context": {"propertyName": [name]}}
                for name, code, message in problems],
    )


# -- the shape of request bodies -------------------------------------------------------------------
# HubSpot deserializes a body into its request type before anything else looks at it, so a value of
# the wrong JSON type anywhere (an array where an object belongs, an object where an id belongs)
# fails the whole request with a 400 "Invalid input JSON" naming where, never a per-input error.
SCALARS = (str, int, float, bool)  # what HubSpot coerces into a string field


def json_type(value: Any) -> str:
    """The JSON type of a parsed value, with its article, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def invalid_input(where: str, expected: str, value: Any) -> HubSpotHTTPError:
    """HubSpot's 400 for a body that does not deserialize: `where` is the JSON path of the value
    (``body`` for the whole body)."""
    subject = "the request body" if where == "body" else where
    return validation_error(f"Invalid input JSON: {subject} must be {expected}, not {json_type(value)}.",
                            context={"field": [where]})


def expect_object(value: Any, where: str, *, optional: bool = False) -> dict:
    """`value` as a JSON object (``{}`` for a missing optional one), or the invalid-input 400."""
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise invalid_input(where, "an object", value)
    return value


def expect_list(value: Any, where: str, *, optional: bool = False) -> list:
    """`value` as a JSON array (``[]`` for a missing optional one), or the invalid-input 400."""
    if value is None and optional:
        return []
    if not isinstance(value, list):
        raise invalid_input(where, "an array", value)
    return value


def expect_scalar(value: Any, where: str) -> None:
    """A string field: strings, numbers and booleans coerce into one (null means absent); arrays and
    objects are the invalid-input 400."""
    if value is not None and not isinstance(value, SCALARS):
        raise invalid_input(where, "a string", value)


def expect_fields(item: Any, where: str, scalars: tuple[str, ...] = (), objects: tuple[str, ...] = (),
                  lists: tuple[str, ...] = ()) -> dict:
    """Check one JSON object: the named fields, when present, are string-like, objects or arrays."""
    item = expect_object(item, where)
    prefix = "" if where == "body" else f"{where}."
    for name in scalars:
        expect_scalar(item.get(name), prefix + name)
    for name in objects:
        expect_object(item.get(name), prefix + name, optional=True)
    for name in lists:
        expect_list(item.get(name), prefix + name, optional=True)
    return item


def expect_string_list(value: Any, where: str) -> list[str] | None:
    """An optional array of strings (property names); items are coerced to strings."""
    if value is None:
        return None
    for position, item in enumerate(expect_list(value, where)):
        if not isinstance(item, SCALARS):
            raise invalid_input(f"{where}[{position}]", "a string", item)
    return [str(item) for item in value]


def expect_type_id(spec: Any, where: str) -> None:
    """An ``AssociationSpec``: an object whose ``associationTypeId`` is an integer and whose
    ``associationCategory`` is a string."""
    spec = expect_fields(spec, where, scalars=("associationCategory",))
    type_id = spec.get("associationTypeId")
    integral = isinstance(type_id, int) and not isinstance(type_id, bool) or (
        isinstance(type_id, float) and type_id.is_integer()) or (
        isinstance(type_id, str) and type_id.strip().isascii() and type_id.strip().lstrip("-").isdigit())
    if type_id is not None and not integral:
        raise invalid_input(f"{where}.associationTypeId", "an integer", type_id)
