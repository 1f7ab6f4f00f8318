"""The ledger contract: which stream files were processed, claimed or failed."""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from music_etl.logic.counts import FileCounts


class FileStatus(StrEnum):
    """Where a file stands in `ProcessedStreams`; the values are what the tables store."""

    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"


CLAIMED = FileStatus.CLAIMED
DONE = FileStatus.DONE
FAILED = FileStatus.FAILED


class RunStatus(StrEnum):
    """How a run ended, in `Runs` and the run artifact; the values are what they store.

    `Runs` (`status`) says `failed` for a run that rejected an input; the run artifact
    says `rejected` for it and keeps `failed` for a run stopped by an error.
    """

    OK = "ok"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class FileRecord:
    """One row of `ProcessedStreams`."""

    file_key: str
    content_hash: str
    status: FileStatus
    owner: str = ""
    lease_until: float = 0.0
    timestamp: str = ""
    """When the status last changed (UTC ISO-8601)."""
    processed_at: str = ""
    """The processing clock the file was validated against (for `rebuild`)."""
    rows_in: int = 0
    rows_valid: int = 0
    rows_bad: int = 0
    bad_by_reason: dict[str, int] = field(default_factory=dict)
    days: tuple[str, ...] = ()
    """Listen dates with rows of this file (while claimed: every day it may have written)."""
    error: str = ""
    retryable: bool = False
    judged_against: dict[str, str] = field(default_factory=dict)
    """A failure its cause's fix may undo: what the rows were judged against
    (`users`/`songs`: the raw file's content hash; `clock`: the processing clock).
    Empty for a failure on the file's own content (see `pipeline.retry`)."""

    @property
    def counts(self) -> FileCounts:
        """The file's counts as the engines and run reports hold them.

        The counters stay flat attributes here: they are the persisted attributes of
        `ProcessedStreams` (`rows_bad` included, stored for readers of the table).
        """
        return FileCounts(
            rows_in=self.rows_in,
            rows_valid=self.rows_valid,
            bad_by_reason=self.bad_by_reason,
            days=self.days,
        )


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One `run` or `rebuild`, for `status`."""

    run_id: str
    started: str
    finished: str
    files: int
    rows_in: int
    rows_valid: int
    rows_bad: int
    days: int
    status: RunStatus


class Ledger(Protocol):
    """Conditional writes so that two runners never process one file."""

    def get(self, file_key: str) -> FileRecord | None:
        """The record of `file_key`, if any."""
        ...

    def close(self) -> None:
        """Release what the backend holds (connections, clients); idempotent."""
        ...

    def records(self) -> list[FileRecord]:
        """Every record, oldest change first."""
        ...

    def version(self) -> str:
        """A token that moves when the ledger may have changed (any writer, this one too).

        Answers read from the ledger may be kept while it holds (`serve`). SQLite moves it
        at once; a backend without a cheap change token moves it at least every few
        seconds (DynamoDB: `VERSION_SECONDS`), which bounds how stale a kept answer is.
        """
        ...

    def claim(self, file_key: str, content_hash: str, owner: str, lease_seconds: int) -> bool:
        """Claim the file unless it is done with this hash, failed for good, or claimed live."""
        ...

    def save(self, record: FileRecord) -> None:
        """Write `record`; raises `ClaimLost` unless `record.owner` still holds the claim."""
        ...

    def unclaim(self, file_key: str, owner: str, previous: FileRecord | None) -> None:
        """Undo `owner`'s claim: put `previous` back (None: no record), if the claim still holds."""
        ...

    def acquire_lock(self, name: str, owner: str, lease_seconds: int) -> bool:
        """Take or renew the named lock; False while another live owner holds it."""
        ...

    def release_lock(self, name: str, owner: str) -> None:
        """Give the lock up if `owner` holds it."""
        ...

    def add_run(self, run: RunRecord) -> None:
        """Remember a finished run."""
        ...

    def runs(self, limit: int) -> list[RunRecord]:
        """The latest runs, newest first."""
        ...

    def forget_files(self) -> None:
        """Drop every file record (for `rebuild`, which recreates them)."""
        ...

    def mark_retryable(self, file_key: str) -> bool:
        """Let the next run claim a failed file again; True if it is now failed and retryable.

        A conditional write: a file that is done, claimed or unknown is left as it is.
        """
        ...


def new_owner() -> str:
    """An owner id naming this host and process, unique per call."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """Whether `owner` is a process on this host that no longer runs.

    Leases guard other hosts; on this host a dead process frees its claims at once,
    so a run after a crash carries on without waiting for the lease.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def is_claimable(record: FileRecord | None, content_hash: str, now: float) -> bool:
    """The claim rule every ledger backend applies inside its conditional write."""
    if record is None:
        return True
    if record.status == CLAIMED:
        return record.lease_until < now or owner_is_dead(record.owner)
    if record.content_hash != content_hash:
        return True
    return record.status == FAILED and record.retryable


def lock_is_free(owner_now: str, held_by: str, lease_until: float, now: float) -> bool:
    """Whether a lock held by `held_by` may be taken by `owner_now`."""
    return held_by in ("", owner_now) or lease_until < now or owner_is_dead(held_by)


def utcnow() -> str:
    """The wall clock as UTC ISO-8601 to the second, for `FileRecord.timestamp`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
