"""The Glue jobs: three stages that together leave the lake as one `music-etl run` does.

The stage functions are checked in process on the embedded engine (fast, several rounds,
interrupted between stages); the three scripts are run as subprocesses on Spark local
mode, as Glue runs them, against a local lake.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import NOW, Lake
from lake_snapshot import ledger_rows, parquet_files, serving_items
from music_etl.errors import ConfigError
from music_etl.integrations import glue
from music_etl.integrations.glue_args import job_settings, resolve_args
from music_etl.pipeline.run import run
from test_edge_matrix import stream_file
from test_hostile_input import GOOD

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {
    "validation": ROOT / "glue_jobs" / "validation" / "glue_validation.py",
    "transform": ROOT / "glue_jobs" / "transform" / "glue_transform.py",
    "load": ROOT / "glue_jobs" / "load" / "load_dynamo.py",
}
ROUNDS = (
    {
        "a.csv": stream_file("1,t1,2024-06-21 10:00:00", "2,t2,2024-06-22 10:00:00", "x,t1,y"),
        "b.csv": GOOD,
    },
    {
        "a.csv": stream_file("1,t4,2024-06-24 10:00:00", "5,t1,2024-06-24 10:00:00"),
        "c.csv": stream_file("6,t2,2024-06-22 12:00:00", "1,t1,2024-06-25 01:00:00"),
    },
)


def lake_state(lake: Lake) -> tuple[object, ...]:
    settings = lake.settings()
    return (parquet_files(lake.root), ledger_rows(settings), serving_items(settings))


def twin_lakes(tmp_path: Path) -> tuple[Lake, Lake]:
    made = []
    for name in ("glue", "run"):
        lake = Lake(tmp_path / name)
        lake.put_dimensions()
        made.append(lake)
    return made[0], made[1]


def land(lakes: tuple[Lake, ...], files: dict[str, bytes]) -> None:
    for lake in lakes:
        for name, data in files.items():
            lake.put_raw(name, data)


# --------------------------------------------------------------------------- arguments


def test_arguments_ignore_what_glue_adds() -> None:
    argv = ["job.py", "--JOB_NAME", "x", "--LAKE_ROOT", "/l", "--TempDir", "s3://t", "--NOW", NOW]
    assert resolve_args(argv) == {"LAKE_ROOT": "/l", "NOW": NOW}


def test_the_seed_output_path_names_the_lake() -> None:
    settings = job_settings(resolve_args(["job.py", "--S3_OUTPUT_PATH", "/lake"]))
    assert (settings.lake, settings.engine) == ("/lake", "spark")


def test_validation_takes_the_raw_key() -> None:
    args = resolve_args(
        ["job.py", "--LAKE_ROOT", "/l", "--RAW_KEY", "raw/streams/a.csv"], ("RAW_KEY",)
    )
    assert args["RAW_KEY"] == "raw/streams/a.csv"


def test_a_job_without_a_lake_says_what_to_pass() -> None:
    with pytest.raises(ConfigError, match="--LAKE_ROOT"):
        resolve_args(["job.py", "--ENGINE", "polars"])


# --------------------------------------------------------------------------- stages


def test_stages_in_turn_equal_one_run(tmp_path: Path) -> None:
    glue_lake, run_lake = twin_lakes(tmp_path)
    for files in ROUNDS:
        land((glue_lake, run_lake), files)
        settings = glue_lake.settings(engine="polars", bad_row_threshold=0.5)
        validated = glue.validate_stage(settings)
        assert glue.read_days(glue_lake.storage, glue.PENDING_DAYS) == validated.days
        assert glue.transform_stage(settings) == validated.days
        assert glue.load_stage(settings) == validated.days
        run(run_lake.settings(bad_row_threshold=0.5))
        assert lake_state(glue_lake) == lake_state(run_lake)
    assert not glue_lake.storage.exists(glue.PENDING_DAYS)
    assert not glue_lake.storage.exists(glue.LOADABLE_DAYS)


def test_stages_catch_up_after_missed_runs(tmp_path: Path) -> None:
    """Two validations before any transform, a transform repeated, a load repeated."""
    glue_lake, run_lake = twin_lakes(tmp_path)
    settings = glue_lake.settings(engine="polars", bad_row_threshold=0.5)
    days: set[str] = set()
    for files in ROUNDS:
        land((glue_lake, run_lake), files)
        days |= set(glue.validate_stage(settings).days)
        run(run_lake.settings(bad_row_threshold=0.5))
    assert set(glue.transform_stage(settings)) == days
    assert glue.transform_stage(settings) == ()
    assert set(glue.load_stage(settings)) == days
    assert glue.load_stage(settings) == ()
    assert lake_state(glue_lake) == lake_state(run_lake)


# --------------------------------------------------------------------------- scripts


def run_script(stage: str, lake: Lake) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_ETL_")}
    argv = [sys.executable, str(SCRIPTS[stage]), "--JOB_NAME", f"music-etl-{stage}"]
    argv += ["--LAKE_ROOT", str(lake.root), "--NOW", NOW, "--BAD_ROW_THRESHOLD", "0.5"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.xdist_group("spark")
@pytest.mark.skipif(not (shutil.which("java") or os.environ.get("JAVA_HOME")), reason="no Java")
def test_glue_scripts_on_spark_equal_one_embedded_run(tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    glue_lake, run_lake = twin_lakes(tmp_path)
    land((glue_lake, run_lake), {**ROUNDS[0], "c.csv": ROUNDS[1]["c.csv"]})
    validation = run_script("validation", glue_lake)
    assert [f["status"] for f in validation["files"]] == ["done"] * 3  # type: ignore[union-attr]
    transform = run_script("transform", glue_lake)
    assert transform["days"] == validation["days"]
    assert run_script("load", glue_lake)["days"] == validation["days"]
    run(run_lake.settings(bad_row_threshold=0.5))
    assert lake_state(glue_lake) == lake_state(run_lake)
