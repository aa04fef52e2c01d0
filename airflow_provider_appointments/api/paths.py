"""Names in HubSpot's URLs: the object type, its id property, and path segments that cannot escape."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

OBJECT_TYPE = "appointments"
OBJECT_ID = "hs_object_id"


def segment(value: Any) -> str:
    """One URL path segment: ids and names with `/`, `?`, `..` or spaces can never escape it."""
    text = str(value)
    if text in (".", ".."):
        text = text.replace(".", "%2E")
    return quote(text, safe="")
