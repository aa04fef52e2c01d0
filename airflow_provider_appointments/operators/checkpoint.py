"""Checkpoints of a write operator, so a retried task — on any worker that can read them — resumes
instead of starting over, and knows exactly which requests were in flight when the previous attempt
stopped.

Object stores cannot append, so the journal is small objects, each published whole:

- ``window-000003.done.json``: every outcome of a finished window (its request records are then deleted);
- ``window-000003.<attempt>-00012.sending.json``: the input rows of one request, written before it is sent;
- ``window-000003.<attempt>-00012.settled.json``: their outcomes, written when its answer is known.

After a kill, a row with a ``settled`` record keeps its outcome, a row in a ``sending`` record without
one was in flight (at most ``concurrency × batch_size`` rows), and every other row was never sent.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from airflow_provider_appointments.api.results import RecordOutcome, at_input_rows, is_transient
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.sql import clear_materialized
from airflow_provider_appointments.records.storage import is_uri, location, open_path, published, remove

log = logging.getLogger(__name__)
FINISHED = "finished"
LAYOUT = "layout"
CONFIG_SECTION = "hubspot"
CONFIG_OPTION = "checkpoint_base"
# Executors whose retries run on the same machine as the first try: a local checkpoint is seen again.
SAME_MACHINE_EXECUTORS = ("LocalExecutor", "SequentialExecutor", "DebugExecutor")


@dataclass(frozen=True)
class WindowResult:
    """One outcome per row of a window (indexed by input row), and what sending it cost."""

    outcomes: list[RecordOutcome]
    batches: int = 0
    requests: int = 0


@dataclass
class WindowProgress:
    """What earlier attempts did in a window they did not finish.

    :param settled: outcomes of the rows whose request was answered, by input row.
    :param in_flight: rows of requests sent but never answered: they may have been written.
    :param since: epoch ms of the earliest of those requests (a record created after it by one of
        these rows was created by that attempt).
    :param requests: requests those attempts sent; ``answered``: how many of them were answered.
    """

    settled: dict[int, RecordOutcome] = field(default_factory=dict)
    in_flight: frozenset[int] = frozenset()
    since: int | None = None
    requests: int = 0
    answered: int = 0


class RequestJournal:
    """The `ChunkObserver` of one batch call: maps the call's positions to input rows and records each
    request as it is sent and as it is answered."""

    def __init__(self, checkpoint: Checkpoint, window: int, rows: list[int]) -> None:
        self.checkpoint = checkpoint
        self.window = window
        self.rows = rows
        self._names: dict[int, str] = {}
        self._lock = threading.Lock()

    def sending(self, positions: list[int]) -> None:
        name = self.checkpoint.request_name(self.window)
        with self._lock:
            self._names[positions[0]] = name
        self.checkpoint.write(f"{name}.sending", {"rows": [self.rows[p] for p in positions],
                                                 "started_ms": int(time.time() * 1000)})

    def settled(self, outcomes: list[RecordOutcome]) -> None:
        if not outcomes:
            return
        with self._lock:
            name = self._names.pop(min(outcome.index for outcome in outcomes))
        self.checkpoint.write(f"{name}.settled", {"outcomes": [_as_dict(outcome) for outcome in
                                                               at_input_rows(outcomes, self.rows)]})


class Checkpoint:
    """The journal of one task instance's write under `path` (a folder or a URI).

    :param fingerprint: what makes it valid (the same input and settings): records with another are ignored.
    :param task_fingerprint: what the task-level records (its window size, its finished summary) are valid
        for, when that is less than the windows' (a SQL source: the same query, whatever it answers now).
    """

    def __init__(self, path: str, fingerprint: str, task_fingerprint: str | None = None) -> None:
        self.path = path.rstrip("/")
        self.fingerprint = fingerprint
        self.task_fingerprint = task_fingerprint or fingerprint
        self.attempt = uuid.uuid4().hex[:8]
        self._sequence = itertools.count()
        self._requests: dict[int, dict[str, set[str]]] | None = None
        self._done: set[int] = set()

    # -- files ---------------------------------------------------------------------------------
    def _file(self, name: str) -> str:
        return f"{self.path}/{name}.json"

    def request_name(self, window: int) -> str:
        return f"window-{window:06d}.{self.attempt}-{next(self._sequence):06d}"

    def for_content(self, digest: str) -> Checkpoint:
        """This checkpoint with its windows valid only for input whose content has this digest (a SQL
        source's answer): a retry whose query answers otherwise starts its windows afresh, as one whose
        input file changed does."""
        combined = hashlib.sha256(f"{self.task_fingerprint}:{digest}".encode()).hexdigest()[:32]
        return Checkpoint(self.path, combined, task_fingerprint=self.task_fingerprint)

    def _fingerprint_of(self, name: str) -> str:
        return self.task_fingerprint if name in (FINISHED, LAYOUT) else self.fingerprint

    def write(self, name: str, payload: dict) -> None:
        with published(self._file(name)) as handle:
            handle.write(json.dumps({"fingerprint": self._fingerprint_of(name), **payload}, default=str).encode())

    def _read(self, name: str) -> dict | None:
        try:
            with open_path(self._file(name)) as handle:
                saved = json.loads(handle.read())
        except (HubSpotInputError, FileNotFoundError, ValueError):
            return None
        return saved if saved.get("fingerprint") == self._fingerprint_of(name) else None

    def _names(self) -> list[str]:
        folder = location(self.path)
        if not folder.exists():
            return []
        return [item.name[:-len(".json")] for item in folder.iterdir()
                if item.name.startswith("window-") and item.name.endswith(".json")]

    def scan(self) -> tuple[int, list[int]]:
        """Read the journal once: (windows done, windows with requests from an unfinished attempt)."""
        self._requests = {}
        self._done = set()
        for name in self._names():
            window, _, rest = name.partition(".")
            number = int(window.split("-")[1])
            if rest == "done":
                self._done.add(number)
            elif rest.endswith((".sending", ".settled")):
                request, _, state = rest.rpartition(".")
                self._requests.setdefault(number, {}).setdefault(request, set()).add(state)
        return len(self._done), sorted(set(self._requests) - self._done)

    # -- windows -------------------------------------------------------------------------------
    def load(self, number: int) -> WindowResult | None:
        """The outcomes of a finished window, or None."""
        if self._requests is not None and number not in self._done:
            return None
        saved = self._read(f"window-{number:06d}.done")
        if saved is None:
            return None
        if "columns" in saved:
            columns = saved["columns"]
            outcomes = [RecordOutcome(*values) for values in zip(*(columns[name] for name in _OUTCOME_FIELDS))]
        else:  # a checkpoint written before outcomes were saved column by column
            outcomes = [RecordOutcome(**item) for item in saved["outcomes"]]
        return WindowResult(outcomes, saved["batches"], saved["requests"])

    def window_rows(self, wanted: int) -> int:
        """The window size of this checkpoint: the first try's, kept for every retry (the records name
        windows by number, so a retry with another `window_rows` or `concurrency` reads them as the
        first try cut them)."""
        saved = self._read(LAYOUT)
        if saved is not None:
            return int(saved["window_rows"])
        self.write(LAYOUT, {"window_rows": wanted})
        return wanted

    def finish(self, summary: dict[str, Any]) -> None:
        """The task succeeded with this summary: a try that finds it sends nothing (written before
        the window records are deleted, and deleted last)."""
        self.write(FINISHED, {"summary": summary})

    def finished(self) -> dict[str, Any] | None:
        saved = self._read(FINISHED)
        return saved["summary"] if saved else None

    def progress(self, number: int, resendable: Callable[[RecordOutcome], bool] = is_transient) -> WindowProgress:
        """What unfinished attempts did in this window (nothing when none did)."""
        if self._requests is None:
            self.scan()
        requests = (self._requests or {}).get(number, {})
        progress = WindowProgress()
        in_flight: set[int] = set()
        for request, states in sorted(requests.items()):
            prefix = f"window-{number:06d}.{request}"
            sending = self._read(f"{prefix}.sending") if "sending" in states else None
            settled = self._read(f"{prefix}.settled") if "settled" in states else None
            if settled is not None:
                progress.answered += 1
                for item in settled["outcomes"]:
                    outcome = RecordOutcome(**item)
                    if not resendable(outcome):  # a transient failure is sent again, not replayed
                        progress.settled[int(item["input_row"])] = outcome
            elif sending is not None:
                in_flight.update(int(row) for row in sending["rows"])
                started = int(sending["started_ms"])
                progress.since = started if progress.since is None else min(progress.since, started)
            progress.requests += sending is not None
        progress.in_flight = frozenset(in_flight - set(progress.settled))
        return progress

    def journal(self, number: int, rows: list[int]) -> RequestJournal:
        return RequestJournal(self, number, rows)

    def save(self, number: int, result: WindowResult) -> None:
        """The window is finished: its outcomes in one record, its request records gone."""
        # Column by column: a window of 50,000 outcomes is written (and read) in a fraction of the time.
        columns = {name: [getattr(outcome, name) for outcome in result.outcomes] for name in _OUTCOME_FIELDS}
        self.write(f"window-{number:06d}.done", {"batches": result.batches, "requests": result.requests,
                                                 "columns": columns})
        self._done.add(number)
        prefix = f"window-{number:06d}."
        for name in self._names():
            if name.startswith(prefix) and not name.endswith(".done"):
                remove(self._file(name))

    def clear(self) -> None:
        """The task succeeded: nothing is left to resume (temporaries a killed attempt left included)."""
        folder = location(self.path)
        if not folder.exists():
            return
        clear_materialized(self.path)  # a SQL source's copy
        for item in folder.iterdir():
            if item.name.startswith(("window-", ".window-", f".{FINISHED}", LAYOUT, f".{LAYOUT}")):
                remove(f"{self.path}/{item.name}")
        remove(self._file(FINISHED))  # last: a kill before this leaves the task finished, not redone
        if not any(folder.iterdir()):
            folder.rmdir()


_OUTCOME_FIELDS = tuple(item.name for item in fields(RecordOutcome))


def _as_dict(outcome: RecordOutcome) -> dict[str, Any]:
    """An outcome as JSON-ready fields (a shallow copy: `asdict`'s deep copy costs seconds per 100,000)."""
    return {name: getattr(outcome, name) for name in _OUTCOME_FIELDS}


def fingerprint(records: Any, settings: dict[str, Any]) -> str:
    """What makes a checkpoint valid: the same input (path, size, mtime, or content) and the same settings."""
    source: Any
    if isinstance(records, (str, os.PathLike)) and not is_uri(records) and os.path.exists(records):
        stat = os.stat(records)
        source = [str(records), stat.st_size, stat.st_mtime_ns]
    elif isinstance(records, (str, os.PathLike)):
        source = str(records)
    elif isinstance(records, pd.DataFrame):
        try:  # row by row, in order
            digest = hashlib.sha256(pd.util.hash_pandas_object(records, index=True).to_numpy().tobytes())
        except TypeError:  # unhashable cells, such as the lists of a multi-select column
            digest = hashlib.sha256(records.to_json(orient="split", default_handler=str).encode())
        source = digest.hexdigest() + repr(list(records.columns))
    else:
        source = hashlib.sha256(json.dumps(records, default=str, sort_keys=True).encode()).hexdigest()
    return hashlib.sha256(json.dumps([source, settings], default=str, sort_keys=True).encode()).hexdigest()[:32]


def checkpoint_base() -> tuple[str, bool]:
    """Where default checkpoints go: ``[hubspot] checkpoint_base`` (AIRFLOW__HUBSPOT__CHECKPOINT_BASE),
    else ``$AIRFLOW_HOME/hubspot_checkpoints``; and whether that is the built-in default."""
    from airflow.sdk import conf

    configured = conf.get(CONFIG_SECTION, CONFIG_OPTION, fallback=None)
    if configured:
        return configured.rstrip("/"), False
    return f"{location(os.environ.get('AIRFLOW_HOME', '~/airflow'))}/hubspot_checkpoints", True


def default_checkpoint_path(dag_id: str, run_id: str, task_id: str, map_index: int | None) -> str:
    """One folder per task instance (dag, run, task, map index): every try of it, and only it, shares it."""
    base, _ = checkpoint_base()
    suffix = f"/map-{map_index}" if map_index is not None and map_index >= 0 else ""
    return f"{base}/{_segment(dag_id)}/{_segment(run_id)}/{_segment(task_id)}{suffix}"


def warn_if_not_shared(path: str, logger: Any) -> None:
    """A local checkpoint helps a retry only if the retry runs on the same machine."""
    if is_uri(path):
        return
    from airflow.sdk import conf

    executor = str(conf.get("core", "executor", fallback="LocalExecutor"))
    if not all(name.strip().split(".")[-1] in SAME_MACHINE_EXECUTORS for name in executor.split(",")):
        logger.warning(
            "checkpoints are on the local disk (%s) but the executor is %s, whose retries may run on another "
            "machine and would not see them. Set [%s] %s (AIRFLOW__HUBSPOT__CHECKPOINT_BASE) to shared "
            "storage such as s3://bucket/hubspot-checkpoints", path, executor, CONFIG_SECTION, CONFIG_OPTION)


def _segment(value: str) -> str:
    """A run or task id as one folder name (``manual__2026-12-01T00:00:00+00:00`` has ':' and '+')."""
    return "".join(char if char.isalnum() or char in "-_.=" else "_" for char in str(value))
