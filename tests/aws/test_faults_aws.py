"""Faults in the AWS mode: throttling and 5xx, a failure and a crash mid-load, racing runners.

Each scenario must end in the state of an undisturbed run (the embedded mode's, which
the plain AWS run equals), with nothing counted twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aws.helpers import SAMPLE, AwsLake, FaultHook, clients, generate_sample
from lake_snapshot import state_diff
from music_etl.adapters.faults import (
    CRASH_EXIT_CODE,
    Faulty,
    InjectedFault,
    RewrittenBeforeMove,
)
from music_etl.adapters.ledger.base import CLAIMED, DONE, FAILED
from music_etl.pipeline.components import open_components
from music_etl.pipeline.progress import Silent
from music_etl.pipeline.run import run, run_with

pytestmark = pytest.mark.aws
RUNNER = Path(__file__).with_name("aws_runner.py")
MUSIC_ETL = Path(sys.executable).parent / "music-etl"


def test_throttling_and_server_errors_are_retried(
    aws_lake: AwsLake, embedded_state: dict[str, Any]
) -> None:
    generate_sample(aws_lake.storage())
    components = open_components(aws_lake.settings())
    hook = FaultHook(every=7, throttle_every=5, seed=3).install(*clients(components))
    report = run_with(components, Silent())
    assert len(report.processed) == SAMPLE["files"]
    assert state_diff(aws_lake.state(), embedded_state) == []
    assert set(hook.injected) == {
        "s3 5xx",
        "s3 throttle",
        "dynamodb 5xx",
        "dynamodb throttle",
    }, hook.injected


def test_a_failure_mid_load_is_completed_by_the_next_run(
    aws_lake: AwsLake, embedded_state: dict[str, Any]
) -> None:
    generate_sample(aws_lake.storage())
    components = open_components(aws_lake.settings())
    serving: Any = components.serving
    serving.client = Faulty(serving.client, method="batch_write_item", nth=3)
    with pytest.raises(InjectedFault):
        run_with(components, Silent())
    records = aws_lake.ledger().records()
    assert {(r.status, r.retryable) for r in records} == {(FAILED, True)}
    run(aws_lake.settings())
    assert state_diff(aws_lake.state(), embedded_state) == []


def runner_env(aws_lake: AwsLake) -> dict[str, str]:
    return {**os.environ, **aws_lake.env()}


@pytest.mark.slow
@pytest.mark.parametrize("point", ["mid_serving_load", "mid_archive"])
def test_a_crash_is_completed_by_the_next_run(
    aws_lake: AwsLake, embedded_state: dict[str, Any], point: str
) -> None:
    generate_sample(aws_lake.storage())
    crashed = subprocess.run(
        [sys.executable, str(RUNNER), point],
        env=runner_env(aws_lake),
        capture_output=True,
        text=True,
        check=False,
    )
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr
    statuses = {r.status for r in aws_lake.ledger().records()}
    assert CLAIMED in statuses, statuses
    report = run(aws_lake.settings())
    assert report.processed
    assert state_diff(aws_lake.state(), embedded_state) == []
    assert {r.status for r in aws_lake.ledger().records()} == {DONE}


@pytest.mark.slow
def test_concurrent_runners_process_each_file_once(
    aws_lake: AwsLake, embedded_state: dict[str, Any]
) -> None:
    generate_sample(aws_lake.storage())
    runners = [
        subprocess.Popen(
            [str(MUSIC_ETL), "run"],
            env=runner_env(aws_lake),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [r.communicate(timeout=120)[0] for r in runners]
    assert [r.returncode for r in runners] == [0, 0, 0], outputs
    assert state_diff(aws_lake.state(), embedded_state) == []
    runs = aws_lake.ledger().runs(10)
    assert len(runs) == 3
    assert sum(r.files for r in runs) == SAMPLE["files"]
    assert sum(r.rows_in for r in runs) == SAMPLE["streams"]


def test_an_upload_racing_the_archive_step_is_kept_and_taken_next(aws_lake: AwsLake) -> None:
    from dataclasses import replace

    from music_etl.logic import layout

    storage = aws_lake.storage()
    generate_sample(storage)
    key = next(i.key for i in storage.list(layout.RAW_STREAMS))
    new = b"user_id,track_id,listen_time\n"  # a corrected file: no rows at all
    components = open_components(aws_lake.settings())
    racing = RewrittenBeforeMove(components.storage, key=key, data=new)
    report = run_with(replace(components, storage=racing), Silent())
    assert racing.rewritten
    raced = next(f for f in report.files if f.key == key)
    assert raced.status == DONE and "changed while it was processed" in raced.message
    # The upload is neither lost nor archived under the validated version's manifest.
    assert storage.read_bytes(key) == new
    manifests = [i.key for i in storage.list(layout.ARCHIVE_MANIFEST)]
    assert not any(layout.source_id(key) in m for m in manifests)

    second = run(aws_lake.settings())
    assert [(f.key, f.status) for f in second.files] == [(key, DONE)]
    assert storage.read_bytes(layout.archive_key(key)) == new
    assert not list(storage.list(layout.RAW_STREAMS))


def test_a_prefix_that_is_not_a_lake_is_refused_before_anything_is_written(
    aws_lake: AwsLake,
) -> None:
    env = {**os.environ, **aws_lake.env()}
    empty = f"s3://{aws_lake.bucket}/no-such-lake"
    result = subprocess.run(
        [str(MUSIC_ETL), "run", "--lake", empty],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is not a music-etl lake" in result.stderr
    from music_etl.adapters.storage.s3 import S3Storage

    assert list(S3Storage(empty, endpoint=aws_lake.endpoint).list("")) == []
