"""How much Spark work one batch costs: jobs and stages, counted so that regressions show.

The limits are the counts measured when the engine was made lean (docs/spark-engine.md,
"Performance notes"), with a little room; raise them only with a reason written there.
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Lake
from music_etl.pipeline.run import run

pytestmark = [
    pytest.mark.spark,
    pytest.mark.xdist_group("spark"),
    # PySpark's `collect` leaves its result socket to the garbage collector.
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]

#: A batch of two stream files on a lake whose dimensions are loaded: 39 jobs and 39
#: stages that ran tasks when measured (adaptive execution runs each shuffle stage as a
#: job of its own), plus a little room.
MAX_JOBS = 42
MAX_STAGES = 42


def _work(spark: Any, group: str) -> tuple[int, int]:
    """Jobs of `group`, and the stages that ran tasks in them (skipped ones left out)."""
    tracker = spark.sparkContext.statusTracker()
    jobs = tracker.getJobIdsForGroup(group)
    stages = set()
    for job in jobs:
        info = tracker.getJobInfo(job)
        for stage in info.stageIds if info else ():
            stage_info = tracker.getStageInfo(stage)
            if stage_info is not None and stage_info.numCompletedTasks > 0:
                stages.add(stage)
    return len(jobs), len(stages)


def test_a_batch_costs_a_bounded_number_of_spark_jobs_and_stages(spark: Any, lake: Lake) -> None:
    settings = lake.settings(engine="spark")
    run(settings)  # the dimensions, outside the count
    lake.put_streams("a.csv", [(1, "t1", "2024-06-25 10:00:00"), (2, "t2", "2024-06-26 11:00:00")])
    lake.put_streams("b.csv", [(1, "t1", "2024-06-25 10:00:00"), (3, "t9", "2024-06-25 12:00:00")])
    spark.sparkContext.setJobGroup("one-batch", "a batch of two stream files")
    try:
        report = run(settings)
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    assert sorted(f.rows_valid for f in report.files) == [0, 2]
    jobs, stages = _work(spark, "one-batch")
    print(f"one batch: {jobs} Spark jobs, {stages} stages")
    assert jobs <= MAX_JOBS, f"{jobs} Spark jobs for one small batch (limit {MAX_JOBS})"
    assert stages <= MAX_STAGES, f"{stages} Spark stages for one small batch (limit {MAX_STAGES})"
