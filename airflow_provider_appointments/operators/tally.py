"""The running totals of one write run, its XCom summary, and the failure policy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_appointments.api.results import RecordOutcome
from airflow_provider_appointments.operators.windows import row_of
from airflow_provider_appointments.records.reports import FailureRow


@dataclass
class Tally:
    """Running totals of one operator run; only failures and id-map rows are kept, not every outcome."""

    records: int = 0
    succeeded: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    batches: int = 0
    requests: int = 0
    failures: list[FailureRow] = field(default_factory=list)
    id_map: list[tuple[int, str | None, str | None, bool | None]] = field(default_factory=list)
    # Failures of work no input row names (a sync's archives): reported and counted, not records.
    other_failures: list[FailureRow] = field(default_factory=list)

    def add(self, outcomes: Sequence[RecordOutcome], keep_id_map: bool) -> None:
        for outcome in outcomes:
            self.records += 1
            if outcome.succeeded:
                self.succeeded += 1
                self.created += outcome.new is True
                self.updated += outcome.new is False and not outcome.unchanged
                self.unchanged += outcome.unchanged
                if keep_id_map:
                    self.id_map.append((row_of(outcome), outcome.key, outcome.hubspot_id, outcome.new))
            else:
                self.failures.append(FailureRow(row_of(outcome), outcome.key, outcome.status, outcome.category,
                                                outcome.message, outcome.context, outcome.correlation_id))

    @property
    def failed(self) -> int:
        """Input rows that failed (what the failure policy counts)."""
        return len(self.failures)


def summary(operation: str, tally: Tally, failures_path: str | None, id_map_path: str | None) -> dict[str, Any]:
    if tally.succeeded + tally.failed != tally.records:  # every input row ends in exactly one place
        raise RuntimeError(f"{operation}: {tally.succeeded} succeeded + {tally.failed} failed "
                           f"!= {tally.records} records")
    return {
        "operation": operation,
        "records": tally.records,
        "succeeded": tally.succeeded,
        "failed": tally.failed,
        "created": tally.created,
        "updated": tally.updated,
        "unchanged": tally.unchanged,
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


WARNED_ROWS = 20  # failed rows logged one by one; the rest are counted per category


def warn_failures(log: Any, failures: list[FailureRow]) -> None:
    """The first failed rows one line each, then one line per category for the rest: the failure report
    has them all, and 5,000 warning lines help nobody."""
    for row in failures[:WARNED_ROWS]:
        log.warning("row %s (%s) failed: %s %s", row.input_row, row.input_key, row.category, row.message)
    rest = Counter(row.category for row in failures[WARNED_ROWS:])
    for category, count in sorted(rest.items(), key=lambda item: -item[1]):
        log.warning("… and %d more rows failed %s (all of them are in the failure report)", count, category)
