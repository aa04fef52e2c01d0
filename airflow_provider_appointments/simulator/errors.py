"""HubSpot's error bodies, as the simulator answers them."""

from __future__ import annotations

import uuid


class HubSpotHTTPError(Exception):
    """Raised inside a route; the app turns it into HubSpot's JSON error body."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        errors: list[dict] | None = None,
        context: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        body: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.errors = errors
        self.context = context
        self.headers = headers or {}
        self.body = body

    def to_body(self, correlation_id: str) -> dict:
        if self.body is not None:
            return {**self.body, "correlationId": correlation_id}
        return error_body(self.category, self.message, correlation_id, errors=self.errors, context=self.context)


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def error_body(
    category: str,
    message: str,
    correlation_id: str,
    *,
    errors: list[dict] | None = None,
    context: dict[str, list[str]] | None = None,
) -> dict:
    body: dict = {"status": "error", "message": message, "correlationId": correlation_id, "category": category}
    if errors:
        body["errors"] = errors
    if context:
        body["context"] = context
    return body


def not_found(record_id: str) -> HubSpotHTTPError:
    return HubSpotHTTPError(
        404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", context={"id": [record_id]}
    )


def validation(message: str, errors: list[dict] | None = None, context: dict | None = None) -> HubSpotHTTPError:
    return HubSpotHTTPError(400, "VALIDATION_ERROR", message, errors=errors, context=context)
