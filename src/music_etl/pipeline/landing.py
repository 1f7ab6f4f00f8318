"""What in the landing zone is a stream file to take now, what waits, and what is skipped.

The policy (docs/data-contract.md, "The landing zone"):

- a stream file is a regular file under `raw/streams/` whose name ends in `.csv`;
- a name (or a folder on its path) starting with `.` or `_` is hidden: a writer's
  temporary, as Hadoop, Spark and file-drop tools treat it; write there, then rename;
- links are not followed and special files (FIFOs, sockets, devices) are never opened;
- on a local folder a file is taken once its size and mtime stayed unchanged for
  `settle_seconds` (a copy still in progress waits); S3 writes are atomic, so no wait.

Skipped entries are not errors: `status` lists them with their reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from music_etl.adapters.storage.base import ListsIrregular, ObjectInfo, Storage
from music_etl.logic import layout

#: Markers `init` writes: neither taken nor reported.
_OWN_MARKERS = frozenset({".keep"})
_KIND_REASONS = {
    "symlink": "a link: links are not followed",
    "fifo": "a FIFO: special files are never read",
    "socket": "a socket: special files are never read",
    "device": "a device: special files are never read",
    "other": "not a regular file",
}
HIDDEN = "hidden name (starts with . or _): rename it once it is complete"
NOT_CSV = "not a .csv file"


@dataclass(frozen=True, kw_only=True)
class Skipped:
    """A landing-zone entry that is not taken, and why."""

    key: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Landing:
    """The landing zone as one look saw it."""

    ready: list[ObjectInfo]
    """Stream files to take, in key order."""
    waiting: list[ObjectInfo]
    """Stream files still changing (settling); taken by a later run."""
    skipped: list[Skipped]


def scan(storage: Storage, settle_seconds: float, now: Callable[[], float] = time.time) -> Landing:
    """Classify every entry under `raw/streams/` once."""
    ready: list[ObjectInfo] = []
    waiting: list[ObjectInfo] = []
    skipped = [Skipped(key=key, reason=_KIND_REASONS[kind]) for key, kind in _irregular(storage)]
    for info in storage.list(layout.RAW_STREAMS):
        reason = _name_problem(info.key)
        if reason == "own":
            continue
        if reason:
            skipped.append(Skipped(key=info.key, reason=reason))
        elif settled(info, settle_seconds, now()):
            ready.append(info)
        else:
            waiting.append(info)
    return Landing(ready=ready, waiting=waiting, skipped=sorted(skipped, key=lambda s: s.key))


def scan_settled(
    storage: Storage,
    settle_seconds: float,
    *,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Landing:
    """`scan`, waiting once (at most `settle_seconds`) for files that are still settling.

    A one-shot `run` right after a copy finished then still takes the file; one that
    keeps changing is left waiting for the next run.
    """
    first = scan(storage, settle_seconds, now)
    if not first.waiting:
        return first
    newest = max(info.modified or 0.0 for info in first.waiting)
    sleep(min(settle_seconds, max(0.0, newest + settle_seconds - now())) + 0.05)
    second = scan(storage, settle_seconds, now)
    sizes = {(info.key, info.size, info.modified) for info in first.waiting}
    # Unchanged across the wait (same size and mtime) counts as settled even if the
    # file's clock is skewed into the future.
    late = [info for info in second.waiting if (info.key, info.size, info.modified) in sizes]
    return Landing(
        ready=sorted([*second.ready, *late], key=lambda i: i.key),
        waiting=[info for info in second.waiting if info not in late],
        skipped=second.skipped,
    )


def settled(info: ObjectInfo, settle_seconds: float, now: float) -> bool:
    """Whether nobody wrote `info` for `settle_seconds` (always, where writes are atomic)."""
    return info.modified is None or now - info.modified >= settle_seconds


def _name_problem(key: str) -> str:
    rest = key.removeprefix(layout.RAW_STREAMS)
    parts = rest.split("/")
    if parts[-1] in _OWN_MARKERS:
        return "own"
    if any(part.startswith((".", "_")) for part in parts):
        return HIDDEN
    return "" if layout.is_stream_file(key) else NOT_CSV


def _irregular(storage: Storage) -> Sequence[tuple[str, str]]:
    if isinstance(storage, ListsIrregular):
        return list(storage.irregular(layout.RAW_STREAMS))
    return []  # S3 holds objects only
