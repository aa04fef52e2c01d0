"""Fingerprints of what a write sends, so a sync can tell unchanged rows without asking HubSpot.

A row's hash covers all its properties (names and serialized values, 64-bit BLAKE2b): two rows with
equal hashes send the same properties. Each property also has its own hash, so comparing those names
the properties that changed (computed only for rows whose hash differs). Values are hashed as serialized for HubSpot
(epoch milliseconds, ``true``/``false``, exact decimals), so a date written ``03/12/2026`` one day and
``2026-12-03`` the next is the same value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

# A cleared property (clear_missing=True sends "") and an absent one differ; None never is a value sent.
_CLEARED = "\x00cleared"


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def property_hashes(properties: Mapping[str, str | None]) -> dict[str, str]:
    """Each property's hash (name and value together, so two properties never share one by accident)."""
    return {name: _digest(f"{name}\x1f{_CLEARED if value is None else value}")
            for name, value in properties.items()}


def row_hash(properties: Mapping[str, str | None]) -> str:
    """The hash of a whole row (the order of its properties does not matter)."""
    return _digest("\x1e".join(f"{name}\x1f{_CLEARED if properties[name] is None else properties[name]}"
                               for name in sorted(properties)))


def encode_hashes(hashes: Mapping[str, str]) -> str:
    """Compact JSON (``{"name":"hash",…}``, names sorted); names are property names, which need no escaping
    beyond what `json.dumps` gives the rare one that does."""
    return "{" + ",".join(f"{json.dumps(name)}:\"{hashes[name]}\"" for name in sorted(hashes)) + "}"


def decode_hashes(text: str | None) -> dict[str, str]:
    return json.loads(text) if text else {}


def changed_properties(properties: Mapping[str, str | None], hashes: Mapping[str, str],
                       previous: Mapping[str, str]) -> dict[str, str | None]:
    """The properties whose value differs from what was sent before (a property not sent before counts
    as changed); a property sent before and absent now is left alone, as a write would leave it."""
    return {name: value for name, value in properties.items() if previous.get(name) != hashes[name]}
