"""Checkpoints of a write operator's windows, so a retried task — on any worker — resumes instead of
starting over, and knows which window was being sent when the previous attempt stopped."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from airflow_provider_appointments.api.results import RecordOutcome
from airflow_provider_appointments.errors import HubSpotInputError
from airflow_provider_appointments.records.readers import open_path


@dataclass(frozen=True)
class WindowResult:
    """One outcome per row of a window (indexed by input row), and what sending it cost."""

    outcomes: list[RecordOutcome]
    batches: int = 0
    requests: int = 0


class Checkpoint:
    """Two small objects per window under `path` (object stores cannot append): ``started`` is written
    before the window's first request, ``done`` with its outcomes after its last. A retried task — on
    any worker that can read `path` — skips done windows and reconciles a started one."""

    def __init__(self, path: str, fingerprint: str) -> None:
        self.path = path.rstrip("/")
        self.fingerprint = fingerprint

    def _file(self, number: int, state: str) -> str:
        return f"{self.path}/window-{number:06d}.{state}.json"

    def _read(self, number: int, state: str) -> dict | None:
        try:
            with open_path(self._file(number, state)) as handle:
                saved = json.loads(handle.read())
        except (HubSpotInputError, FileNotFoundError, ValueError):
            return None
        return saved if saved.get("fingerprint") == self.fingerprint else None

    def _write(self, number: int, state: str, payload: dict) -> None:
        target = self._file(number, state)
        with open_path(target + ".tmp", "wb") as handle:
            handle.write(json.dumps({"fingerprint": self.fingerprint, **payload}, default=str).encode())
        _rename(target + ".tmp", target)

    def load(self, number: int) -> WindowResult | None:
        """The outcomes of a finished window, or None."""
        saved = self._read(number, "done")
        if saved is None:
            return None
        return WindowResult([RecordOutcome(**item) for item in saved["outcomes"]], saved["batches"], saved["requests"])

    def started(self, number: int) -> int | None:
        """When an attempt started sending this window (epoch ms), or None."""
        saved = self._read(number, "started")
        return int(saved["started_ms"]) if saved else None

    def start(self, number: int, started_ms: int) -> None:
        self._write(number, "started", {"started_ms": started_ms})

    def save(self, number: int, result: WindowResult) -> None:
        self._write(number, "done", {"batches": result.batches, "requests": result.requests,
                                     "outcomes": [asdict(outcome) for outcome in result.outcomes]})

    def scan(self) -> tuple[int, list[int]]:
        """(windows done, windows started but not done) by earlier attempts, for the log."""
        directory = _directory(self.path)
        if not directory.exists():
            return 0, []
        names = {item.name for item in directory.iterdir()}
        done = {name.split(".")[0] for name in names if name.endswith(".done.json")}
        started = sorted(int(name.split(".")[0].split("-")[1]) for name in names
                         if name.endswith(".started.json") and name.split(".")[0] not in done)
        return len(done), [number for number in started if self.started(number) is not None]

    def clear(self) -> None:
        directory = _directory(self.path)
        if not directory.exists():
            return
        for item in directory.iterdir():
            if item.name.startswith("window-"):
                item.unlink()
        if not any(directory.iterdir()):
            directory.rmdir()


def _directory(path: str) -> Any:
    if "://" in path:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(path)
    return Path(path)


def _rename(source: str, target: str) -> None:
    """Publish a checkpoint whole: a reader never sees half of one."""
    if "://" in source:
        from airflow.sdk import ObjectStoragePath

        ObjectStoragePath(source).rename(ObjectStoragePath(target))
    else:
        os.replace(source, target)
