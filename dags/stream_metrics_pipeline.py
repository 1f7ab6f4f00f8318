"""stream_metrics_pipeline: new stream files → music-etl, each file exactly once.

A thin entry point: the tasks are `music_etl.orchestration.airflow`, the settings are
`configs/job_configs.json` (found beside or above this file, or `MUSIC_ETL_JOB_CONFIGS`)
and the `MUSIC_ETL_*` variables. Written for Airflow 3; runs on Airflow 2 too: the tests
(tests/deploy/test_airflow_dag.py) run it on Airflow 3.3 and on MWAA's Airflow 2.11.2.
Glue mode needs only `music-streaming-etl` (no extras) on the workers; local mode needs
`music-streaming-etl[embedded]` (docs/deploy-aws.md#packaging).

    wait_for_streams → has_new_files → run_pipeline → report          (dag.mode = local)
    wait_for_streams → has_new_files → validate → transform → load     (dag.mode = glue)

Exactly once: `max_active_runs=1`, and the ledger (`ProcessedStreams`) decides what is new.
See docs/orchestration.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, task

    AIRFLOW_3 = True
except ImportError:  # Airflow 2 (MWAA 2.10, 2.11)
    from airflow import DAG
    from airflow.decorators import task

    AIRFLOW_3 = False

from music_etl.orchestration import airflow as steps
from music_etl.orchestration.config import find_job_config

CONFIG = steps.job_config(find_job_config(near=__file__))
SETTINGS = CONFIG.run_settings()


def wait_for_streams() -> Any:
    """The sensor on `raw/streams/`: S3 or a folder, deferrable where configured."""
    pattern = steps.landing_pattern(SETTINGS)
    common = {
        "task_id": "wait_for_streams",
        "poke_interval": CONFIG.sensor.poke_interval_seconds,
        "timeout": CONFIG.sensor.timeout_seconds,
        "deferrable": CONFIG.sensor.deferrable,
        "mode": "reschedule",
        "soft_fail": True,  # nothing arrived this interval: skip, do not fail
    }
    if pattern.startswith("s3://"):
        from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

        return S3KeySensor(
            bucket_key=pattern, wildcard_match=True, aws_conn_id=CONFIG.dag.aws_conn_id, **common
        )
    try:
        from airflow.providers.standard.sensors.filesystem import FileSensor
    except ImportError:  # Airflow 2.10
        from airflow.sensors.filesystem import FileSensor
    return FileSensor(filepath=pattern, fs_conn_id=CONFIG.dag.fs_conn_id, **common)


# `none_failed`: also when the sensor skipped (no new stream file), a changed users.csv or
# songs.csv still starts a run.
@task.short_circuit(trigger_rule="none_failed")
def has_new_files() -> bool:
    """Stop here unless a stream file is new or changed, or users.csv or songs.csv changed."""
    return steps.has_new_files(CONFIG)


@task
def run_pipeline() -> dict[str, Any]:
    """Claim → validate → transform → load → archive, for every pending file, in one call."""
    return steps.run_pipeline(CONFIG)


@task
def report(summary: dict[str, Any]) -> dict[str, Any]:
    """Log the run's counts and failed files (the run has notified them)."""
    return steps.report(summary)


def retry_backoff(multiplier: float) -> float | bool:
    """`retry_exponential_backoff` as each Airflow takes it.

    Airflow 3 takes the multiplier; Airflow 2 only on/off (a bool in its serialized-DAG
    schema), and its delays then double at each try whatever `multiplier` says.
    """
    return multiplier if AIRFLOW_3 else multiplier > 0


def glue_jobs() -> list[Any]:
    """The Glue jobs of `glue.jobs`, in order."""
    from airflow.providers.amazon.aws.operators.glue import GlueJobOperator

    return [
        GlueJobOperator(
            task_id=job.task_id,
            job_name=job.job_name,
            script_args=steps.glue_arguments(job, SETTINGS),
            aws_conn_id=CONFIG.dag.aws_conn_id,
            region_name=CONFIG.dag.region or None,
            wait_for_completion=True,
            deferrable=CONFIG.glue.deferrable,
            job_poll_interval=CONFIG.glue.poll_interval_seconds,
        )
        for job in CONFIG.glue.jobs
    ]


with DAG(
    dag_id=CONFIG.dag.dag_id,
    schedule=CONFIG.dag.schedule,
    start_date=datetime.fromisoformat(CONFIG.dag.start_date).replace(tzinfo=UTC),
    catchup=False,
    max_active_runs=CONFIG.dag.max_active_runs,
    tags=list(CONFIG.dag.tags),
    doc_md=__doc__,
    default_args={
        "retries": CONFIG.dag.retries,
        "retry_delay": timedelta(seconds=CONFIG.dag.retry_delay_seconds),
        "retry_exponential_backoff": retry_backoff(CONFIG.dag.retry_exponential_backoff),
        "max_retry_delay": timedelta(seconds=CONFIG.dag.max_retry_delay_seconds),
        "execution_timeout": timedelta(seconds=CONFIG.dag.execution_timeout_seconds),
        "on_failure_callback": steps.failure_callback(CONFIG),
    },
) as dag:
    gate = wait_for_streams() >> has_new_files()
    if CONFIG.dag.mode == "glue":
        upstream = gate
        for job in glue_jobs():
            upstream = upstream >> job
    else:
        summary = run_pipeline()
        gate >> summary
        report(summary)
