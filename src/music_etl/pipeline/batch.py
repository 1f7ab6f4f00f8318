"""One batch of stream files: claim, validate, recompute their days, load, mark done, archive."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from music_etl.adapters.ledger.base import CLAIMED, DONE, FAILED, FileRecord, FileStatus
from music_etl.engines.base import Outcome, Source, StreamBatch
from music_etl.logic import layout
from music_etl.logic.contract import STREAMS
from music_etl.logic.counts import FileCounts
from music_etl.logic.serving_model import serving_items
from music_etl.pipeline.archive import archive
from music_etl.pipeline.components import Components
from music_etl.pipeline.progress import Progress
from music_etl.pipeline.retry import judged_against, next_step, with_next_step

#: What a run says of a file whose bytes changed after they were read.
CHANGED_WHILE_PROCESSED = (
    "changed while it was processed: its new content stays in raw/streams/ "
    "and the next run takes it as a new version"
)


@dataclass(frozen=True, kw_only=True)
class Pending:
    """A stream file that needs processing."""

    key: str
    """Where the bytes are (`raw/…`, or `archive/…` during `rebuild`)."""
    content_hash: str
    size: int
    clock: datetime | None = None
    """The processing clock to validate against; None: the run's clock."""
    fingerprint: str = ""
    """The storage's fingerprint of the hashed bytes: only they are archived."""

    @property
    def original_key(self) -> str:
        """The landing-zone key that names the file in the ledger."""
        return layout.original_key(self.key)


@dataclass(frozen=True, kw_only=True)
class FileResult(FileCounts):
    """What happened to one file in a run: its counts, status and error."""

    key: str
    status: str
    content_hash: str = ""
    error: str = ""
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class BatchResult:
    """The files of a batch and the days it recomputed."""

    files: list[FileResult]
    days: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class _Job:
    """What every step of one batch needs."""

    components: Components
    owner: str
    clock: datetime
    progress: Progress


def process_batch(
    components: Components,
    batch: Sequence[Pending],
    owner: str,
    clock: datetime,
    progress: Progress,
) -> BatchResult:
    """Take a batch from claim to archive; a crash anywhere is completed by the next run."""
    ledger = components.ledger
    previous = {p.original_key: ledger.get(p.original_key) for p in batch}
    lease = components.settings.lease_seconds
    claimed = [p for p in batch if ledger.claim(p.original_key, p.content_hash, owner, lease)]
    skipped = [_skipped(p) for p in batch if p not in claimed]
    claimed = _present(components, claimed, previous, owner)
    for p in claimed:
        progress.event("file_claimed", key=p.original_key, content_hash=p.content_hash)
    if not claimed:
        return BatchResult(files=skipped, days=())
    job = _Job(components=components, owner=owner, clock=clock, progress=progress)
    try:
        result = _process_claimed(job, claimed, previous)
    except Exception as exc:
        _release(components, claimed, owner, exc)
        raise
    return BatchResult(files=[*result.files, *skipped], days=result.days)


def _present(
    components: Components,
    claimed: list[Pending],
    previous: dict[str, FileRecord | None],
    owner: str,
) -> list[Pending]:
    """The claimed files still there; a file removed since discovery is unclaimed, not failed."""
    present = []
    for pending in claimed:
        if components.storage.exists(pending.key):
            present.append(pending)
        else:
            components.ledger.unclaim(pending.original_key, owner, previous[pending.original_key])
    return present


def _process_claimed(
    job: _Job, claimed: list[Pending], previous: dict[str, FileRecord | None]
) -> BatchResult:
    components = job.components
    job.progress.step("validate", len(claimed))
    sources = [
        Source(key=p.key, original_key=p.original_key, sid=layout.source_id(p.key)) for p in claimed
    ]
    threshold = components.settings.bad_row_threshold
    batch = StreamBatch(sources=sources, clock=job.clock, threshold=threshold)
    outcomes = components.engine.validate_streams(batch)
    job.progress.advance(len(claimed))
    affected: set[str] = set()
    remaining = {}
    for pending, outcome in zip(claimed, outcomes, strict=True):
        _validated_event(job.progress, outcome)
        touched, kept = _settle(job, pending, outcome, previous[pending.original_key])
        affected |= touched
        remaining[pending.original_key] = kept
    days = recompute(components, sorted(affected), job.progress)
    results = [
        _finish(job, p, o, remaining[p.original_key])
        for p, o in zip(claimed, outcomes, strict=True)
    ]
    return BatchResult(files=results, days=days)


def recompute(components: Components, days: Sequence[str], progress: Progress) -> tuple[str, ...]:
    """Recompute `days` from all their valid rows and replace them in the serving store."""
    if not days:
        return ()
    progress.step("transform + load", len(days))
    results = components.engine.compute_days([date.fromisoformat(d) for d in days])
    for day in results.days:
        progress.event("day_recomputed", day=day)
    components.serving.replace_days(results.days, serving_items(results))
    for day in results.days:
        progress.event("day_loaded", day=day)
    progress.advance(len(days))
    return results.days


def _validated_event(progress: Progress, outcome: Outcome) -> None:
    """`file_validated` with the outcome's counts; a rejected file is also a warning."""
    progress.event(
        "file_validated",
        key=outcome.original_key,
        rows_in=outcome.rows_in,
        rows_valid=outcome.rows_valid,
        rows_bad=outcome.rows_bad,
        bad_by_reason=outcome.bad_by_reason,
        days=list(outcome.days),
    )
    if outcome.file_error:
        progress.event(
            "file_rejected",
            level="warning",
            key=outcome.original_key,
            reason=outcome.file_error,
            message=outcome.message,
        )


