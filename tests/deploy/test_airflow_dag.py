"""dags/stream_metrics_pipeline.py in a real Airflow: 3.3, and MWAA's 2.11.2.

DagBag import, then `dag.test()` end to end: on a local lake, on S3 and DynamoDB on the
moto server, in Glue mode against moto's Glue, and a failure that retries and notifies.
Every test runs on both Airflow venvs (`venv` fixture).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from aws.helpers import NOW, REGION, AwsLake, client, generate_sample, lake_state
from conftest import Lake
from deploy import airflow_venv as af
from deploy.webhook_server import webhook_server
from lake_snapshot import state_diff
from music_etl.adapters.ledger import open_ledger
from music_etl.adapters.ledger.base import new_owner
from music_etl.adapters.serving import open_serving
from music_etl.adapters.storage.local import LocalStorage
from music_etl.pipeline.run import run
from music_etl.settings import load_settings

pytestmark = pytest.mark.airflow
LOCAL_TASKS = ["has_new_files", "report", "run_pipeline", "wait_for_streams"]
GLUE_TASKS = ["has_new_files", "load", "transform", "validate", "wait_for_streams"]


@pytest.fixture(scope="session", params=[3, 2], ids=["airflow3", "airflow2"])
def venv(request: pytest.FixtureRequest) -> af.Venv:
    """Each Airflow venv in turn: Airflow 3, then MWAA's Airflow 2.11.2."""
    chosen = af.VENVS[request.param]
    af.require_venv(chosen)
    return chosen


