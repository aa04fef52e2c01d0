"""One policy for input rows that share a key (``on_duplicate_keys``), the same in every write operator.

Two rows with one key would be one record (or one association, one archive): HubSpot refuses a batch
that names a key twice, and its answer could not tell the two rows apart. So no two rows of one key
are ever sent together, and none loses its outcome to another:

- ``"reject"`` (default): every row of a repeated key goes to the failure report as
  ``DUPLICATE_INPUT_KEY``, naming the other rows; none of them is sent.
- ``"last"``: only the last row of each key is sent; the earlier rows succeed as ``superseded`` by it
  (same HubSpot id, not counted as created or updated again), or fail with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

import numpy as np
import pandas as pd

from airflow_provider_appointments.api.results import DUPLICATE_INPUT_KEY, INVALID_INPUT, RecordOutcome, settled_row
from airflow_provider_appointments.errors import HubSpotInputError

POLICIES = ("reject", "last")


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise HubSpotInputError(f"on_duplicate_keys must be one of {POLICIES}, got {policy!r}")
    return policy


class DuplicateKeys:
    """The rows of each repeated key in one input, and what `policy` makes of them.

    :param keys: (input row, key) of every row; rows without a key (None) are never duplicates.
    :param described_as: what the key is, for messages (``external_appointment_id``, ``id``, ``pair``).
    """

    def __init__(self, keys: Iterable[tuple[int, str | None]], policy: str = "reject",
                 described_as: str = "key") -> None:
        pairs = list(keys)
        # Only the keys that repeat are kept: found at once (a million distinct keys cost no dict of lists).
        column = pd.Series([key for _, key in pairs], dtype=object)
        repeated: set[str] = set(column[column.notna() & column.duplicated(keep=False)].tolist()) if pairs else set()
        rows: dict[str, list[int]] = {}
        for row, key in pairs:
            if key is not None and key in repeated:
                rows.setdefault(key, []).append(row)
        self.policy = check_policy(policy)
        self.described_as = described_as
        self.duplicates = {key: found for key, found in rows.items() if len(found) > 1}
        self.last_row = {key: found[-1] for key, found in self.duplicates.items()}
        # By row, not by an outcome's key: an operator's outcome keys need not be its row keys.
        self.key_of = {row: key for key, found in self.duplicates.items() for row in found}
        self._final: dict[str, RecordOutcome] = {}
        self._waiting: list[tuple[str, RecordOutcome]] = []

    def __bool__(self) -> bool:
        return bool(self.duplicates)

    def superseded(self, row: int, key: str | None) -> bool:
        return key is not None and key in self.last_row and self.last_row[key] != row

    def refusal(self, row: int, key: str) -> RecordOutcome:
        others = [other for other in self.duplicates[key] if other != row][:10]
        return settled_row(row, key, False, category=DUPLICATE_INPUT_KEY, message=(
            f"row {row}: {self.described_as} {key!r} also appears in rows {others}"))

    def placeholder(self, row: int, key: str) -> RecordOutcome:
        """What an earlier row holds until its key's last row has an outcome."""
        return settled_row(row, key, True, message=f"superseded by row {self.last_row[key]}")

    def held_back(self, row: int, key: str | None) -> RecordOutcome | None:
        """The outcome a row gets instead of being sent, or None when it is sent."""
        if key is None or key not in self.duplicates:
            return None
        if self.policy == "reject":
            return self.refusal(row, key)
        return self.placeholder(row, key) if self.superseded(row, key) else None

    def settle(self, outcomes: list[RecordOutcome], last: bool = False) -> list[RecordOutcome]:
        """Outcomes ready to count: an earlier row leaves once its key's last row has its outcome
        (which may come in a later window); `last` is the call after the final window."""
        if self.policy != "last" or not self.duplicates:
            return outcomes
        ready = []
        for outcome in outcomes:
            row = outcome.input_row if outcome.input_row is not None else -1
            key = self.key_of.get(row)
            if key is not None and self.last_row[key] == row:
                self._final[key] = outcome
            if key is not None and outcome.succeeded and self.superseded(row, key):
                self._waiting.append((key, outcome))
            else:
                ready.append(outcome)
        waiting, self._waiting = self._waiting, []
        for key, outcome in waiting:
            final = self._final.get(key)
            if final is not None:
                ready.append(_take_outcome(outcome, final))
            elif last:  # cannot happen when the input reads the same twice; never drop a row
                ready.append(replace(outcome, succeeded=False, category=INVALID_INPUT,
                                     message=f"{outcome.message}, whose outcome is unknown"))
            else:
                self._waiting.append((key, outcome))
        return ready


def _take_outcome(earlier: RecordOutcome, final: RecordOutcome) -> RecordOutcome:
    """An earlier row of a key shares its last row's record, but is not a second create or update."""
    if not final.succeeded:
        return replace(final, input_row=earlier.input_row, message=f"{earlier.message}: {final.message}")
    return replace(final, input_row=earlier.input_row, new=False, unchanged=True, message=earlier.message)


_NO_KEY = np.uint64(0)


def key_hashes(keys: list[str | None]) -> np.ndarray:
    """64-bit hashes of keys (0 for a row without one; a key hashing to 0 is merely never a duplicate)."""
    if not keys:
        return np.empty(0, dtype=np.uint64)
    present = np.array([key is not None for key in keys])
    hashed = pd.util.hash_array(np.array([key or "" for key in keys], dtype=object)).astype(np.uint64)
    return np.where(present, hashed, _NO_KEY)


def find_duplicates(keyed: Callable[[], Iterator[tuple[int, list[str | None]]]],
                    on_keys: Callable[[list[str | None]], None], policy: str, described_as: str) -> DuplicateKeys:
    """The repeated keys of an input read as ``keyed()`` (chunks of (first row, keys)); `on_keys` sees
    every chunk of the first read. Only 64-bit hashes of the keys are kept (8 bytes a row); the rows of
    a hash that repeats are found by a second read, and only if there is one."""
    hashes = []
    for _, chunk in keyed():
        on_keys(chunk)
        hashes.append(key_hashes(chunk))
    every = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
    values, counts = np.unique(every[every != _NO_KEY], return_counts=True)
    repeated = values[counts > 1]
    if not len(repeated):
        return DuplicateKeys((), policy, described_as)
    pairs: list[tuple[int, str | None]] = []
    for first_row, chunk in keyed():
        for position in np.flatnonzero(np.isin(key_hashes(chunk), repeated)).tolist():
            pairs.append((first_row + position, chunk[position]))
    return DuplicateKeys(pairs, policy, described_as)
