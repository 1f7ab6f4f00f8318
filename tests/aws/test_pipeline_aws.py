"""The whole pipeline with the lake on S3 and the stores on DynamoDB, against moto over HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aws.helpers import (
    NOW,
    SAMPLE,
    AwsLake,
    client,
    generate_sample,
    lake_state,
)
from conftest import spark_cli_test
from lake_snapshot import state_diff
from music_etl.adapters.ledger import open_ledger
from music_etl.adapters.serving import open_serving
from music_etl.cli import render
from music_etl.cli.app import app
from music_etl.logic.serving_model import SERVING_KEYS
from music_etl.pipeline.artifacts import RUNS_PREFIX
from music_etl.pipeline.lake import mark_lake
from music_etl.pipeline.rebuild import rebuild
from music_etl.pipeline.run import run

pytestmark = pytest.mark.aws
runner = CliRunner()
HELD = "raw/streams/streams_0003.csv"


def aws_snapshot(lake: AwsLake) -> dict[str, Any]:
    """Every object with its ETag and time, every serving item, every ledger record.

    Run artifacts are left out: each run adds one, whatever it changes.
    """
    s3 = client("s3", lake.endpoint)
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=lake.bucket):
        for item in page.get("Contents", []):
            if f"/{RUNS_PREFIX}" not in item["Key"]:
                objects[item["Key"]] = (item["ETag"], item["LastModified"])
    serving = lake.serving()
    return {
        "objects": objects,
        "serving": {name: serving.scan(name) for name in SERVING_KEYS},
        "ledger": lake.ledger().records(),
    }


def test_run_matches_the_embedded_mode_and_a_second_run_changes_nothing(
    aws_lake: AwsLake, embedded_state: dict[str, Any]
) -> None:
    generate_sample(aws_lake.storage())
    report = run(aws_lake.settings())
    assert len(report.processed) == SAMPLE["files"]
    assert not report.failed
    state = aws_lake.state()
    assert state_diff(state, embedded_state) == []
    assert state["raw_streams"] == []
    assert sorted(state["archive"]) == [f"archive/streams/streams_000{i}.csv" for i in (1, 2, 3)]
    before = aws_snapshot(aws_lake)
    again = run(aws_lake.settings())
    assert again.files == []
    assert again.days == ()
    assert aws_snapshot(aws_lake) == before
    assert [r.files for r in aws_lake.ledger().runs(5)] == [0, SAMPLE["files"]]


def test_a_file_arriving_later_then_a_rebuild(
    aws_lake: AwsLake, embedded_state: dict[str, Any]
) -> None:
    storage, settings = aws_lake.storage(), aws_lake.settings()
    generate_sample(storage)
    storage.move(HELD, "hold/streams_0003.csv")
    assert len(run(settings).processed) == 2
    storage.move("hold/streams_0003.csv", HELD)
    assert len(run(settings).processed) == 1
    assert state_diff(aws_lake.state(), embedded_state) == []
    assert len(rebuild(settings).processed) == SAMPLE["files"]
    assert state_diff(aws_lake.state(), embedded_state) == []


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables wide enough that file keys are not cut short."""
    monkeypatch.setattr(render.console, "width", 250)


def reset_moto(endpoint: str) -> None:
    """Forget every bucket and table: this test uses the default, unprefixed table names."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(request) as response:  # noqa: S310
        assert response.status == 200


def cli(args: list[str], env: dict[str, str]) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_cli_with_the_lake_on_s3_and_default_tables(
    s3_lake: AwsLake, embedded_state: dict[str, Any]
) -> None:
    reset_moto(s3_lake.endpoint)
    env = {
        "MUSIC_ETL_LAKE": s3_lake.lake,
        "MUSIC_ETL_AWS_ENDPOINT": s3_lake.endpoint,
        "MUSIC_ETL_NOW": NOW,
    }
    output = cli(["aws", "init", "--create-bucket"], env)
    assert "ProcessedStreams" in output and "DailyGenreKPIs" in output
    generate_sample(s3_lake.storage())
    assert f"{SAMPLE['files']} file(s) processed, 0 failed" in cli(["run"], env)
    assert "raw/streams/streams_0001.csv" in cli(["aws", "status"], env)
    tables = "dynamodb://"
    state = lake_state(
        s3_lake.storage(),
        open_serving(tables, endpoint=s3_lake.endpoint),
        open_ledger(tables, endpoint=s3_lake.endpoint),
    )
    assert state_diff(state, embedded_state) == []
    assert "Nothing new" in cli(["run"], env)


def test_the_standard_aws_endpoint_variable_is_honoured(
    aws_lake: AwsLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_lake.endpoint)
    env = {"MUSIC_ETL_LAKE": aws_lake.lake, "MUSIC_ETL_NOW": NOW}
    env |= {"MUSIC_ETL_SERVING": aws_lake.dynamodb, "MUSIC_ETL_LEDGER": aws_lake.dynamodb}
    aws_lake.storage().write_bytes("raw/streams/empty.csv", b"user_id,track_id,listen_time\n")
    generate_sample(aws_lake.storage())
    output = cli(["run"], env)
    assert f"{SAMPLE['files'] + 1} file(s) processed" in output
    assert "raw/streams/empty.csv" in cli(["aws", "status"], env)


def test_glue_stages_on_s3_equal_one_embedded_run(
    aws_lake: AwsLake, embedded_state: dict[str, Any]
) -> None:
    """The Glue jobs' stages (on the embedded engine) read and write S3 and DynamoDB alike."""
    from music_etl.integrations import glue

    generate_sample(aws_lake.storage())
    settings = aws_lake.settings()
    validated = glue.validate_stage(settings)
    assert len(validated.processed) == SAMPLE["files"]
    assert glue.transform_stage(settings) == validated.days
    assert glue.load_stage(settings) == validated.days
    state = aws_lake.state()
    assert state["raw_streams"] == []
    assert state_diff(state, embedded_state) == []


@spark_cli_test
@pytest.mark.skipif(not (shutil.which("java") or os.environ.get("JAVA_HOME")), reason="no Java")
def test_spark_without_the_s3a_connector_is_a_configuration_error(aws_lake: AwsLake) -> None:
    """PySpark alone has no `s3://`: exit 2 naming the jars, not a retry, nothing changed."""
    generate_sample(aws_lake.storage())
    mark_lake(aws_lake.storage())
    before = aws_snapshot(aws_lake)
    dropped = ("MUSIC_ETL_", "PYSPARK_", "SPARK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env |= aws_lake.env() | {"MUSIC_ETL_ENGINE": "spark"}
    command = [str(Path(sys.executable).parent / "music-etl"), "run"]
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=600, check=False
    )
    message = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, message[-3000:]
    assert f"Spark has no file system for {aws_lake.lake}/_tmp/spark/" in message
    assert "spark.jars" in message and "Traceback" not in message
    after = aws_snapshot(aws_lake)
    assert after["objects"] == before["objects"]
    assert after["serving"] == before["serving"]
    assert [r.status for r in after["ledger"] if r.status == "done"] == []
