"""Where files live: a local path or any URI Airflow's ObjectStoragePath understands (``s3://``, ``gs://``,
``file://``, ``memory://`` …), and how a file others read is published: written under a temporary name
beside its final one and moved into place only when whole, so a reader sees the old file or the new
one, never half of one."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from airflow_provider_appointments.errors import HubSpotInputError


def is_uri(path: str | os.PathLike | Any) -> bool:
    """A URI (``scheme://…``) rather than a local path."""
    return "://" in str(path)


def location(path: str | os.PathLike) -> Any:
    """A `Path` for a local path (``~`` expanded), an ``ObjectStoragePath`` for a URI."""
    if is_uri(path):
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(str(path))
    return Path(str(path)).expanduser()


def open_path(path: str | os.PathLike, mode: str = "rb") -> Any:
    """Open a local path or a URI; writing creates the parent folders, reading a missing file says so."""
    target = location(path)
    if "w" in mode:
        target.parent.mkdir(parents=True, exist_ok=True)
    elif not target.exists():
        raise HubSpotInputError(f"input file {path} does not exist")
    return target.open(mode)


def exists(path: str | os.PathLike) -> bool:
    return bool(location(path).exists())


def remove(path: str | os.PathLike) -> None:
    """Delete a file; a file that is not there is fine."""
    with contextlib.suppress(FileNotFoundError):
        location(path).unlink()


def temporary_sibling(path: str | os.PathLike) -> str:
    """A name in the same folder that readers of the folder skip (a leading dot, as Spark, pyarrow
    datasets and DuckDB globs do), unique to this writer."""
    text = str(path)
    folder, _, name = text.rpartition("/")
    hidden = f".{name}.{uuid.uuid4().hex[:12]}.tmp"
    return f"{folder}/{hidden}" if folder else hidden


def move_into_place(source: str, target: str) -> None:
    """Rename `source` to `target`, replacing it (atomic on a local file system; on object storage a
    copy then a delete, after which the target is whole)."""
    if is_uri(target):
        location(source).rename(location(target))
    else:
        os.replace(Path(source).expanduser(), Path(target).expanduser())


class Publication:
    """A file being written under a temporary name: `commit()` moves it to its final path, `abort()`
    deletes it. Use `published` for a block of code; this class for a writer that outlives one block."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        self.temporary = temporary_sibling(self.path)
        self.handle: IO[bytes] = open_path(self.temporary, "wb")
        self.done = False

    def commit(self) -> None:
        self.handle.close()
        move_into_place(self.temporary, self.path)
        self.done = True

    def abort(self) -> None:
        if self.done:
            return
        with contextlib.suppress(Exception):
            self.handle.close()
        remove(self.temporary)
        self.done = True


@contextlib.contextmanager
def published(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary handle whose content appears at `path` only if the block completes."""
    publication = Publication(path)
    try:
        yield publication.handle
        publication.commit()
    except BaseException:
        publication.abort()
        raise
