"""Fingerprints of what a write sends, so a sync can tell unchanged rows without asking HubSpot.

A row's properties are hashed one by one (name and serialized value, 64-bit BLAKE2b), and the row's
hash is the hash of those: two rows with equal hashes send the same properties, and comparing the
per-property hashes names the properties that changed. Values are hashed as serialized for HubSpot
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


def row_hash(hashes: Mapping[str, str]) -> str:
    """The hash of a whole row, from its properties' hashes (order does not matter)."""
    return _digest("\x1e".join(f"{name}\x1f{hashes[name]}" for name in sorted(hashes)))


def encode_hashes(hashes: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(hashes.items())), separators=(",", ":"))


def decode_hashes(text: str | None) -> dict[str, str]:
    return json.loads(text) if text else {}


def changed_properties(properties: Mapping[str, str | None], hashes: Mapping[str, str],
                       previous: Mapping[str, str]) -> dict[str, str | None]:
    """The properties whose value differs from what was sent before (a property not sent before counts
    as changed); a property sent before and absent now is left alone, as a write would leave it."""
    return {name: value for name, value in properties.items() if previous.get(name) != hashes[name]}
