"""The lake storage contract: a flat key space with atomic, deterministic writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, kw_only=True)
class ObjectInfo:
    """One object under a prefix."""

    key: str
    size: int
    modified: float | None = None
    """When the object last changed (epoch seconds) where a writer may still be growing it
    (a local folder); None where every write is atomic (S3)."""


class Storage(Protocol):
    """A lake: keys like `raw/streams/a.csv` relative to the lake root.

    Writes are atomic: a reader sees the old object or the new one, never half.
    """

    root: str

    def close(self) -> None:
        """Release what the backend holds (connections, clients); idempotent."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in key order."""
        ...

    def exists(self, key: str) -> bool:
        """Whether `key` holds an object."""
        ...

    def read_bytes(self, key: str) -> bytes:
        """The whole object."""
        ...

    def write_bytes(self, key: str, data: bytes) -> None:
        """Create or replace `key` atomically."""
        ...

    def writer(self, key: str) -> AbstractContextManager[Path]:
        """A local path to write; on clean exit it becomes `key` atomically."""
        ...

    def local_copy(self, key: str) -> AbstractContextManager[Path]:
        """A local file with the object's bytes, for readers that need a path."""
        ...

    def uri(self, key: str) -> str:
        """The address engines read `key` at (a local path or an `s3://` URI)."""
        ...

    def content_hash(self, key: str) -> str:
        """A fingerprint that changes when the content changes."""
        ...

    def fingerprint(self, key: str) -> str:
        """A cheap token that changes whenever the object's bytes may have changed."""
        ...

    def move(self, src: str, dst: str, *, if_fingerprint: str = "") -> None:
        """Put `src`'s object at `dst` (replacing it) and remove `src`.

        With `if_fingerprint`, only the object that had that fingerprint is moved;
        `SourceChanged` is raised (and `src` left where it is) when it is another one.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""
        ...


@runtime_checkable
class LeavesTemporaries(Protocol):
    """A capability: storage whose interrupted writes can leave temp files behind."""

    def sweep_temporaries(self) -> int:
        """Delete temp files of interrupted writes; only safe under the lake lock."""
        ...


@runtime_checkable
class ListsIrregular(Protocol):
    """A capability: storage that can hold entries which are not objects (links, FIFOs)."""

    def irregular(self, prefix: str) -> Iterator[tuple[str, str]]:
        """(key, kind) of each entry under `prefix` that is not a regular file."""
        ...
