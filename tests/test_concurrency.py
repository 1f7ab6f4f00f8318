"""Several `music-etl run` processes on one landing zone: every file exactly once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import NOW, SPARK_CLI, Lake, require_spark
from crash_runner import (
    derived_state,
    events,
    lake_settings,
    stream_file,
    temp_files,
    write_streams,
)
from lake_snapshot import state_diff
from music_etl.adapters.ledger.base import DONE
from music_etl.adapters.ledger.sqlite import SQLiteLedger
from music_etl.adapters.storage.local import LocalStorage
from music_etl.logic import layout
from music_etl.pipeline.components import open_components
from music_etl.pipeline.progress import Silent
from music_etl.pipeline.run import run_with

MUSIC_ETL = Path(sys.executable).parent / "music-etl"
FILES = {
    "2024/a.csv": stream_file(11, 500, ("2024-06-24", "2024-06-25", "2024-06-26")),
    "2024/b.csv": stream_file(
        12, 500, ("2024-06-25", "2024-06-26"), repeat=events(11, 4, ("2024-06-24", "2024-06-25"))
    ),
    "2024/c.csv": stream_file(13, 400, ("2024-06-27", "2024-06-28"), bad=(1, 2)),
    "d.csv": stream_file(
        14, 400, ("2024-06-24", "2024-06-28"), repeat=events(13, 3, ("2024-06-27", "2024-06-28"))
    ),
    "e.csv": stream_file(15, 300, ("2024-06-29",), bad=()),
}


def landing_zone(root: Path) -> None:
    lake = Lake(root)
    lake.put_dimensions()
    for name, rows in FILES.items():
        write_streams(root, name, rows)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The derived state after one run over the landing zone."""
    root = tmp_path_factory.mktemp("single") / "lake"
    landing_zone(root)
    components = open_components(lake_settings(root, NOW))
    try:
        report = run_with(components, Silent())
    finally:
        components.ledger.close()  # type: ignore[attr-defined]
        components.serving.close()  # type: ignore[attr-defined]
    assert len(report.processed) == len(FILES)
    return derived_state(root)


def valid_events(root: Path) -> list[tuple[object, ...]]:
    """(user, track, listen_time) of every validated stream row."""
    storage = LocalStorage(root)
    found = []
    for info in storage.list(layout.VALIDATED_STREAMS):
        table = pq.read_table(
            storage.path(info.key), columns=["user_id", "track_id", "listen_time"]
        )
        found += [tuple(row.values()) for row in table.to_pylist()]
    return found


@pytest.mark.slow
@pytest.mark.parametrize(
    ("runners", "batch_bytes", "engine"),
    # Spark: its runs are subprocesses with their own JVMs (`SPARK_CLI`).
    [
        (2, None, "polars"),
        (3, 1, "polars"),
        pytest.param(2, None, "spark", marks=SPARK_CLI),
    ],
)
def test_concurrent_runs_process_each_file_exactly_once(
    tmp_path: Path,
    baseline: dict[str, object],
    *,
    runners: int,
    batch_bytes: int | None,
    engine: str,
) -> None:
    """The baseline is the embedded engine's: both engines must leave the same lake."""
    if engine == "spark":
        require_spark()
    root = tmp_path / "lake"
    landing_zone(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_ETL_")}
    env["MUSIC_ETL_NOW"] = NOW
    env["MUSIC_ETL_ENGINE"] = engine
    # Each waits for the other's lock: a Spark run (a JVM each) outlasts the default minute.
    env["MUSIC_ETL_LOCK_WAIT_SECONDS"] = "600"
    if batch_bytes is not None:
        env["MUSIC_ETL_BATCH_BYTES"] = str(batch_bytes)

    procs = [
        subprocess.Popen(
            [str(MUSIC_ETL), "run", "--lake", str(root)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(runners)
    ]
    timeout = 60 if engine == "polars" else 300  # JVMs to start on a busy machine
    outputs = [p.communicate(timeout=timeout) for p in procs]

    assert [p.returncode for p in procs] == [0] * runners, outputs
    state = derived_state(root)
    ledger = state["ledger"]
    assert isinstance(ledger, dict)
    assert sorted(ledger) == sorted(layout.RAW_STREAMS + name for name in FILES)
    assert {r["status"] for r in ledger.values()} == {DONE}
    # Every file was counted by exactly one run.
    store = SQLiteLedger(lake_settings(root, NOW).ledger_url)
    try:
        runs = store.runs(100)
    finally:
        store.close()
    assert len(runs) == runners
    expected_ledger = baseline["ledger"]
    assert isinstance(expected_ledger, dict)
    assert sum(r.rows_in for r in runs) == sum(r["rows_in"] for r in expected_ledger.values())
    assert sum(r.rows_valid for r in runs) == sum(r["rows_valid"] for r in expected_ledger.values())
    # No row twice, and exactly the single run's rows, days, serving tables and ledger.
    rows = valid_events(root)
    assert len(rows) == len(set(rows))
    assert len(rows) == sum(r["rows_valid"] for r in expected_ledger.values())
    assert temp_files(root) == []
    diff = state_diff(state, baseline)
    assert diff == [], "\n".join(diff)


def test_the_music_etl_command_is_next_to_the_interpreter() -> None:
    assert MUSIC_ETL.is_file(), f"install the package: {MUSIC_ETL} is missing"
    assert shutil.which(str(MUSIC_ETL))
