"""HubSpot's response shapes as the tests check them: the required fields of each schema of the
2026-03 OpenAPI documents (written out here; tests never read the documents), with the value
types and nested schemas the simulator must respect."""

from __future__ import annotations

import re
import uuid
from typing import Any

import requests

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

REQUIRED: dict[str, set[str]] = {
    "SimplePublicObject": {"id", "properties", "createdAt", "updatedAt", "archived"},
    "SimplePublicUpsertObject": {"id", "properties", "createdAt", "updatedAt", "archived", "new"},
    "CollectionResponseForwardPaging": {"results"},
    "CollectionResponseWithTotal": {"total", "results"},
    "NextPage": {"after"},
    "BatchResponse": {"status", "results", "startedAt", "completedAt"},
    "StandardError": {"status", "category", "message", "context", "errors", "links"},
    "Error": {"category", "correlationId", "message"},
    "ErrorDetail": {"message"},
    "ValueWithTimestamp": {"value", "timestamp", "sourceType"},
    "CollectionResponseAssociatedId": {"results"},
    "AssociatedId": {"id", "type"},
    "LabelsBetweenObjectPair": {"fromObjectTypeId", "fromObjectId", "toObjectTypeId", "toObjectId", "labels"},
    "PublicDefaultAssociation": {"from", "to", "associationSpec"},
    "AssociationSpec": {"associationCategory", "associationTypeId"},
    "MultiAssociatedObjectWithLabel": {"toObjectId", "associationTypes"},
    "AssociationSpecWithLabel": {"category", "typeId"},
    "PublicAssociationMultiWithLabel": {"from", "to"},
    "Property": {"name", "label", "type", "fieldType", "groupName", "description", "options"},
    "Option": {"label", "value", "hidden"},
    "PropertyModificationMetadata": {"archivable", "readOnlyDefinition", "readOnlyValue"},
    "AccessTokenResponse": {"access_token", "expires_in", "refresh_token", "token_type", "token_use"},
}


def check(body: Any, schema: str, item: str | None = None) -> Any:
    """Assert `body` has the shape of `schema` (and its items of `item`, for collections); returns it."""
    assert isinstance(body, dict), f"{schema}: not an object: {body!r}"
    missing = REQUIRED[schema] - set(body)
    assert not missing, f"{schema} lacks {sorted(missing)}: {body}"
    if schema in ("SimplePublicObject", "SimplePublicUpsertObject"):
        _record(body)
    elif schema in ("CollectionResponseForwardPaging", "CollectionResponseWithTotal", "BatchResponse",
                    "CollectionResponseAssociatedId"):
        assert isinstance(body["results"], list)
        for result in body["results"]:
            check(result, item or "SimplePublicObject")
        if "paging" in body:
            check(body["paging"]["next"], "NextPage")
            assert isinstance(body["paging"]["next"]["after"], str)
        if schema == "BatchResponse":
            assert body["status"] == "COMPLETE"
            assert all(ISO_MS.match(body[key]) for key in ("startedAt", "completedAt", "requestedAt"))
            assert ("errors" in body) == ("numErrors" in body)
            for error in body.get("errors", []):
                check(error, "StandardError")
            assert body.get("numErrors", 0) == len(body.get("errors", []))
        if schema == "CollectionResponseWithTotal":
            assert isinstance(body["total"], int)
    elif schema == "StandardError":
        assert body["status"] == "error" and isinstance(body["message"], str)
        assert all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in body["context"].values())
        for detail in body["errors"]:
            check(detail, "ErrorDetail")
    elif schema == "Error":
        uuid.UUID(body["correlationId"])
        for detail in body.get("errors", []):
            check(detail, "ErrorDetail")
        assert all(isinstance(v, list) for v in body.get("context", {}).values())
    elif schema == "LabelsBetweenObjectPair":
        ends = ("fromObjectTypeId", "fromObjectId", "toObjectTypeId", "toObjectId")
        assert all(isinstance(body[k], str) for k in ends)
        assert all(isinstance(label, str) for label in body["labels"])
    elif schema == "PublicDefaultAssociation":
        assert isinstance(body["from"]["id"], str) and isinstance(body["to"]["id"], str)
        check(body["associationSpec"], "AssociationSpec")
    elif schema == "MultiAssociatedObjectWithLabel":
        assert isinstance(body["toObjectId"], str)
        for spec in body["associationTypes"]:
            check(spec, "AssociationSpecWithLabel")
    elif schema == "AssociationSpecWithLabel":
        assert isinstance(body["typeId"], int) and body["category"] in ("HUBSPOT_DEFINED", "USER_DEFINED")
    elif schema == "PublicAssociationMultiWithLabel":
        for target in body["to"]:
            check(target, "MultiAssociatedObjectWithLabel")
    elif schema == "Property":
        for option in body["options"]:
            check(option, "Option")
        check(body["modificationMetadata"], "PropertyModificationMetadata")
    elif schema == "AccessTokenResponse":
        assert body["token_type"] == "bearer" and body["token_use"] == "access_token"
        assert isinstance(body["expires_in"], int)
    return body


def _record(body: dict) -> None:
    assert isinstance(body["id"], str) and body["id"].isdigit()
    assert all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in body["properties"].items())
    assert body["properties"].get("hs_object_id", body["id"]) == body["id"]
    for key in ("createdAt", "updatedAt") + (("archivedAt",) if "archivedAt" in body else ()):
        assert ISO_MS.match(body[key]), body[key]
    assert isinstance(body["archived"], bool) and ("archivedAt" in body) == body["archived"]
    for entries in body.get("propertiesWithHistory", {}).values():
        for entry in entries:
            check(entry, "ValueWithTimestamp")
            assert ISO_MS.match(entry["timestamp"])
        stamps = [entry["timestamp"] for entry in entries]
        assert stamps == sorted(stamps, reverse=True), "history must be newest first"
    for associated in body.get("associations", {}).values():
        check(associated, "CollectionResponseAssociatedId", "AssociatedId")


class Api:
    """A small requests client for one simulator: ``api.get(path, **kwargs)`` with the bearer token."""

    def __init__(self, simulator: Any, token: str | None = None) -> None:
        self.url = simulator.url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token or simulator.token}"

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self("DELETE", path, **kwargs)


def error(response: requests.Response, status: int, category: str) -> dict:
    """Assert an error answer: status, HubSpot's Error body, the correlation id header; returns the body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = check(response.json(), "Error")
    assert body["status"] == "error" and body["category"] == category, body
    assert response.headers["X-HubSpot-Correlation-Id"] == body["correlationId"]
    return body
