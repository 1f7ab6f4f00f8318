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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from music_etl.adapters.ledger.base import new_owner
from music_etl.adapters.serving.base import SkippedItem, SkipsBadItems
from music_etl.adapters.storage.base import Storage
from music_etl.engines.base import Engine, Outcome, Source, StreamBatch
from music_etl.errors import MusicEtlError, Retryable
from music_etl.integrations.glue_args import job_settings, resolve_args
from music_etl.integrations.glue_load import FlatInputs, read_day_results
from music_etl.logic.contract import DatasetContract
from music_etl.logic.serving_model import DayResults, serving_items
from music_etl.pipeline.components import lake_lock, open_components
from music_etl.pipeline.notify import notify_failures
from music_etl.pipeline.progress import Progress, Silent
from music_etl.pipeline.run import RunReport, run_with
from music_etl.settings import Settings

log = logging.getLogger(__name__)

PENDING_DAYS = "_state/glue/pending_days.json"
"""Days validated into the lake whose output tables are not recomputed yet."""
LOADABLE_DAYS = "_state/glue/loadable_days.json"
"""Days whose output tables are recomputed but not loaded into the serving store yet."""


# --------------------------------------------------------------------------- stages


def validate_stage(settings: Settings, progress: Progress | None = None) -> RunReport:
    """Validate every pending stream file; hand the touched days to the transform job."""
    components = open_components(settings)
    deferred = replace(
        components,
        engine=_DaysHandedOn(components.engine, components.storage),
        serving=_NotYet(),
    )
    report = run_with(deferred, progress or Silent(), command="glue-validation")
    notify_failures(settings, [*report.dimensions.files(), *report.files], run_id=report.run_id)
    return report


def transform_stage(settings: Settings) -> tuple[str, ...]:
    """Recompute the pending days' output tables; returns the days."""
    components = open_components(settings)
    with lake_lock(components, new_owner()):
        days = read_days(components.storage, PENDING_DAYS)
        if days:
            components.engine.compute_days([date.fromisoformat(d) for d in days])
        add_days(components.storage, LOADABLE_DAYS, days)
        remove_days(components.storage, PENDING_DAYS, days)
    return days


def load_stage(settings: Settings) -> tuple[str, ...]:
    """Replace the recomputed days in the serving store; returns the days."""
    return load_days(settings).days


@dataclass(frozen=True, kw_only=True)
class LoadReport:
    """What the load job did."""

    days: tuple[str, ...]
    """The days replaced in the serving store."""
    skipped: list[SkippedItem] = field(default_factory=list)
    """Items the serving store could not write (their days are flagged)."""
    flagged: dict[str, int] = field(default_factory=dict)
    """Every day in the store loaded with skipped items: day -> how many."""


def load_days(settings: Settings) -> LoadReport:
    """Replace the handed-on days and the days of new non-partitioned files (`glue_load`).

    Creates the DynamoDB tables first if they are missing (`open_components`).
    """
    components = open_components(settings)
    serving = components.serving
    with lake_lock(components, new_owner()):
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
    flagged = serving.flagged_days() if isinstance(serving, SkipsBadItems) else {}
    return LoadReport(days=days, skipped=skipped, flagged=flagged)


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
    try:
        args = resolve_args(argv, extra)
        settings = job_settings(args)
        summary = _run_stage(stage, settings, args)
    except MusicEtlError as exc:
        kind = "retryable" if isinstance(exc, Retryable) else "terminal"
        log.error("%s job failed (%s): %s", stage, kind, exc)
        raise
    sys.stdout.write(json.dumps({"stage": stage, **summary}) + "\n")
    return 0


def _run_stage(stage: str, settings: Settings, args: dict[str, str]) -> dict[str, Any]:
    if stage == "validation":
        if args.get("RAW_KEY"):
            log.info("triggered by %s; every pending file is processed", args["RAW_KEY"])
        return _report_summary(validate_stage(settings))
    if stage == "transform":
        return {"days": list(transform_stage(settings))}
    report = load_days(settings)
    return {
        "days": list(report.days),
        "skipped_items": len(report.skipped),
        "skipped": [
            {"table": s.table, "day": s.day, "key": s.key, "reason": s.reason}
            for s in report.skipped
        ],
        "flagged_days": report.flagged,
    }


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
    }
