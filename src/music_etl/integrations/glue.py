"""The three AWS Glue jobs of the seed's flow, as stages over one lake.

`glue_jobs/{validation,transform,load}/…` are thin scripts calling `main_validation`,
`main_transform` and `main_load`. Each stage takes the lake lock, so the stages of two
flows never interleave, and hands its work to the next through a small JSON object in
the lake, written before it marks its own work done:

- **validation**: refresh the dimensions, then claim, validate and settle every pending
  stream file exactly as `music-etl run` does, mark it done and archive it; the days it
  touched go to `_state/glue/pending_days.json` instead of being recomputed.
- **transform**: recompute the pending days on the engine (Spark), writing
  `processed/…`; they move to `_state/glue/loadable_days.json`.
- **load**: replace those days in the serving store (DynamoDB) from `processed/…`, and
  the days of non-partitioned Parquet files other tools put there (`glue_load`); items
  DynamoDB cannot store are skipped and their days flagged (the JSON line counts them).

A job that fails leaves its input list in place, so the next run of the flow redoes it:
recomputing or reloading a day is idempotent, so no state counts a row twice.

Example:
    >>> main_validation(["job.py", "--LAKE_ROOT", "s3://bucket/music"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from music_etl.adapters.ledger.base import new_owner
from music_etl.adapters.serving.base import SkippedItem, SkipsBadItems
from music_etl.adapters.storage.base import Storage
from music_etl.engines.base import Engine, Outcome, Source, StreamBatch
from music_etl.errors import MusicEtlError, Retryable
from music_etl.integrations.glue_args import job_settings, log_format, resolve_args
from music_etl.integrations.glue_load import FlatInputs, read_day_results
from music_etl.logic.contract import DatasetContract
from music_etl.logic.serving_model import DayResults, serving_items
from music_etl.pipeline import artifacts
from music_etl.pipeline.components import Components, open_components
from music_etl.pipeline.notify import notify_failures
from music_etl.pipeline.progress import LEVELS, JsonLines, Progress, Silent
from music_etl.pipeline.run import (
    RunReport,
    held_lock,
    record_failure,
    run_with,
    start,
    write_artifact,
)
from music_etl.settings import Settings

log = logging.getLogger(__name__)

PENDING_DAYS = "_state/glue/pending_days.json"
"""Days validated into the lake whose output tables are not recomputed yet."""
LOADABLE_DAYS = "_state/glue/loadable_days.json"
"""Days whose output tables are recomputed but not loaded into the serving store yet."""


# --------------------------------------------------------------------------- stages


def validate_stage(
    settings: Settings, progress: Progress | None = None, *, flow_id: str = ""
) -> RunReport:
    """Validate every pending stream file; hand the touched days to the transform job."""
    with open_components(settings) as components:
        deferred = replace(
            components,
            engine=_DaysHandedOn(components.engine, components.storage),
            serving=_NotYet(),
        )
        sink = progress or Silent()
        report = run_with(deferred, sink, command="glue-validation", flow_id=flow_id)
    notify_failures(settings, [*report.dimensions.files(), *report.files], run_id=report.run_id)
    return report


@dataclass(frozen=True, kw_only=True)
class StageReport:
    """What the transform or load job did, and its run artifact."""

    days: tuple[str, ...]
    """The days recomputed (transform) or replaced in the serving store (load)."""
    run_id: str = ""
    artifact: dict[str, Any] = field(default_factory=dict)
    artifact_key: str = ""
    artifact_error: str = ""
    """Why the artifact could not be written (the stage's outcome is unchanged)."""


@dataclass(frozen=True, kw_only=True)
class LoadReport(StageReport):
    """What the load job did."""

    skipped: list[SkippedItem] = field(default_factory=list)
    """Items the serving store could not write (their days are flagged)."""
    flagged: dict[str, int] = field(default_factory=dict)
    """Every day in the store loaded with skipped items: day -> how many."""


def transform_stage(settings: Settings) -> tuple[str, ...]:
    """Recompute the pending days' output tables; returns the days."""
    return transform_days(settings).days


def transform_days(
    settings: Settings, progress: Progress | None = None, *, flow_id: str = ""
) -> StageReport:
    """Recompute the pending days and hand them to the load job; writes the run artifact."""
    with open_components(settings) as components:
        return _transform_days(components, progress, flow_id)


def _transform_days(components: Components, progress: Progress | None, flow_id: str) -> StageReport:
    sink = progress or Silent()
    partial = start(components, sink, command="glue-transform", flow_id=flow_id)
    partial.loads = False
    with _recorded(components, sink, partial), held_lock(components, partial, new_owner()):
        days = read_days(components.storage, PENDING_DAYS)
        if days:
            components.engine.compute_days([date.fromisoformat(d) for d in days])
        partial.days |= set(days)
        for day in days:
            sink.event("day_recomputed", day=day)
        add_days(components.storage, LOADABLE_DAYS, days)
        remove_days(components.storage, PENDING_DAYS, days)
    return _finished(components, sink, partial, StageReport(days=days))


def load_stage(settings: Settings) -> tuple[str, ...]:
    """Replace the recomputed days in the serving store; returns the days."""
    return load_days(settings).days


def load_days(
    settings: Settings, progress: Progress | None = None, *, flow_id: str = ""
) -> LoadReport:
    """Replace the handed-on days and the days of new non-partitioned files (`glue_load`).

    Creates the DynamoDB tables first if they are missing (`open_components`). Writes
    the run artifact: per day loaded, the items the serving store skipped.
    """
    with open_components(settings) as components:
        return _load_days(components, progress, flow_id)


def _load_days(components: Components, progress: Progress | None, flow_id: str) -> LoadReport:
    sink = progress or Silent()
    partial = start(components, sink, command="glue-load", flow_id=flow_id)
    partial.recomputes = False
    with _recorded(components, sink, partial), held_lock(components, partial, new_owner()):
        days, skipped = _load_locked(components)
        partial.days |= set(days)
        per_day = Counter(s.day for s in skipped)
        for day in days:
            sink.event("day_loaded", day=day, skipped_items=per_day[day])
    serving = components.serving
    flagged = serving.flagged_days() if isinstance(serving, SkipsBadItems) else {}
    report = LoadReport(days=days, skipped=skipped, flagged=flagged)
    return _finished(components, sink, partial, report, dict(per_day))


def _load_locked(components: Components) -> tuple[tuple[str, ...], list[SkippedItem]]:
    """Load the days (under the lake lock); returns them and the items skipped."""
    serving = components.serving
    listed = read_days(components.storage, LOADABLE_DAYS)
    flat = FlatInputs.read(components.storage)
    days = tuple(sorted(set(listed) | flat.changed_days()))
    skipped: list[SkippedItem] = []
    if days:
        results = read_day_results(components.storage, days, flat)
        serving.replace_days(results.days, serving_items(results))
        skipped = list(serving.last_skipped) if isinstance(serving, SkipsBadItems) else []
    flat.record(components.storage)
    remove_days(components.storage, LOADABLE_DAYS, listed)
    return days, skipped


# --------------------------------------------------------------------------- stage runs

_R = TypeVar("_R", bound=StageReport)


@contextmanager
def _recorded(
    components: Components, progress: Progress, partial: artifacts.Partial
) -> Iterator[None]:
    """On an error, log it and write the `failed` artifact (if the stage got the lock)."""
    try:
        yield
    except BaseException as exc:
        record_failure(components, progress, partial, exc)
        raise


def _finished(
    components: Components,
    progress: Progress,
    partial: artifacts.Partial,
    report: _R,
    flagged: dict[str, int] | None = None,
) -> _R:
    """`report` with the stage's artifact, written and logged, and `run_finished`."""
    doc = artifacts.build_stage(partial, _now(), flagged)
    key, error = write_artifact(components, progress, doc)
    skipped_items = sum((flagged or {}).values())
    progress.event(
        "run_finished", status=doc["status"], days=len(partial.days), skipped_items=skipped_items
    )
    return replace(
        report, run_id=partial.run_id, artifact=doc, artifact_key=key, artifact_error=error
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- hand-over lists


def read_days(storage: Storage, key: str) -> tuple[str, ...]:
    """The days listed at `key`; none when it does not exist."""
    if not storage.exists(key):
        return ()
    return tuple(sorted(json.loads(storage.read_bytes(key))["days"]))


def add_days(storage: Storage, key: str, days: Iterable[str]) -> None:
    """Add `days` to the list at `key` (atomically replaced)."""
    _write_days(storage, key, set(read_days(storage, key)) | set(days))


def remove_days(storage: Storage, key: str, days: Iterable[str]) -> None:
    """Remove `days` from the list at `key`; delete it when it becomes empty."""
    left = set(read_days(storage, key)) - set(days)
    if left:
        _write_days(storage, key, left)
    else:
        storage.delete(key)


def _write_days(storage: Storage, key: str, days: set[str]) -> None:
    storage.write_bytes(key, json.dumps({"days": sorted(days)}).encode())


class _DaysHandedOn:
    """The engine, except that recomputing days only lists them for the transform job."""

    def __init__(self, engine: Engine, storage: Storage) -> None:
        self._engine = engine
        self._storage = storage
        self.name = engine.name

    def validate_dimension(
        self, contract: DatasetContract, source: Source, snapshot: str
    ) -> Outcome:
        """Validate a dimension on the real engine."""
        return self._engine.validate_dimension(contract, source, snapshot)

    def validate_streams(self, batch: StreamBatch) -> list[Outcome]:
        """Validate stream files on the real engine."""
        return self._engine.validate_streams(batch)

    def compute_days(self, days: Sequence[date]) -> DayResults:
        """List `days` for the transform job; the serving store is not touched now."""
        iso = tuple(sorted(day.isoformat() for day in days))
        add_days(self._storage, PENDING_DAYS, iso)
        return DayResults(days=iso)


class _NotYet:
    """A serving store that leaves loading to the load job."""

    def replace_days(self, days: Sequence[str], items: dict[str, list[dict[str, Any]]]) -> None:
        """Nothing to load yet: the days are listed for the transform job."""

    def close(self) -> None:
        """Nothing to release (the real store is closed with the components)."""

    def scan(self, table: str) -> list[dict[str, Any]]:
        """Never read during validation."""
        raise NotImplementedError(table)

    def days(self) -> list[str]:
        """Never read during validation."""
        raise NotImplementedError

    def read(
        self, table: str, days: Sequence[str], *, sort_key: str | int | None = None
    ) -> list[dict[str, Any]]:
        """Never read during validation."""
        raise NotImplementedError(table)

    def version(self) -> str:
        """Never read during validation."""
        raise NotImplementedError


# --------------------------------------------------------------------------- entry points

#: Arguments only the validation job takes.
VALIDATION_ARGS = ("RAW_KEY",)


def main_validation(argv: Sequence[str]) -> int:
    """`glue_jobs/validation/glue_validation.py`: the validation job."""
    return _main(argv, "validation", extra=VALIDATION_ARGS)


def main_transform(argv: Sequence[str]) -> int:
    """`glue_jobs/transform/glue_transform.py`: the transform job."""
    return _main(argv, "transform")


def main_load(argv: Sequence[str]) -> int:
    """`glue_jobs/load/load_dynamo.py`: the load job (needs no Spark: a Python shell job)."""
    return _main(argv, "load")


def _main(argv: Sequence[str], stage: str, extra: tuple[str, ...] = ()) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("music_etl").setLevel(logging.INFO)
    progress: Progress = Silent()
    try:
        args = resolve_args(argv, extra)
        if log_format(args) == "json":
            progress = _json_logs()
        settings = job_settings(args)
        summary = _run_stage(stage, settings, args, progress)
    except MusicEtlError as exc:
        kind = "retryable" if isinstance(exc, Retryable) else "terminal"
        log.error("%s job failed (%s): %s", stage, kind, exc)
        raise
    sys.stdout.write(json.dumps({"stage": stage, **summary}) + "\n")
    return 0


def _json_logs() -> JsonLines:
    """One JSON object per event on stderr; the job's log records become events too."""
    sink = JsonLines(sys.stderr)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_EventHandler(sink))
    return sink


class _EventHandler(logging.Handler):
    """A log record as a `log` event (`level`, `logger`, `message`) of the JSON sink."""

    def __init__(self, sink: Progress) -> None:
        super().__init__()
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        """Hand the record to the sink."""
        level = record.levelname.lower()
        level = level if level in LEVELS else "error"
        self._sink.event("log", level, logger=record.name, message=record.getMessage())


def _run_stage(
    stage: str, settings: Settings, args: dict[str, str], progress: Progress
) -> dict[str, Any]:
    flow_id = args.get("FLOW_ID", "")
    if stage == "validation":
        if args.get("RAW_KEY"):
            log.info("triggered by %s; every pending file is processed", args["RAW_KEY"])
        return _report_summary(validate_stage(settings, progress, flow_id=flow_id))
    if stage == "transform":
        done = transform_days(settings, progress, flow_id=flow_id)
        return {"days": list(done.days), **_run_of(done)}
    report = load_days(settings, progress, flow_id=flow_id)
    return {
        "days": list(report.days),
        "skipped_items": len(report.skipped),
        "skipped": [
            {"table": s.table, "day": s.day, "key": s.key, "reason": s.reason}
            for s in report.skipped
        ],
        "flagged_days": report.flagged,
        **_run_of(report),
    }


def _run_of(report: StageReport | RunReport) -> dict[str, Any]:
    """The run id and artifact key the job's JSON line ends with."""
    return {"run_id": report.run_id, "artifact": report.artifact_key}


def _report_summary(report: RunReport) -> dict[str, Any]:
    return {
        "files": [
            {"key": f.key, "status": f.status, "error": f.error, "rows_in": f.rows_in}
            for f in report.files
        ],
        "dimensions": [
            {"key": f.key, "status": f.status, "error": f.error, "rows_in": f.rows_in}
            for f in report.dimensions.files()
        ],
        "days": list(report.days),
        **_run_of(report),
    }
