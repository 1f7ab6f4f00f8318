"""How much Spark work one batch costs: jobs and stages, counted so that regressions show.

The limits are the counts measured when the engine was made lean (docs/spark-engine.md,
"Performance notes"), with a little room; raise them only with a reason written there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import SPARK, Lake
from music_etl.engines.spark.io import union_of_files
from music_etl.pipeline.run import run

pytestmark = list(SPARK)

#: A batch of two stream files on a lake whose dimensions are loaded: 42 jobs and 42
#: stages that ran tasks when measured (adaptive execution runs each shuffle stage as a
#: job of its own; the batch takes two threshold passes, each counting its repeated keys
#: to broadcast them), plus a little room.
MAX_JOBS = 45
MAX_STAGES = 45


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


def test_a_batch_is_spread_by_size_so_that_each_tasks_sorts_stay_small(
    spark: Any, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task's sorts hold its rows in the heap: past a few hundred MB of CSV, spreading a
    batch over the cores only made each task's sorts big enough to grow the driver's heap
    (docs/spark-engine.md). Here one task per 50 bytes: each file its own task, and the
    shuffles as many partitions as the size says; the rows come out the same."""
    from music_etl.engines.spark import engine as spark_engine

    settings = lake.settings(engine="spark")
    run(settings)  # the dimensions
    again = (2, "t2", "2024-06-25 11:00:00")
    rows = [[(1, "t1", f"2024-06-2{n} 10:00:00"), again] for n in range(6)]
    keys = [lake.put_streams(f"{n}.csv", file) for n, file in enumerate(rows)]
    size = sum((lake.root / key).stat().st_size for key in keys)
    spread: list[int] = []

    def union(raws: Any, partitions: int) -> Any:
        union = union_of_files(raws, partitions)
        spread.append(union.rdd.getNumPartitions())
        return union

    monkeypatch.setattr(spark_engine, "_BYTES_PER_TASK", 50)
    monkeypatch.setattr(spark_engine, "union_of_files", union)
    report = run(settings)
    assert spread == [6], "one task per file: the batch is over 6 x 50 bytes"
    assert int(spark.conf.get("spark.sql.shuffle.partitions")) == -(-size // 50) > 6
    assert sorted(f.rows_valid for f in report.files) == [1] * 5 + [2], "2's row: first file's"


# --------------------------------------------------------------------------- no shuffle of a batch


def _batch_like(spark: Any, rows: int, partitions: int) -> Any:
    """Valid judged rows: every key once, then the first `rows // 5` keys again."""
    from pyspark.sql import functions as F  # noqa: N812 - the conventional alias

    from music_etl.engines.outcomes import LINE, ORDER, REASON

    first = rows - rows // 5
    return spark.range(0, rows, numPartitions=partitions).select(
        (F.col("id") + 2).alias(LINE),
        F.lit(0).cast("int").alias(ORDER),
        F.lit(None).cast("string").alias(REASON),
        (F.col("id") % first).alias("user_id"),
        F.lit("t1").alias("track_id"),
        F.lit("2024-06-25 10:00:00").cast("timestamp").alias("listen_time"),
    )


def test_repeated_keys_are_broadcast_so_the_batch_is_never_shuffled(spark: Any) -> None:
    """Spark sizes a checkpoint by the plan it came from: left alone, it would plan a
    sort-merge join that shuffles and sorts the whole batch (here forced by a tiny
    broadcast threshold, as a 10 M-row batch forces it with the default one)."""
    from pyspark.sql import functions as F  # noqa: N812 - the conventional alias

    from music_etl.engines.outcomes import REASON
    from music_etl.engines.procedure import occurrence_rules
    from music_etl.engines.spark.rules import apply_first_occurrence
    from music_etl.logic.contract import STREAMS

    rule = occurrence_rules(STREAMS)[0]
    frame = _batch_like(spark, 5_000, partitions=3)
    seen = spark.range(0, 10).select(
        F.col("id").alias("user_id"),
        F.lit("t1").alias("track_id"),
        F.lit("2024-06-25 10:00:00").cast("timestamp").alias("listen_time"),
    )
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "1k")
    try:
        judged = apply_first_occurrence(frame, rule, seen)
        plan = judged._jdf.queryExecution().executedPlan().toString()
        assert "BroadcastHashJoin" in plan
        assert "SortMergeJoin" not in plan
        assert judged.rdd.getNumPartitions() == 3, "the batch keeps its partitions"
        reasons = {r[0]: r[1] for r in judged.groupBy(REASON).count().collect()}
    finally:
        spark.conf.unset("spark.sql.autoBroadcastJoinThreshold")
    # 1,000 later repeats; keys 0-9 were accepted before, so their first rows fail too.
    assert reasons == {None: 3_990, rule.reason: 1_010}


def _files(root: Path, prefix: str) -> dict[str, list[int]]:
    import pyarrow.parquet as pq

    return {
        str(path.relative_to(root)): pq.read_table(path).column("id").to_pylist()
        for path in sorted((root / prefix).rglob("*.parquet"))
    }


def _write(spark: Any, storage: Any, frame: Any, group: str) -> int:
    """Write `frame` grouped by `k`, ids descending; the Spark jobs it took."""
    from music_etl.engines.spark.output import TempWriter

    spark.sparkContext.setJobGroup(group, group)
    try:
        TempWriter(spark, storage).write(
            frame,
            partition_by=("k",),
            order_by=("neg",),
            columns=("id",),
            key_of=lambda v: f"out/{group}/{v['k']}.parquet",
            grouped=True,
        )
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    return _work(spark, group)[0]


def test_grouped_writes_need_no_shuffle_and_fall_back_to_one_when_rows_are_spread(
    spark: Any, tmp_path: Path
) -> None:
    from pyspark.sql import functions as F  # noqa: N812 - the conventional alias

    from music_etl.adapters.storage.local import LocalStorage

    storage = LocalStorage(tmp_path)
    ids = spark.range(0, 300, numPartitions=3)
    # Each key in one partition, as a batch's source files are: written where they are.
    grouped = ids.select(
        F.spark_partition_id().cast("string").alias("k"), "id", (-F.col("id")).alias("neg")
    )
    # Each key in every partition: two files per key at first, so shuffled and rewritten.
    spread = ids.select(
        (F.col("id") % 3).cast("string").alias("k"), "id", (-F.col("id")).alias("neg")
    )
    jobs_grouped = _write(spark, storage, grouped, "grouped")
    jobs_spread = _write(spark, storage, spread, "spread")
    assert _files(tmp_path, "out/grouped") == {
        f"out/grouped/{k}.parquet": list(range(100 * k + 99, 100 * k - 1, -1)) for k in range(3)
    }
    assert _files(tmp_path, "out/spread") == {
        f"out/spread/{k}.parquet": [i for i in range(299, -1, -1) if i % 3 == k] for k in range(3)
    }
    assert jobs_grouped == 1, "a grouped write is one job: no shuffle"
    assert jobs_spread > jobs_grouped + 1, "the spread rows were written, then shuffled"
    assert not list((tmp_path / "_tmp").rglob("*.parquet")), "the temp folder is cleaned"
