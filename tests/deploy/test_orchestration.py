"""`music_etl.orchestration`: the job config and the DAG's tasks, without Airflow."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import Lake
from deploy.conftest import REPO
from music_etl.errors import ConfigError, DimensionError
from music_etl.orchestration import airflow as steps
from music_etl.orchestration.config import (
    ENV_VAR,
    GlueJob,
    find_job_config,
    load_job_config,
)
from music_etl.settings import Settings

CONFIG = REPO / "configs" / "job_configs.json"


def write(tmp_path: Path, **sections: object) -> Path:
    data = json.loads(CONFIG.read_text())
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    path = tmp_path / "job_configs.json"
    path.write_text(json.dumps(data))
    return path


def test_the_shipped_config_loads() -> None:
    config = load_job_config(CONFIG)
    assert config.dag.mode == "local"
    assert config.dag.max_active_runs == 1
    assert [j.task_id for j in config.glue.jobs] == ["validate", "transform", "load"]
    assert config.glue.jobs[0].arguments["--LAKE_ROOT"] == "{lake}"


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"dag": {"mode": "cloud"}}, "dag.mode must be one of"),
        ({"dag": {"max_active_runs": 2}}, "max_active_runs must be 1"),
        ({"dag": {"shedule": "@daily"}}, "unknown key.*shedule"),
        ({"dag": {"mode": "glue"}, "glue": {"jobs": []}}, "glue.jobs is empty"),
    ],
)
def test_config_mistakes_name_the_key(
    tmp_path: Path, sections: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_job_config(write(tmp_path, **sections))


def test_unreadable_config_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="Cannot read the job config"):
        load_job_config(tmp_path / "bad.json")


def test_config_is_found_by_variable_or_beside_the_dag(tmp_path: Path) -> None:
    assert find_job_config(env={ENV_VAR: "/x/jobs.json"}) == Path("/x/jobs.json")
    assert find_job_config(near=REPO / "dags" / "stream_metrics_pipeline.py", env={}) == CONFIG
    with pytest.raises(ConfigError, match=ENV_VAR):
        find_job_config(near=tmp_path / "dag.py", env={})


def test_environment_wins_over_the_files_settings(tmp_path: Path) -> None:
    config = load_job_config(write(tmp_path, settings={"lake": "/from/file", "engine": "spark"}))
    settings = config.run_settings(env={"MUSIC_ETL_LAKE": "/from/env"})
    assert settings.lake == "/from/env"
    assert settings.engine == "spark"


def test_landing_pattern() -> None:
    assert steps.landing_pattern(Settings(lake="s3://b/m/")) == "s3://b/m/raw/streams/*"
    assert steps.landing_pattern(Settings(lake="/data/lake")) == "/data/lake/raw/streams/*"


def test_glue_arguments_fill_templates_and_drop_empty_values() -> None:
    job = GlueJob(
        task_id="validate",
        job_name="v",
        script="glue_jobs/validation/glue_validation.py",
        arguments={"--LAKE_ROOT": "{lake}", "--LEDGER": "{ledger_url}", "--NOTIFIER": "{notifier}"},
    )
    args = steps.glue_arguments(job, Settings(lake="s3://b/m"))
    assert args == {"--LAKE_ROOT": "s3://b/m", "--LEDGER": "dynamodb://"}
    bad = GlueJob(task_id="t", job_name="t", script="x", arguments={"--X": "{nope}"})
    with pytest.raises(ConfigError, match="'nope' is not one of"):
        steps.glue_arguments(bad, Settings())


def test_short_circuit_follows_the_ledger(lake: Lake, tmp_path: Path) -> None:
    config = load_job_config(write(tmp_path, settings={"lake": str(lake.root)}))
    env = {"MUSIC_ETL_NOW": "2024-07-01T00:00:00Z"}
    dimensions = ["raw/users/users.csv", "raw/songs/songs.csv"]  # never snapshotted yet
    assert steps.pending_files(config.run_settings(env=env)) == dimensions
    lake.put_streams("a.csv", [(1, "t1", "2024-06-01 10:00:00")])
    assert steps.pending_files(config.run_settings(env=env)) == [*dimensions, "raw/streams/a.csv"]


def test_run_pipeline_summarises_the_run(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUSIC_ETL_NOW", "2024-07-01T00:00:00Z")
    config = load_job_config(write(tmp_path, settings={"lake": str(lake.root)}))
    lake.put_streams("a.csv", [(1, "t1", "2024-06-01 10:00:00")])
    lake.put_raw("b.csv", b"user_id\n1\n")
    assert steps.has_new_files(config)
    summary = steps.run_pipeline(config)
    assert summary["files"] == 2
    assert summary["processed"] == 1
    assert summary["days"] == ["2024-06-01"]
    assert summary["failed"] == [
        {
            "file": "raw/streams/b.csv",
            "reason": "missing_column",
            "message": summary["failed"][0]["message"],
            "rows_in": 0,
        }
    ]
    assert steps.report(summary) == summary
    assert not steps.has_new_files(config)


def test_terminal_errors_pass_through_without_airflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUSIC_ETL_NOW", "2024-07-01T00:00:00Z")
    marker = tmp_path / "empty" / "_state" / "lake.json"  # a lake, but without its dimensions
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    config = load_job_config(write(tmp_path, settings={"lake": str(tmp_path / "empty")}))
    with pytest.raises(DimensionError):
        steps.run_pipeline(config)


def test_task_failure_notification_names_task_try_and_error() -> None:
    ti = SimpleNamespace(
        dag_id="stream_metrics_pipeline",
        task_id="run_pipeline",
        run_id="scheduled__1",
        try_number=4,
        log_url="http://airflow/log",
    )
    note = steps.task_failure_notification({"ti": ti, "exception": ValueError("boom")})
    assert note.subject == "music-etl: Airflow task stream_metrics_pipeline.run_pipeline failed"
    assert note.text.splitlines() == [
        "Task run_pipeline of DAG stream_metrics_pipeline failed (run scheduled__1, try 4).",
        "ValueError: boom",
        "Log: http://airflow/log",
    ]
