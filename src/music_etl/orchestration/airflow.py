"""The tasks of `dags/stream_metrics_pipeline.py`, as plain functions (no Airflow import).

The package processes a batch end to end in one call (claim → validate → transform →
load → archive under the lake lock), so in `local` mode the DAG runs: a sensor →
`has_new_files` (short-circuit) → `run_pipeline` (one `music_etl.run`) → `report`.
In `glue` mode the middle task becomes the Glue jobs of `configs/job_configs.json`.

Errors keep their meaning for Airflow: a `Terminal` error becomes Airflow's
"fail, do not retry"; a `Retryable` one (lock held, AWS throttled) is retried with backoff.

Example:
    >>> config = job_config(Path("configs/job_configs.json"))  # doctest: +SKIP
    >>> if has_new_files(config):  # doctest: +SKIP
    ...     summary = run_pipeline(config)
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from music_etl.adapters.ledger.base import FAILED, new_owner
from music_etl.adapters.notify import Notification
from music_etl.adapters.storage.base import Storage
from music_etl.engines.base import NoEngine
from music_etl.errors import ConfigError, Terminal
from music_etl.logic import layout
from music_etl.orchestration.config import GlueJob, JobConfig, load_job_config
from music_etl.pipeline.batch import FileResult
from music_etl.pipeline.components import lake_lock, open_components
from music_etl.pipeline.notify import deliver, file_details
from music_etl.pipeline.run import RunReport, discover, run
from music_etl.settings import Settings

log = logging.getLogger(__name__)


def job_config(path: str | Path) -> JobConfig:
    """The job config at `path` (the DAG finds it with `find_job_config`)."""
    return load_job_config(Path(path))


def landing_pattern(settings: Settings) -> str:
    """What the sensor waits for: any object under the lake's `raw/streams/`.

    Example:
        >>> landing_pattern(Settings(lake="s3://bucket/music"))
        's3://bucket/music/raw/streams/*'
    """
    if settings.lake.startswith("s3://"):
        return f"{settings.lake.rstrip('/')}/{layout.RAW_STREAMS}*"
    return str(Path(settings.lake).expanduser().resolve() / layout.RAW_STREAMS / "*")


def pending_files(settings: Settings) -> list[str]:
    """The raw keys that a run would process now: changed dimensions, then new streams.

    A `users.csv` or `songs.csv` counts when its content is not the one its snapshot
    was made from (`changed_dimensions`), as `music-etl run` judges it; stream files
    count per the ledger. Discovery reads only the lake and the ledger, under the lake
    lock (it also finishes an archive move that a crash interrupted). No engine is
    opened (`NoEngine`), so an Airflow worker starts no Spark and imports no Polars
    just to look.
    """
    with (
        open_components(settings, engine=NoEngine()) as components,
        lake_lock(components, new_owner()),
    ):
        streams = [item.key for item in discover(components).pending]
        return [*changed_dimensions(components.storage), *streams]


def changed_dimensions(storage: Storage) -> list[str]:
    """The raw dimension files whose content differs from their snapshot's `_SOURCE` marker.

    A file rejected earlier still differs, so it counts again, as it does for `run`,
    which judges it again; a missing raw file does not count (the snapshot stays).
    """
    changed = []
    for name, raw in layout.RAW_DIMENSIONS.items():
        if not storage.exists(raw):
            continue
        marker = layout.dimension_marker_key(name)
        made_from = storage.read_bytes(marker).decode() if storage.exists(marker) else ""
        if made_from != storage.content_hash(raw):
            changed.append(raw)
    return changed


def has_new_files(config: JobConfig) -> bool:
    """Whether any stream or dimension file is new or changed (the DAG's short-circuit)."""
    with fail_fast():
        keys = pending_files(config.run_settings())
    log.info("%d new or changed raw file(s): %s", len(keys), ", ".join(keys[:20]))
    return bool(keys)


def run_pipeline(config: JobConfig) -> dict[str, Any]:
    """One `music_etl.run` over every pending file; returns its summary (an XCom)."""
    with fail_fast():
        # The task's on_failure_callback reports an error once, after the last retry.
        return summarize(run(config.run_settings(), notify_errors=False))


def report(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Log what a run did; failed files were already notified by the run itself."""
    log.info(
        "Run %s: %d file(s), %d processed, %d failed, %d day(s) recomputed.",
        summary.get("run_id", ""),
        summary.get("files", 0),
        summary.get("processed", 0),
        len(summary.get("failed", [])),
        len(summary.get("days", [])),
    )
    for failed in summary.get("failed", []):
        log.warning("Failed: %s: %s %s", failed["file"], failed["reason"], failed["message"])
    return dict(summary)


def summarize(result: RunReport) -> dict[str, Any]:
    """A JSON-serialisable summary of a run."""
    return {
        "run_id": result.run_id,
        "files": len(result.files),
        "processed": len(result.processed),
        # The run's one set of totals (rejected files' rows included), as `run` prints them.
        "rows_in": result.totals.rows_in,
        "rows_valid": result.totals.valid,
        "rows_loaded": result.totals.loaded,
        "rows_bad": result.totals.bad,
        "days": list(result.days),
        "failed": [
            {"file": f.key, "reason": f.error, "message": f.message, "rows_in": f.rows_in}
            for f in [*result.dimensions.files(), *result.files]
            if f.status == FAILED
        ],
        "dimensions": [_dimension(f) for f in result.dimensions.files()],
    }


def _dimension(result: FileResult) -> dict[str, Any]:
    """A dimension file's verdict: `accepted`, or `failed` with the previous snapshot in force."""
    return {**file_details(result), "status": result.status}


#: What `{flow_id}` in a Glue job argument becomes: the DAG run's id, filled by Airflow.
FLOW_ID_TEMPLATE = "{{ run_id }}"


def glue_arguments(job: GlueJob, settings: Settings) -> dict[str, str]:
    """The job's `--ARG` values, with `{lake}`, `{ledger_url}`, … filled from `settings`.

    Arguments that come out empty are left out (Glue rejects empty values), so the
    job's own default applies. `{flow_id}` becomes Airflow's `{{ run_id }}` template, which
    Airflow fills per DAG run (`script_args` is a templated field): the three jobs of one
    DAG run then carry the same `--FLOW_ID` into their run artifacts.

    Example:
        >>> job = GlueJob(task_id="validate", job_name="v", script="s.py",
        ...               arguments={"--LAKE_ROOT": "{lake}", "--NOTIFIER": "{notifier}"})
        >>> glue_arguments(job, Settings(lake="s3://bucket/music"))
        {'--LAKE_ROOT': 's3://bucket/music'}
    """
    values = {
        "lake": settings.lake,
        "ledger_url": settings.ledger_url,
        "serving_url": settings.serving_url,
        "notifier": settings.notifier,
        "aws_endpoint": settings.aws_endpoint,
        "bad_row_threshold": str(settings.bad_row_threshold),
        "now": settings.now,
        "flow_id": FLOW_ID_TEMPLATE,
    }
    try:
        filled = {name: value.format_map(values) for name, value in job.arguments.items()}
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"Glue job {job.task_id}: argument template {exc} is not one of {sorted(values)}."
        ) from exc
    return {name: value for name, value in filled.items() if value}


def failure_callback(config: JobConfig) -> Callable[[Mapping[str, Any]], None]:
    """An Airflow `on_failure_callback` that sends the failure to the configured notifier."""

    def notify(context: Mapping[str, Any]) -> None:
        deliver(config.run_settings(), task_failure_notification(context))

    return notify


def task_failure_notification(context: Mapping[str, Any]) -> Notification:
    """The message for a task that failed for good (retries exhausted, or terminal)."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", "") or str(context.get("dag_id", ""))
    task_id = getattr(ti, "task_id", "")
    run_id = getattr(ti, "run_id", "") or str(context.get("run_id", ""))
    error = context.get("exception")
    reason = f"{type(error).__name__}: {error}" if error else "see the task log"
    lines = [f"Task {task_id} of DAG {dag_id} failed (run {run_id}, try {_try(ti)}).", reason]
    if getattr(ti, "log_url", ""):
        lines.append(f"Log: {ti.log_url}")  # type: ignore[union-attr]
    return Notification(
        subject=f"music-etl: Airflow task {dag_id}.{task_id} failed",
        text="\n".join(lines),
        details={"dag_id": dag_id, "task_id": task_id, "run_id": run_id, "error": reason},
    )


def _try(ti: object) -> int:
    return int(getattr(ti, "try_number", 0) or 0)


@contextmanager
def fail_fast() -> Iterator[None]:
    """Turn a `Terminal` error into Airflow's `AirflowFailException` (no retries).

    Outside Airflow the error passes through unchanged.
    """
    try:
        yield
    except Terminal as exc:
        fail = _airflow_fail_exception()
        if fail is None:
            raise
        raise fail(f"{type(exc).__name__}: {exc}") from exc


def _airflow_fail_exception() -> type[Exception] | None:
    """Airflow 3's `AirflowFailException`, or 2.x's, or None without Airflow."""
    for module in ("airflow.sdk.exceptions", "airflow.exceptions"):
        try:
            found = getattr(importlib.import_module(module), "AirflowFailException", None)
        except ImportError:
            continue
        if isinstance(found, type) and issubclass(found, Exception):
            return found
    return None