@pytest.fixture(scope="session")
def migrated(venv: af.Venv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An AIRFLOW_HOME with a migrated sqlite database, copied by each test."""
    home = tmp_path_factory.mktemp(f"airflow{venv.line}-template")
    seconds = af.migrate(venv, home)
    print(f"airflow {venv.line} db migrate: {seconds:.1f}s")  # shown with -s, for timings
    return home


@pytest.fixture
def airflow_env(migrated: Path, tmp_path: Path) -> dict[str, str]:
    """The environment of one Airflow subprocess: its own home and database."""
    return af.base_env(af.new_home(migrated, tmp_path / "airflow-home")) | {"MUSIC_ETL_NOW": NOW}


def local_sample(root: Path) -> LocalStorage:
    storage = LocalStorage(root)
    generate_sample(storage)
    return storage


def expected_state(tmp_path: Path) -> dict[str, Any]:
    """What `music_etl.run` makes of the standard sample, run directly."""
    root = tmp_path / "expected"
    storage = local_sample(root)
    settings = load_settings(env={}, config=root / "none.toml", lake=str(root), now=NOW)
    run(settings)
    return lake_state(storage, open_serving(settings.serving_url), open_ledger(settings.ledger_url))


def local_state(root: Path) -> dict[str, Any]:
    settings = load_settings(env={}, config=root / "none.toml", lake=str(root), now=NOW)
    return lake_state(
        LocalStorage(root), open_serving(settings.serving_url), open_ledger(settings.ledger_url)
    )


# --------------------------------------------------------------------------- DagBag


def test_dagbag_imports_the_local_dag(
    venv: af.Venv, airflow_env: dict[str, str], tmp_path: Path
) -> None:
    env = airflow_env | {"MUSIC_ETL_LAKE": str(tmp_path / "lake")}
    found = af.dag_runner(venv, "import", env)
    assert found["import_errors"] == {}
    dag = found["dags"][af.DAG_ID]
    assert dag["tasks"] == LOCAL_TASKS
    assert dag["edges"] == [
        ["has_new_files", "run_pipeline"],
        ["run_pipeline", "report"],
        ["wait_for_streams", "has_new_files"],
    ]
    assert dag["max_active_runs"] == 1
    assert dag["catchup"] is False
    assert dag["schedule"] == "*/30 * * * *"
    assert set(dag["retries"].values()) == {3}
    # Airflow 3 takes the multiplier; Airflow 2's schema a bool (its multiplier is always 2).
    assert set(dag["backoff"].values()) == ({2.0} if venv.line == 3 else {True})
    assert dag["callbacks"] == LOCAL_TASKS
    # A skipped (soft-failed) sensor still lets a changed users.csv/songs.csv start a run.
    assert dag["trigger_rules"]["has_new_files"].lower().endswith("none_failed")
    assert dag["kinds"]["wait_for_streams"] == "FileSensor"
    assert dag["deferrable"]["wait_for_streams"] is True


def test_dagbag_imports_the_glue_dag(
    venv: af.Venv, airflow_env: dict[str, str], tmp_path: Path
) -> None:
    config = af.job_config(
        tmp_path / "jobs.json", dag={"mode": "glue"}, settings={"lake": "s3://bucket/music"}
    )
    found = af.dag_runner(venv, "import", airflow_env | {"MUSIC_ETL_JOB_CONFIGS": str(config)})
    assert found["import_errors"] == {}
    dag = found["dags"][af.DAG_ID]
    assert dag["tasks"] == GLUE_TASKS
    assert dag["edges"] == [
        ["has_new_files", "validate"],
        ["transform", "load"],
        ["validate", "transform"],
        ["wait_for_streams", "has_new_files"],
    ]
    assert dag["kinds"]["wait_for_streams"] == "S3KeySensor"
    assert dag["kinds"]["validate"] == "GlueJobOperator"
    assert dag["glue_args"]["validate"]["--LAKE_ROOT"] == "s3://bucket/music"


@pytest.mark.parametrize("mode", ["local", "glue"])
def test_the_dag_serializes_and_reads_back(
    venv: af.Venv, airflow_env: dict[str, str], tmp_path: Path, mode: str
) -> None:
    """The scheduler's own round trip: Airflow 2's schema wants a bool backoff."""
    config = af.job_config(
        tmp_path / "jobs.json", dag={"mode": mode}, settings={"lake": str(tmp_path / "lake")}
    )
    found = af.dag_runner(venv, "serialize", airflow_env | {"MUSIC_ETL_JOB_CONFIGS": str(config)})
    assert found.pop("import_errors") == {}
    dag = found[af.DAG_ID]
    assert dag["tasks"] == (GLUE_TASKS if mode == "glue" else LOCAL_TASKS)
    assert set(dag["retries"].values()) == {3}
    assert set(dag["backoff"].values()) == ({2.0} if venv.line == 3 else {True})


def test_glue_mode_needs_no_embedded_engine(
    venv: af.Venv, airflow_env: dict[str, str], tmp_path: Path
) -> None:
    """What an MWAA worker with `music-streaming-etl` (no extras) does in Glue mode."""
    lake = Lake(tmp_path / "lake")
    lake.put_dimensions()
    lake.put_streams("one.csv", [(1, "t1", "2024-06-01 10:00:00")])
    config = af.job_config(
        tmp_path / "jobs.json", dag={"mode": "glue"}, settings={"lake": str(lake.root)}
    )
    env = airflow_env | {"MUSIC_ETL_JOB_CONFIGS": str(config), "MUSIC_ETL_SETTLE_SECONDS": "0"}
    found = af.dag_runner(venv, "lean", env)
    assert found == {
        "mode": "glue",
        "tasks": GLUE_TASKS,
        "has_new_files": True,
        "loaded": [],
    }


# --------------------------------------------------------------------------- dag test


def test_dag_runs_end_to_end_on_a_local_lake(
    venv: af.Venv, airflow_env: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "lake"
    local_sample(root)
    env = airflow_env | {"MUSIC_ETL_LAKE": str(root)}
    # Then the same file lands again: nothing new, the ledger short-circuits the second run.
    landed_again = (root / "archive/streams/streams_0001.csv", root / "raw/streams/")
    result = af.dag_runner(venv, "test", env, *landed_again)
    assert result["state"] == "success"
    assert set(result["tasks"].values()) == {"success"}
    assert result["again"]["tasks"] == {
        "wait_for_streams": "success",
        "has_new_files": "success",
        "run_pipeline": "skipped",
        "report": "skipped",
    }
    assert state_diff(local_state(root), expected_state(tmp_path)) == []


@pytest.mark.aws
def test_dag_runs_end_to_end_on_s3(
    venv: af.Venv, airflow_env: dict[str, str], moto_endpoint: str, aws_env: None, tmp_path: Path
) -> None:
    lake = moto_lake(moto_endpoint, tmp_path)
    generate_sample(lake.storage())
    result = af.dag_runner(venv, "test", airflow_env | aws_process_env(lake))
    assert result["state"] == "success"
    assert set(result["tasks"].values()) == {"success"}
    assert state_diff(lake.state(), expected_state(tmp_path)) == []


@pytest.mark.aws
def test_glue_mode_starts_each_glue_job_in_order(
    venv: af.Venv, airflow_env: dict[str, str], moto_endpoint: str, aws_env: None, tmp_path: Path
) -> None:
    lake = moto_lake(moto_endpoint, tmp_path)
    generate_sample(lake.storage())
    config = json.loads(af.job_config(tmp_path / "base.json").read_text())
    jobs = [dict(job, job_name=f"{lake.name}-{job['task_id']}") for job in config["glue"]["jobs"]]
    glue = client("glue", moto_endpoint)
    for job in jobs:
        glue.create_job(
            Name=job["job_name"],
            Role="arn:aws:iam::123456789012:role/glue",
            Command={"Name": "glueetl", "ScriptLocation": f"s3://{lake.bucket}/{job['script']}"},
        )
    path = af.job_config(
        tmp_path / "jobs.json",
        dag={"mode": "glue", "region": REGION},
        glue={"jobs": jobs, "poll_interval_seconds": 1},
    )
    env = airflow_env | aws_process_env(lake) | {"MUSIC_ETL_JOB_CONFIGS": str(path)}
    result = af.dag_runner(venv, "test", env)
    assert result["state"] == "success", result
    assert set(result["tasks"].values()) == {"success"}
    started, flows = [], set()
    for job in jobs:
        [job_run] = glue.get_job_runs(JobName=job["job_name"])["JobRuns"]
        assert job_run["Arguments"]["--LAKE_ROOT"] == lake.lake
        started.append(job_run["StartedOn"])
        flows.add(job_run["Arguments"]["--FLOW_ID"])
    assert started == sorted(started)
    # One DAG run, one flow id (Airflow's run id, templated per run) in the three jobs.
    [flow] = flows
    assert flow
    assert "{" not in flow


def test_a_failing_task_retries_then_notifies(
    venv: af.Venv, airflow_env: dict[str, str], tmp_path: Path
) -> None:
    lake = Lake(tmp_path / "lake")
    lake.put_dimensions()
    lake.put_streams("one.csv", [(1, "t1", "2024-06-01 10:00:00")])
    settings = lake.settings()
    ledger = open_ledger(settings.ledger_url)
    assert ledger.acquire_lock("lake", new_owner(), 3600)  # another live runner holds the lake
    config = af.job_config(tmp_path / "jobs.json", dag={"retries": 1, "retry_delay_seconds": 1})
    with webhook_server() as hook:
        env = airflow_env | {
            "MUSIC_ETL_JOB_CONFIGS": str(config),
            "MUSIC_ETL_LAKE": str(lake.root),
            "MUSIC_ETL_LOCK_WAIT_SECONDS": "0",
            "MUSIC_ETL_NOTIFIER": hook.url,
        }
        result = af.dag_runner(venv, "test", env)
    assert result["state"] == "failed"
    assert result["tasks"]["has_new_files"] == "failed"
    [message] = hook.received
    text = message["text"]
    assert text.startswith(f"*music-etl: Airflow task {af.DAG_ID}.has_new_files failed*")
    assert "try 2)" in text  # the retryable LockHeld was retried once
    assert "Another run holds the lock" in text


# --------------------------------------------------------------------------- helpers


def moto_lake(endpoint: str, tmp_path: Path) -> AwsLake:
    lake = AwsLake(endpoint=endpoint, name=f"af{int(time.time() * 1000) % 10**9}", tmp=tmp_path)
    client("s3", endpoint).create_bucket(Bucket=lake.bucket)
    lake.create_tables()
    return lake


def aws_process_env(lake: AwsLake) -> dict[str, str]:
    """Settings, fake credentials and the Airflow AWS connection, all pointing at moto."""
    connection = {
        "conn_type": "aws",
        "extra": {"endpoint_url": lake.endpoint, "region_name": REGION},
    }
    return lake.env() | {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
    }
