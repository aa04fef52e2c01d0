"""Fingerprints of what a write sends, so a sync can tell unchanged rows without asking HubSpot.

A row's hash covers all its properties (the property names, and each serialized value or its
absence): two rows with equal hashes send the same properties. Rows are hashed a window at a time
with pandas' vectorised hashing (SipHash with pandas' fixed key, stable across processes; should a
pandas release ever change it, every row looks changed once and is sent once). Each property also has
its own hash (64-bit BLAKE2b of name and value), computed only for rows whose hash differs, so
comparing those names the properties that changed. Values are hashed as serialized for HubSpot
(epoch milliseconds, ``true``/``false``, exact decimals), so a date written ``03/12/2026`` one day and
``2026-12-03`` the next is the same value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

# A cleared property (clear_missing=True sends "") and an absent one differ; None never is a value sent.
_CLEARED = "\x00cleared"


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def property_hashes(properties: Mapping[str, str | None]) -> dict[str, str]:
    """Each property's hash (name and value together, so two properties never share one by accident)."""
    return {name: _digest(f"{name}\x1f{_CLEARED if value is None else value}")
            for name, value in properties.items()}


def row_hashes(columns: Mapping[str, Sequence[str | None]], count: int) -> list[str]:
    """The hash of each of `count` rows given column by column (property → values, None: missing);
    the order of the columns does not matter."""
    if not columns:
        return [_digest("")] * count
    names = sorted(columns)
    frame = pd.DataFrame({name: pd.Series(list(columns[name]), dtype=object) for name in names})
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    salt = np.uint64(int(_digest("\x1e".join(names)), 16))  # the names, so a renamed column is a change
    return [f"{value:016x}" for value in (hashed ^ salt).tolist()]


def row_hash(properties: Mapping[str, str | None], names: Sequence[str] | None = None) -> str:
    """One row's hash, as `row_hashes` gives it; `names`: all the columns of its window (those the row
    lacks are missing in it)."""
    return row_hashes({name: [properties.get(name)] for name in (names or properties)}, 1)[0]


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
