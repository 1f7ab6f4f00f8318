"""`run`: process every pending stream file once, in batches, under the lake lock."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from music_etl.adapters.ledger.base import (
    DONE,
    FAILED,
    FileRecord,
    RunRecord,
    RunStatus,
    new_owner,
)
from music_etl.adapters.serving.base import SkipsBadItems
from music_etl.adapters.storage.base import LeavesTemporaries, ObjectInfo, Storage
from music_etl.errors import LockLost, StorageError
from music_etl.logic import layout
from music_etl.pipeline import artifacts, landing
from music_etl.pipeline.archive import archive
from music_etl.pipeline.artifacts import Totals
from music_etl.pipeline.batch import FileResult, Pending, process_batch, recompute
from music_etl.pipeline.components import LAKE_LOCK, Components, lake_lock, open_components
from music_etl.pipeline.dimensions import DimensionsReport, days_recomputed, refresh_dimensions
from music_etl.pipeline.notify import notify_error, notify_failures
from music_etl.pipeline.progress import Progress, Silent
from music_etl.pipeline.retry import retry_if_fixed
from music_etl.settings import Settings


@dataclass(frozen=True, kw_only=True)
class RunReport:
    """What one run did."""

    run_id: str
    started: str
    finished: str
    files: list[FileResult]
    days: tuple[str, ...]
    dimensions: DimensionsReport
    waiting: tuple[str, ...] = ()
    """Landing files still being written: taken by a later run."""
    skipped: tuple[landing.Skipped, ...] = ()
    """Landing entries that are never taken (hidden names, links, special files)."""
    missing: tuple[str, ...] = ()
    """`rebuild --allow-missing`: processed versions replayed without (their bytes are gone)."""
    flagged_days: dict[str, int] = field(default_factory=dict)
    """Days of this run the serving store loaded without some items it could not write:
    day -> items skipped (DynamoDB; each is logged with its key and reason)."""
    artifact: dict[str, Any] = field(default_factory=dict)
    """The run artifact (`pipeline.artifacts`), as written to `artifact_key`."""
    artifact_key: str = ""
    artifact_error: str = ""
    """Why the artifact could not be written (the run's outcome is unchanged)."""

    @property
    def skipped_items(self) -> int:
        """Items the serving store skipped in this run's days."""
        return sum(self.flagged_days.values())

    @property
    def failed(self) -> list[FileResult]:
        """Files rejected whole."""
        return [f for f in self.files if f.status == FAILED]

    @property
    def processed(self) -> list[FileResult]:
        """Files validated and loaded."""
        return [f for f in self.files if f.status == DONE]

    @property
    def totals(self) -> Totals:
        """The run's row counts, the one set every report of the run shows."""
        return Totals.of(self.files)

    @property
    def rejected_input(self) -> bool:
        """Whether a stream file or a dimension file was rejected (exit code 1)."""
        return bool(self.failed or self.dimensions.rejected)


def run(
    settings: Settings, progress: Progress | None = None, *, notify_errors: bool = True
) -> RunReport:
    """Process every pending stream file of the lake exactly once.

    When files failed and the `notifier` setting names one, it is told which and why; so
    is an error that stops the run (then re-raised), unless `notify_errors` is False
    (`watch` notifies once per streak of errors itself).

    Example:
        >>> report = run(load_settings(lake="./lake"))  # doctest: +SKIP
        >>> len(report.failed)  # doctest: +SKIP
        0
    """
    try:
        with open_components(settings) as components:
            report = run_with(components, progress or Silent())
    except Exception as exc:
        if notify_errors:
            notify_error(settings, exc)
        raise
    # Failure notifications (the `notifier` setting); delivery problems are only logged.
    rejected = [f for f in report.dimensions.files() if f.status == FAILED]
    notify_failures(settings, [*rejected, *report.files], run_id=report.run_id)
    return report


def run_with(
    components: Components,
    progress: Progress,
    extra: Sequence[Pending] = (),
    owner: str = "",
    *,
    command: str = "run",
    flow_id: str = "",
) -> RunReport:
    """`run` on already opened components (tests inject failing fakes here).

    `extra` files are processed before the landing zone's (`rebuild` passes the archive
    and its `owner`, which already holds the lake lock). The run's artifact is written
    under `_state/runs/` whether the run ends or stops on an error (or Ctrl-C), unless it
    never got the lake lock. `flow_id` names the flow the run is a stage of (Glue).
    """
    partial = start(components, progress, command=command, flow_id=flow_id)
    try:
        report = _run_locked(components, progress, extra, owner or new_owner(), partial)
    except BaseException as exc:
        record_failure(components, progress, partial, exc)
        raise
    report = _with_artifact(components, progress, report, partial)
    progress.event(
        "run_finished",
        status=report.artifact["status"],
        files=len(report.files),
        days=len(report.days),
        **asdict_totals(report.totals),
    )
    return report


def start(
    components: Components,
    progress: Progress,
    *,
    command: str,
    flow_id: str = "",
) -> artifacts.Partial:
    """A new run's identity and what it has finished so far, announced by `run_started`."""
    partial = artifacts.Partial(
        run_id=new_run_id(),
        started=_now(),
        clock=components.settings.clock(),
        command=command,
        flow_id=flow_id,
    )
    flow = {"flow_id": flow_id} if flow_id else {}
    progress.event(
        "run_started",
        run_id=partial.run_id,
        command=command,
        clock=partial.clock.isoformat(),
        **flow,
    )
    return partial


def new_run_id() -> str:
    """A fresh run id: 12 hex digits."""
    return uuid.uuid4().hex[:12]


@contextmanager
def held_lock(components: Components, partial: artifacts.Partial, owner: str) -> Iterator[None]:
    """The lake lock, for `partial`'s run: from then on a failure leaves its artifact.

    A run turned away at the lock did nothing: the scheduler's retries leave no artifact.
    """
    with lake_lock(components, owner):
        partial.locked = True
        yield


def _run_locked(
    components: Components,
    progress: Progress,
    extra: Sequence[Pending],
    owner: str,
    partial: artifacts.Partial,
) -> RunReport:
    clock = partial.clock
    with held_lock(components, partial, owner):
        if isinstance(components.storage, LeavesTemporaries):
            components.storage.sweep_temporaries()
        dims = refresh_dimensions(components)
        partial.dimensions = dims.files()
        found = discover(components)
        replayed = {(p.original_key, p.content_hash) for p in extra}
        landed = [p for p in found.pending if (p.key, p.content_hash) not in replayed]
        for batch in batches([*extra, *landed], components.settings.batch_bytes):
            renew_lock(components, owner)
            result = process_batch(components, batch, owner, batch[0].clock or clock, progress)
            partial.files += result.files
            partial.days |= set(result.days)
        if dims.songs_changed:
            renew_lock(components, owner)
            partial.days |= set(recompute(components, all_days(components), progress))
            days_recomputed(components)
    report = RunReport(
        run_id=partial.run_id,
        started=partial.started,
        finished=_now(),
        files=partial.files,
        days=tuple(sorted(partial.days)),
        dimensions=dims,
        waiting=tuple(info.key for info in found.waiting),
        skipped=tuple(found.skipped),
        flagged_days=flagged_days(components, partial.days),
    )
    components.ledger.add_run(_run_record(report))
    return report


def _with_artifact(
    components: Components, progress: Progress, report: RunReport, partial: artifacts.Partial
) -> RunReport:
    """`report` with its artifact, written (a write error is a warning, never a failure)."""
    doc = artifacts.build(report, partial)
    key, error = write_artifact(components, progress, doc)
    return replace(report, artifact=doc, artifact_key=key, artifact_error=error)


def write_artifact(
    components: Components, progress: Progress, doc: dict[str, Any]
) -> tuple[str, str]:
    """Write `doc` and log it; returns its key and the write error (never raised)."""
    key, error = artifacts.write(components.storage, doc)
    _artifact_event(progress, key, error)
    return key, error


def record_failure(
    components: Components, progress: Progress, partial: artifacts.Partial, exc: BaseException
) -> None:
    """Log a run stopped by `exc`; write its `failed` artifact if it got the lake lock.

    A run turned away at the lock (`LockHeld`: another run is at work, the scheduler
    retries) did nothing: an artifact per attempt would only fill `_state/runs/`.
    """
    error = (
        "interrupted (Ctrl-C)"
        if isinstance(exc, KeyboardInterrupt)
        else f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    )
    key = ""
    if partial.locked:
        doc = artifacts.build_failed(partial, error, _now())
        key, _error = write_artifact(components, progress, doc)
    progress.event(
        "run_finished", level="error", status=artifacts.FAILED, error=error, artifact=key
    )


def _artifact_event(progress: Progress, key: str, error: str) -> None:
    if error:
        progress.event(
            "artifact_not_written",
            level="warning",
            artifact=key,
            error=error,
            message=f"run artifact {key} not written ({error}); the run's result stands",
        )
    else:
        progress.event("artifact_written", level="debug", artifact=key)


def asdict_totals(totals: Totals) -> dict[str, Any]:
    """The totals as event fields."""
    return {
        "rows_in": totals.rows_in,
        "rows_valid": totals.valid,
        "rows_loaded": totals.loaded,
        "rows_bad": totals.bad,
        "bad_by_reason": totals.bad_by_reason,
    }


def renew_lock(components: Components, owner: str) -> None:
    """Renew the lake lock between batches; a runner that lost it stops before writing more.

    Losing it means this runner was paused past its lease and another one may be at
    work: what this runner finished is consistent (each batch is), the rest is left.
    """
    if not components.ledger.acquire_lock(LAKE_LOCK, owner, components.settings.lease_seconds):
        raise LockLost(
            f"This run lost the lock on {components.settings.lake} (paused longer than "
            f"lease_seconds={components.settings.lease_seconds}?); another runner holds it. "
            "Nothing was left half-done: run again to process the rest."
        )


@dataclass(frozen=True, kw_only=True)
class Discovery:
    """What a look at the landing zone found."""

    pending: list[Pending]
    waiting: list[ObjectInfo]
    skipped: list[landing.Skipped]


def discover(components: Components) -> Discovery:
    """Stream files in the landing zone that are new or changed, in key order.

    A file already done with the same content is only moved on to the archive
    (a crash between marking it done and archiving it leaves it there). A failed file
    with the same content is taken again only once its cause is fixed (`retry_if_fixed`).
    A file that vanished since the listing is passed over.
    """
    storage = components.storage
    found = landing.scan_settled(storage, components.settings.settle_seconds)
    pending = []
    waiting = list(found.waiting)
    for info in found.ready:
        try:
            digest, fingerprint = _hashed(storage, info.key)
        except StorageError:
            continue  # removed since the listing: nothing to take
        if not fingerprint:
            waiting.append(info)  # written to while it was hashed
            continue
        record = components.ledger.get(info.key)
        if record and record.content_hash == digest and record.status == DONE:
            clock = _record_clock(record) or components.settings.clock()
            archive(storage, info.key, digest, clock, fingerprint=fingerprint)
        elif not _settled_failure(components, record, digest):
            pending.append(
                Pending(key=info.key, content_hash=digest, size=info.size, fingerprint=fingerprint)
            )
    return Discovery(pending=pending, waiting=waiting, skipped=found.skipped)


def _hashed(storage: Storage, key: str) -> tuple[str, str]:
    """The content hash of `key` and the fingerprint of exactly those bytes.

    The fingerprint is empty when the file changed while it was hashed.
    """
    before = storage.fingerprint(key)
    digest = storage.content_hash(key)
    return digest, (before if storage.fingerprint(key) == before else "")


def _settled_failure(components: Components, record: FileRecord | None, digest: str) -> bool:
    """Whether this content already failed and its cause is not fixed (a new version is taken)."""
    return (
        record is not None
        and record.content_hash == digest
        and record.status == FAILED
        and not record.retryable
        and not retry_if_fixed(components, record)
    )


def _record_clock(record: FileRecord) -> datetime | None:
    return datetime.fromisoformat(record.processed_at) if record.processed_at else None


def batches(pending: Sequence[Pending], budget: int) -> Iterator[list[Pending]]:
    """Consecutive groups of files whose sizes add up to at most `budget` (one file at least).

    Files with different clocks, or two versions of one file (during `rebuild`),
    never share a batch.
    """
    batch: list[Pending] = []
    used = 0
    for item in pending:
        clash = any(b.original_key == item.original_key for b in batch)
        if batch and (used + item.size > budget or item.clock != batch[0].clock or clash):
            yield batch
            batch, used = [], 0
        batch.append(item)
        used += item.size
    if batch:
        yield batch


def all_days(components: Components) -> list[str]:
    """Every listen date that has valid rows."""
    keys = (info.key for info in components.storage.list(layout.VALIDATED_STREAMS))
    days = {day.isoformat() for day in map(layout.listen_date_of, keys) if day is not None}
    return sorted(days)


def flagged_days(components: Components, days: Iterable[str]) -> dict[str, int]:
    """Which of `days` the serving store loaded with skipped items, and how many."""
    serving = components.serving
    if not days or not isinstance(serving, SkipsBadItems):
        return {}
    flagged = serving.flagged_days()
    return {day: flagged[day] for day in sorted(days) if day in flagged}


def _run_record(report: RunReport) -> RunRecord:
    return RunRecord(
        run_id=report.run_id,
        started=report.started,
        finished=report.finished,
        files=len(report.files),
        rows_in=report.totals.rows_in,
        rows_valid=report.totals.valid,
        rows_bad=report.totals.bad,
        days=len(report.days),
        status=RunStatus.FAILED if report.rejected_input else RunStatus.OK,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
