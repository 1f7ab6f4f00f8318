"""`configs/job_configs.json`: how the orchestrations run the package.

Where it is, first found wins: the `path` given, `MUSIC_ETL_JOB_CONFIGS`, then
`configs/job_configs.json` beside or above the DAG file (MWAA: the DAGs folder).

Example:
    >>> config = load_job_config(Path("configs/job_configs.json"))  # doctest: +SKIP
    >>> config.dag.mode  # doctest: +SKIP
    'local'
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from music_etl.errors import ConfigError
from music_etl.settings import ENV_PREFIX, Settings, load_settings

ENV_VAR = ENV_PREFIX + "JOB_CONFIGS"
FILE_NAME = Path("configs") / "job_configs.json"
MODES = ("local", "glue")


@dataclass(frozen=True, kw_only=True)
class DagConfig:
    """The DAG's identity, schedule and retry policy."""

    dag_id: str = "stream_metrics_pipeline"
    """The DAG id."""
    mode: str = "local"
    """`local`: run the package in the Airflow worker; `glue`: start the Glue jobs."""
    schedule: str | None = "*/30 * * * *"
    """Cron expression or preset of the periodic batch; null: only triggered runs."""
    start_date: str = "2024-01-01"
    """First logical date (no catch-up: only the latest interval runs)."""
    max_active_runs: int = 1
    """Runs at once; 1, so two runs never race for the lake lock."""
    retries: int = 3
    """Retries of a task that raised a retryable error."""
    retry_delay_seconds: int = 30
    """First retry delay."""
    retry_exponential_backoff: float = 2.0
    """Each retry waits this many times longer than the one before (0: constant delay)."""
    max_retry_delay_seconds: int = 600
    """Upper bound of the backoff."""
    execution_timeout_seconds: int = 7200
    """A task running longer fails (and is retried)."""
    aws_conn_id: str = "aws_default"
    """Airflow connection of the AWS operators and the S3 sensor."""
    fs_conn_id: str = "fs_default"
    """Airflow `fs` connection of the file sensor (a local lake's path is absolute)."""
    region: str = ""
    """AWS region of the Glue jobs; empty: the connection's."""
    tags: tuple[str, ...] = ()
    """Tags shown in the Airflow UI."""


@dataclass(frozen=True, kw_only=True)
class SensorConfig:
    """The wait for new files under `raw/streams/`."""

    poke_interval_seconds: int = 60
    """Seconds between looks."""
    timeout_seconds: int = 1500
    """Give up (the run is skipped, not failed) after this long; below the schedule interval."""
    deferrable: bool = True
    """Wait in the triggerer instead of a worker slot, where the sensor supports it."""


@dataclass(frozen=True, kw_only=True)
class GlueJob:
    """One Glue job the DAG starts in `glue` mode, in order."""

    task_id: str
    """The Airflow task id (`validate`, `transform`, `load`)."""
    job_name: str
    """The Glue job name (created by `infra/`)."""
    script: str
    """The job's entry script in this repository."""
    arguments: dict[str, str] = field(default_factory=dict)
    """`--NAME` arguments; `{lake}`, `{ledger_url}`, `{serving_url}`, … are filled from settings."""


@dataclass(frozen=True, kw_only=True)
class GlueConfig:
    """The Glue jobs and crawlers of the AWS deployment."""

    poll_interval_seconds: int = 15
    """Seconds between job-run status checks."""
    deferrable: bool = False
    """Wait for job runs in the triggerer (needs aiobotocore on the workers)."""
    jobs: tuple[GlueJob, ...] = ()
    """The jobs, in the order they run."""
    crawlers: dict[str, str] | None = None
    """Crawler name per lake area (`validated`, `processed`)."""


@dataclass(frozen=True, kw_only=True)
class JobConfig:
    """The whole file."""

    path: Path
    """Where it was read from."""
    settings: dict[str, Any]
    """music-etl settings; `MUSIC_ETL_*` variables win over them."""
    dag: DagConfig
    sensor: SensorConfig
    glue: GlueConfig

    def run_settings(self, env: Mapping[str, str] | None = None) -> Settings:
        """The package settings: flags from this file unless the environment sets them."""
        env = os.environ if env is None else env
        flags = {k: v for k, v in self.settings.items() if ENV_PREFIX + k.upper() not in env}
        return load_settings(env=env, **flags)


def find_job_config(near: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The job config file: `MUSIC_ETL_JOB_CONFIGS`, else one beside or above `near`."""
    env = os.environ if env is None else env
    if env.get(ENV_VAR):
        return Path(env[ENV_VAR])
    start = Path(near).resolve().parent if near else Path.cwd()
    for folder in (start, *start.parents):
        if (folder / FILE_NAME).is_file():
            return folder / FILE_NAME
    raise ConfigError(
        f"No {FILE_NAME} beside or above {start}: set {ENV_VAR} to the job config file."
    )


def load_job_config(path: Path) -> JobConfig:
    """Read and check `path` (JSON)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read the job config {path}: {exc}") from exc
    glue = dict(data.get("glue", {}))
    jobs = tuple(_build(GlueJob, job, f"{path}: glue.jobs") for job in glue.pop("jobs", []))
    config = JobConfig(
        path=path,
        settings=dict(data.get("settings", {})),
        dag=_build(DagConfig, data.get("dag", {}), f"{path}: dag"),
        sensor=_build(SensorConfig, data.get("sensor", {}), f"{path}: sensor"),
        glue=_build(GlueConfig, {**glue, "jobs": jobs}, f"{path}: glue"),
    )
    _check(config)
    return config


def _build(kind: type[Any], values: Mapping[str, Any], where: str) -> Any:
    names = {f.name for f in fields(kind)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {sorted(names)}.")
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return kind(**given)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _check(config: JobConfig) -> None:
    if config.dag.mode not in MODES:
        raise ConfigError(
            f"{config.path}: dag.mode must be one of {MODES}, not {config.dag.mode!r}."
        )
    if config.dag.mode == "glue" and not config.glue.jobs:
        raise ConfigError(f"{config.path}: dag.mode is glue but glue.jobs is empty.")
    if config.dag.max_active_runs != 1:
        raise ConfigError(
            f"{config.path}: dag.max_active_runs must be 1: two runs would only wait for "
            "each other's lake lock."
        )
