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
    return HubSpotHTTPError(404, "OBJECT_NOT_FOUND", NOT_FOUND_MESSAGE, context={"id": [object_id]})


def validation_error(message: str, *, errors: list[dict] | None = None,
                     context: dict[str, list[str]] | None = None) -> HubSpotHTTPError:
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
