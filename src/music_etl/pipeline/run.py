"""`run`: process every pending stream file once, in batches, under the lake lock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from music_etl.adapters.ledger.base import DONE, FAILED, RunRecord, new_owner
from music_etl.adapters.storage.base import LeavesTemporaries
from music_etl.logic import layout
from music_etl.pipeline.batch import FileResult, Pending, process_batch, recompute
from music_etl.pipeline.components import Components, lake_lock, open_components
from music_etl.pipeline.dimensions import DimensionsReport, days_recomputed, refresh_dimensions
from music_etl.pipeline.notify import notify_failures
from music_etl.pipeline.progress import Progress, Silent
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

    @property
    def failed(self) -> list[FileResult]:
        """Files rejected whole."""
        return [f for f in self.files if f.status == FAILED]

    @property
    def processed(self) -> list[FileResult]:
        """Files validated and loaded."""
        return [f for f in self.files if f.status == DONE]

    @property
    def rejected_input(self) -> bool:
        """Whether a stream file or a dimension file was rejected (exit code 1)."""
        return bool(self.failed or self.dimensions.rejected)


def run(settings: Settings, progress: Progress | None = None) -> RunReport:
    """Process every pending stream file of the lake exactly once.

    When files failed and the `notifier` setting names one, it is told which and why.

    Example:
        >>> report = run(load_settings(lake="./lake"))  # doctest: +SKIP
        >>> len(report.failed)  # doctest: +SKIP
        0
    """
    components = open_components(settings)
    report = run_with(components, progress or Silent())
    # Failure notifications (the `notifier` setting); delivery problems are only logged.
    notify_failures(settings, [*report.dimensions.files(), *report.files], run_id=report.run_id)
    return report


def run_with(
    components: Components,
    progress: Progress,
    extra: Sequence[Pending] = (),
    owner: str = "",
) -> RunReport:
    """`run` on already opened components (tests inject failing fakes here).

    `extra` files are processed before the landing zone's (`rebuild` passes the archive
    and its `owner`, which already holds the lake lock).
    """
    started = _now()
    owner = owner or new_owner()
    clock = components.settings.clock()
    with lake_lock(components, owner):
        if isinstance(components.storage, LeavesTemporaries):
            components.storage.sweep_temporaries()
        dims = refresh_dimensions(components)
        files: list[FileResult] = []
        days: set[str] = set()
        for batch in batches([*extra, *discover(components)], components.settings.batch_bytes):
            components.ledger.acquire_lock("lake", owner, components.settings.lease_seconds)
            result = process_batch(components, batch, owner, batch[0].clock or clock, progress)
            files += result.files
            days |= set(result.days)
        if dims.songs_changed:
            days |= set(recompute(components, all_days(components), progress))
            days_recomputed(components)
    report = RunReport(
        run_id=uuid.uuid4().hex[:12],
        started=started,
        finished=_now(),
        files=files,
        days=tuple(sorted(days)),
        dimensions=dims,
    )
    components.ledger.add_run(_run_record(report))
    return report


def discover(components: Components) -> list[Pending]:
    """Stream files in the landing zone that are new or changed, in key order.

    A file already done with the same content is only moved on to the archive
    (a crash between marking it done and archiving it leaves it there).
    """
    pending = []
    for info in components.storage.list(layout.RAW_STREAMS):
        if not layout.is_stream_file(info.key):
            continue
        digest = components.storage.content_hash(info.key)
        record = components.ledger.get(info.key)
        if record and record.content_hash == digest and record.status == DONE:
            components.storage.move(info.key, layout.archive_key(info.key))
        elif not (
            record
            and record.content_hash == digest
            and record.status == FAILED
            and not record.retryable
        ):
            pending.append(Pending(key=info.key, content_hash=digest, size=info.size))
    return pending


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
    days = set()
    for info in components.storage.list(layout.VALIDATED_STREAMS):
        part = info.key.removeprefix(layout.VALIDATED_STREAMS).split("/", 1)[0]
        days.add(part.removeprefix("listen_date="))
    return sorted(days)


def _run_record(report: RunReport) -> RunRecord:
    return RunRecord(
        run_id=report.run_id,
        started=report.started,
        finished=report.finished,
        files=len(report.files),
        rows_in=sum(f.rows_in for f in report.files),
        rows_valid=sum(f.rows_valid for f in report.processed),
        rows_bad=sum(f.rows_bad for f in report.processed),
        days=len(report.days),
        status="failed" if report.rejected_input else "ok",
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
