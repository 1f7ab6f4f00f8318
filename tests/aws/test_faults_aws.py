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
from music_etl.adapters.faults import CRASH_EXIT_CODE, Faulty, InjectedFault
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
