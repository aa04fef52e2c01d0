"""What the four write operators share: windows of input rows → hook batch calls → one outcome per row,
the failure report, the id map, checkpoints for resuming, the XCom summary and the failure policy.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from airflow_provider_appointments.api.results import BATCH_LIMIT, RecordOutcome
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.readers import open_path
from airflow_provider_appointments.records.reports import FailureRow, write_failure_report, write_id_map


def check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, int) or not 1 <= batch_size <= BATCH_LIMIT:
        raise HubSpotInputError(f"batch_size must be between 1 and {BATCH_LIMIT} (HubSpot's limit), got {batch_size!r}")
    return batch_size


def local_failure(input_row: int, key: str | None, category: str, message: str) -> RecordOutcome:
    """A row that fails before any request (bad value, duplicate key, missing id)."""
    return RecordOutcome(input_row, key, False, category=category, message=message)


def shift(outcomes: Sequence[RecordOutcome], rows: Sequence[int]) -> list[RecordOutcome]:
    """Hook outcomes are indexed by position in the call; give them their input row numbers."""
    return [replace(outcome, index=rows[outcome.index]) for outcome in outcomes]


@dataclass
class Tally:
    """Running totals of one operator run; only failures and id-map rows are kept, not every outcome."""

    records: int = 0
    succeeded: int = 0
    created: int = 0
    updated: int = 0
    batches: int = 0
    requests: int = 0
    failures: list[FailureRow] = field(default_factory=list)
    id_map: list[tuple[int, str | None, str | None, bool | None]] = field(default_factory=list)

    def add(self, outcomes: Sequence[RecordOutcome], keep_id_map: bool) -> None:
        for outcome in outcomes:
            self.records += 1
            if outcome.succeeded:
                self.succeeded += 1
                self.created += outcome.new is True
                self.updated += outcome.new is False
                if keep_id_map:
                    self.id_map.append((outcome.index, outcome.key, outcome.hubspot_id, outcome.new))
            else:
                self.failures.append(FailureRow(outcome.index, outcome.key, outcome.status, outcome.category,
                                                outcome.message, outcome.context, outcome.correlation_id))

    @property
    def failed(self) -> int:
        return len(self.failures)


class Checkpoint:
    """One small object per finished window under `path` (object stores cannot append), so a retried
    task — on any worker that can read `path` — skips the windows already done."""

    def __init__(self, path: str, fingerprint: str) -> None:
        self.path = path.rstrip("/")
        self.fingerprint = fingerprint

    def _window(self, number: int) -> str:
        return f"{self.path}/window-{number:06d}.json"

    def load(self, number: int) -> tuple[list[RecordOutcome], int, int] | None:
        try:
            with open_path(self._window(number)) as handle:
                saved = json.loads(handle.read())
        except (HubSpotInputError, FileNotFoundError, ValueError):
            return None
        if saved.get("fingerprint") != self.fingerprint:
            return None
        return [RecordOutcome(**item) for item in saved["outcomes"]], saved["batches"], saved["requests"]

    def save(self, number: int, outcomes: Sequence[RecordOutcome], batches: int, requests: int) -> None:
        payload = {"fingerprint": self.fingerprint, "batches": batches, "requests": requests,
                   "outcomes": [asdict(outcome) for outcome in outcomes]}
        temporary = self._window(number) + ".tmp"
        with open_path(temporary, "wb") as handle:
            handle.write(json.dumps(payload, default=str).encode())
        _rename(temporary, self._window(number))

    def clear(self) -> None:
        if "://" in self.path:
            from airflow.sdk import ObjectStoragePath

            directory: Any = ObjectStoragePath(self.path)
        else:
            directory = Path(self.path)
        if not directory.exists():
            return
        for item in directory.iterdir():
            if item.name.startswith("window-"):
                item.unlink()
        if not any(directory.iterdir()):
            directory.rmdir()


def _rename(source: str, target: str) -> None:
    """Publish a checkpoint whole: a reader never sees half of one."""
    if "://" in source:
        from airflow.sdk import ObjectStoragePath

        ObjectStoragePath(source).rename(ObjectStoragePath(target))
    else:
        os.replace(source, target)


def fingerprint(records: Any, settings: dict[str, Any]) -> str:
    """What makes a checkpoint valid: the same input (path, size, mtime) and the same settings."""
    source: Any
    if isinstance(records, (str, os.PathLike)) and "://" not in str(records) and os.path.exists(records):
        stat = os.stat(records)
        source = [str(records), stat.st_size, stat.st_mtime_ns]
    elif isinstance(records, (str, os.PathLike)):
        source = str(records)
    else:
        source = repr(type(records))
        try:
            source = hashlib.sha256(json.dumps(records, default=str, sort_keys=True).encode()).hexdigest() \
                if isinstance(records, list) else hashlib.sha256(
                    records.to_json().encode()).hexdigest()  # DataFrame
        except (TypeError, AttributeError, ValueError):
            pass
    return hashlib.sha256(json.dumps([source, settings], default=str, sort_keys=True).encode()).hexdigest()[:32]


def write_reports(tally: Tally, failures_path: str | None, id_map_path: str | None) -> None:
    if failures_path is not None:
        write_failure_report(failures_path, sorted(tally.failures, key=lambda row: row.input_row))
    if id_map_path is not None:
        write_id_map(id_map_path, sorted(tally.id_map))


def summary(operation: str, tally: Tally, failures_path: str | None, id_map_path: str | None) -> dict[str, Any]:
    if tally.succeeded + tally.failed != tally.records:  # every input row ends in exactly one place
        raise RuntimeError(f"{operation}: {tally.succeeded} succeeded + {tally.failed} failed != {tally.records} records")
    return {
        "operation": operation,
        "records": tally.records,
        "succeeded": tally.succeeded,
        "failed": tally.failed,
        "created": tally.created,
        "updated": tally.updated,
        "batches": tally.batches,
        "requests": tally.requests,
        "failures_path": failures_path,
        "id_map_path": id_map_path,
    }


def policy_breach(tally: Tally, max_failed_records: int | None, max_failed_ratio: float | None) -> str | None:
    """A message when the failures exceed what the task tolerates, else None."""
    if not tally.failed:
        return None
    if max_failed_ratio is not None:
        ratio = tally.failed / max(tally.records, 1)
        if ratio <= max_failed_ratio:
            return None
        limit = f"max_failed_ratio {max_failed_ratio:.2%} (got {ratio:.2%})"
    else:
        if tally.failed <= (max_failed_records or 0):
            return None
        limit = f"max_failed_records {max_failed_records or 0}"
    top = ", ".join(f"{category} ×{count}" for category, count in Counter(
        row.category or "UNKNOWN" for row in tally.failures).most_common(3))
    return f"{tally.failed} of {tally.records} records failed, past {limit}; top errors: {top}"


def duplicate_positions(keys: Iterator[tuple[int, str | None]]) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Keys that appear more than once (→ every row number holding them) and the last row of each key."""
    rows: dict[str, list[int]] = {}
    for row, key in keys:
        if key is not None:
            rows.setdefault(key, []).append(row)
    duplicates = {key: positions for key, positions in rows.items() if len(positions) > 1}
    return duplicates, {key: positions[-1] for key, positions in duplicates.items()}
