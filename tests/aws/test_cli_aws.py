"""`music-etl aws …` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aws.helpers import SAMPLE, AwsLake, client, generate_sample
from music_etl.cli.app import app
from music_etl.pipeline.artifacts import RUNS_PREFIX

runner = CliRunner()
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "create_processedstreams_table.py"


@pytest.mark.parametrize("command", ["init", "status"])
def test_every_aws_command_has_help_with_an_example(command: str) -> None:
    result = runner.invoke(app, ["aws", command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example: music-etl aws " + command in " ".join(result.output.split())


def test_aws_init_on_an_embedded_lake_is_a_clean_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["aws", "init", "--lake", str(tmp_path / "lake")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "Neither the ledger nor the serving store is on DynamoDB" in " ".join(
        result.output.split()
    )


@pytest.mark.aws
def test_aws_init_creates_missing_tables_and_the_bucket(s3_lake: AwsLake) -> None:
    env = {**s3_lake.env(), "MUSIC_ETL_LAKE": f"s3://{s3_lake.name}-new/lake"}
    first = runner.invoke(app, ["aws", "init", "--create-bucket"], env=env)
    assert first.exit_code == 0, first.output
    assert f"Created the bucket {s3_lake.name}-new." in first.output
    for table in ("ProcessedStreams", "DailyGenreKPIs", "TopSongsPerGenre", "TopGenresPerDay"):
        assert f"{s3_lake.name}-{table}: created, active" in first.output
    again = runner.invoke(app, ["aws", "init", "--create-bucket"], env=env)
    assert again.exit_code == 0, again.output
    assert "created" not in again.output
    assert "Created the bucket" not in again.output
    client("s3", s3_lake.endpoint).head_bucket(Bucket=f"{s3_lake.name}-new")


@pytest.mark.aws
def test_the_seed_script_creates_the_ledger_table(s3_lake: AwsLake) -> None:
    args = ["--prefix", f"{s3_lake.name}-", "--endpoint", s3_lake.endpoint]
    made = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=True
    )
    assert made.stdout.strip() == f"{s3_lake.name}-ProcessedStreams: created, active"
    again = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=True
    )
    assert again.stdout.strip() == f"{s3_lake.name}-ProcessedStreams: exists, active"


@pytest.mark.aws
def test_missing_region_and_credentials_say_what_to_set(
    s3_lake: AwsLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**s3_lake.env(), "MUSIC_ETL_LAKE": s3_lake.lake}
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    result = runner.invoke(app, ["aws", "status"], env=env)
    assert result.exit_code == 2
    assert "no AWS region" in " ".join(result.output.split())
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    result = runner.invoke(app, ["aws", "status"], env=env)
    assert result.exit_code == 2
    assert "no AWS credentials found" in " ".join(result.output.split())


@pytest.mark.aws
def test_run_json_on_s3_writes_the_artifact_to_the_bucket(aws_lake: AwsLake) -> None:
    generate_sample(aws_lake.storage())
    env = {**os.environ, **aws_lake.env(), "MUSIC_ETL_SETTLE_SECONDS": "0"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "music-etl"), "run", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    storage = aws_lake.storage()
    (key,) = [i.key for i in storage.list(RUNS_PREFIX)]
    assert key.endswith(f"-{printed['run_id']}.json")
    assert json.loads(storage.read_bytes(key)) == printed
    records = {r.file_key: r for r in aws_lake.ledger().records()}
    assert len(printed["files"]) == SAMPLE["files"]
    for f in printed["files"]:
        assert (f["rows_in"], f["rows_valid"], f["rows_bad"]) == (
            records[f["key"]].rows_in,
            records[f["key"]].rows_valid,
            records[f["key"]].rows_bad,
        )
