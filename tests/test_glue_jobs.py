"""The Glue jobs: three stages that together leave the lake as one `music-etl run` does.

The stage functions are checked in process on the embedded engine (fast, several rounds,
interrupted between stages) and as the three scripts in subprocesses (artifacts, JSON
events, the lock). The scripts on Spark, installed offline in a Glue-like venv against an
S3 lake on moto, are `tests/deploy/test_glue_package.py`'s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import NOW, Lake
from lake_snapshot import ledger_rows, parquet_files, serving_items
from music_etl.adapters.ledger import open_ledger
from music_etl.adapters.ledger.base import new_owner
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


def run_job(stage: str, lake: Lake, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A Glue job script in a subprocess on the embedded engine (fast), as Glue starts it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_ETL_")}
    argv = [sys.executable, str(SCRIPTS[stage]), "--JOB_NAME", f"music-etl-{stage}"]
    argv += ["--LAKE_ROOT", str(lake.root), "--NOW", NOW, "--ENGINE", "polars"]
    argv += ["--BAD_ROW_THRESHOLD", "0.5", *args]
    return subprocess.run(
        argv, capture_output=True, text=True, env={**clean, **env}, timeout=300, check=False
    )


def artifacts_of(lake: Lake) -> dict[str, dict[str, Any]]:
    """The run artifacts in the lake, by key."""
    found = sorted((lake.root / "_state" / "runs").glob("*.json"))
    return {f"_state/runs/{p.name}": json.loads(p.read_text()) for p in found}


def test_each_stage_writes_an_artifact_and_logs_json_events(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.put_dimensions()
    land((lake,), ROUNDS[0])
    lines, docs = {}, {}
    for stage in ("validation", "transform", "load"):
        done = run_job(stage, lake, "--FLOW_ID", "exec-7", MUSIC_ETL_LOG_FORMAT="json")
        assert done.returncode == 0, done.stderr[-3000:]
        lines[stage] = json.loads(done.stdout.strip().splitlines()[-1])
        docs[stage] = artifacts_of(lake)[lines[stage]["artifact"]]
        events = [json.loads(line) for line in done.stderr.splitlines()]
        assert {e["run_id"] for e in events} == {lines[stage]["run_id"]}
        assert (events[0]["event"], events[0]["flow_id"]) == ("run_started", "exec-7")
        assert events[-1]["event"] == "run_finished"
        assert events[-1]["status"] == "ok"
        lines[stage]["events"] = events
    days = lines["validation"]["days"]
    assert len(days) >= 2
    assert lines["transform"]["days"] == lines["load"]["days"] == days
    assert len(artifacts_of(lake)) == 3
    for stage, command in (("transform", "glue-transform"), ("load", "glue-load")):
        doc = docs[stage]
        assert (doc["command"], doc["flow_id"], doc["status"]) == (command, "exec-7", "ok")
        assert doc["run_id"] == lines[stage]["run_id"]
        assert (doc["files"], doc["totals"]["rows_in"]) == ([], 0)
    assert docs["validation"]["flow_id"] == "exec-7"
    assert len({doc["run_id"] for doc in docs.values()}) == 3
    assert docs["transform"]["days"] == [
        {"day": d, "recomputed": True, "loaded": False, "skipped_items": 0} for d in days
    ]
    assert docs["load"]["days"] == [
        {"day": d, "recomputed": False, "loaded": True, "skipped_items": 0} for d in days
    ]
    recomputed = [e["day"] for e in lines["transform"]["events"] if e["event"] == "day_recomputed"]
    loaded = [e["day"] for e in lines["load"]["events"] if e["event"] == "day_loaded"]
    assert recomputed == loaded == days
    assert sorted({i["date"] for i in serving_items(lake.settings())["TopGenresPerDay"]}) == days


def test_a_stage_turned_away_at_the_lock_leaves_no_artifact(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.put_dimensions()
    land((lake,), ROUNDS[0])
    ledger = open_ledger(lake.settings().ledger_url)
    assert ledger.acquire_lock("lake", new_owner(), 900)  # another flow's stage is at work
    for stage in ("validation", "transform", "load", "transform"):  # the scheduler retries
        done = run_job(stage, lake, MUSIC_ETL_LOG_FORMAT="json", MUSIC_ETL_LOCK_WAIT_SECONDS="0")
        assert done.returncode != 0
        # The job fails as Glue expects (its exception ends stderr); the events before it.
        events = [json.loads(x) for x in done.stderr.splitlines() if x.startswith("{")]
        finished = next(e for e in events if e["event"] == "run_finished")
        assert (finished["status"], finished["artifact"]) == ("failed", "")
        assert finished["error"].startswith("LockHeld: Another run holds the lock")
        assert events[-1]["level"] == "error"
    assert artifacts_of(lake) == {}