def _settle(
    job: _Job, pending: Pending, outcome: Outcome, previous: FileRecord | None
) -> tuple[set[str], tuple[str, ...]]:
    """Remove what the file's earlier version (or an interrupted attempt) left behind.

    Returns the days to recompute and the days whose valid rows of this file remain.
    A rejected new version leaves the earlier version's rows (and their bad records)
    loaded. Rejection is decided by the content alone, so an interrupted attempt on
    the same content was rejected too and wrote only the same rejected bad records.
    A rejected version's bad records stay while its bytes are the key's latest: they
    go once another version of the key is processed.
    """
    before = tuple(previous.days) if previous else ()
    interrupted = _interrupted(previous)
    same_attempt = previous is not None and previous.content_hash == pending.content_hash
    components = job.components
    sid = layout.source_id(pending.key)
    if previous is not None and previous.status != DONE:
        # Only a rejected or interrupted version can have left rejected bad records.
        rejected = outcome.bad_by_reason if outcome.file_error else {}
        _delete_bad_records(components, sid, keep=rejected, key_of=layout.rejected_bad_records_key)
    if outcome.file_error and (not interrupted or same_attempt):
        return set(), before
    dropped = _drop_day_files(components, sid, before, keep=outcome.days, scan=interrupted)
    loaded = {} if outcome.file_error else outcome.bad_by_reason
    _delete_bad_records(components, sid, keep=loaded, key_of=layout.bad_records_key)
    days = set(before) | dropped | set(outcome.days)
    record = _record(pending, outcome, job.owner, status=CLAIMED, days=tuple(sorted(days)))
    components.ledger.save(record)
    return days, outcome.days


def _drop_day_files(
    components: Components, sid: str, before: Sequence[str], *, keep: Sequence[str], scan: bool
) -> set[str]:
    """Delete the source's valid-row files outside `keep`; return their days.

    After an interruption any day may hold a half-written attempt, so the whole
    partition tree is scanned; otherwise the ledger's days say where the files are.
    """
    storage = components.storage
    if scan:
        parsed = (
            layout.parse_validated_stream_key(i.key) for i in storage.list(layout.VALIDATED_STREAMS)
        )
        files = [(day, found) for day, found in filter(None, parsed) if found == sid]
    else:
        files = [(date.fromisoformat(day), sid) for day in before]
    dropped = set()
    for day, _ in files:
        if day.isoformat() not in keep:
            storage.delete(layout.validated_stream_key(day, sid))
            dropped.add(day.isoformat())
    return dropped


def _finish(job: _Job, pending: Pending, outcome: Outcome, days: tuple[str, ...]) -> FileResult:
    """Mark the file done (then archive it) or failed; its results are already loaded."""
    status = FAILED if outcome.file_error else DONE
    record = _record(pending, outcome, job.owner, status=status, days=days, clock=job.clock)
    judged = judged_against(job.components, outcome, job.clock)
    job.components.ledger.save(replace(record, judged_against=judged))
    result = _result(pending, outcome, status)
    step = next_step(result.key, result.error, judged)
    result = replace(result, message=with_next_step(result.message, step))
    if status == DONE and pending.key.startswith(layout.RAW_STREAMS):
        storage = job.components.storage
        archived = archive(
            storage, pending.key, pending.content_hash, job.clock, fingerprint=pending.fingerprint
        )
        if not archived:
            return replace(result, message=CHANGED_WHILE_PROCESSED)
        job.progress.event("file_archived", key=result.key, content_hash=pending.content_hash)
    return result


def _release(
    components: Components, claimed: Iterable[Pending], owner: str, exc: Exception
) -> None:
    """After an unexpected error, mark the claims failed-but-retryable so a later run retries."""
    for pending in claimed:
        current = components.ledger.get(pending.original_key)
        if current is None or current.owner != owner or current.status != CLAIMED:
            continue
        components.ledger.save(
            replace(current, status=FAILED, error=f"{type(exc).__name__}: {exc}", retryable=True)
        )


def _interrupted(previous: FileRecord | None) -> bool:
    """Whether an earlier attempt stopped half-way (crashed, or failed on an error)."""
    return previous is not None and (previous.status == CLAIMED or previous.retryable)


def _delete_bad_records(
    components: Components, sid: str, keep: Iterable[str], key_of: Callable[[str, str, str], str]
) -> None:
    """Delete the source's bad records at `key_of` keys, but for the reasons in `keep`."""
    for reason in set(STREAMS.reasons) - set(keep):
        components.storage.delete(key_of(STREAMS.name, reason, sid))


def _record(
    pending: Pending,
    outcome: Outcome,
    owner: str,
    *,
    status: FileStatus,
    days: tuple[str, ...],
    clock: datetime | None = None,
) -> FileRecord:
    return FileRecord(
        file_key=pending.original_key,
        content_hash=pending.content_hash,
        status=status,
        owner=owner,
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
        processed_at=clock.isoformat() if clock else "",
        rows_in=outcome.rows_in,
        rows_valid=outcome.rows_valid,
        rows_bad=outcome.rows_bad,
        bad_by_reason=outcome.bad_by_reason,
        days=days,
        error=outcome.file_error,
    )


def _result(pending: Pending, outcome: Outcome, status: str) -> FileResult:
    return FileResult(
        key=pending.original_key,
        status=status,
        content_hash=pending.content_hash,
        rows_in=outcome.rows_in,
        rows_valid=outcome.rows_valid,
        bad_by_reason=outcome.bad_by_reason,
        days=outcome.days,
        error=outcome.file_error,
        message=outcome.message,
    )


def _skipped(pending: Pending) -> FileResult:
    return FileResult(
        key=pending.original_key,
        status="skipped",
        content_hash=pending.content_hash,
        message="claimed by another runner",
    )
