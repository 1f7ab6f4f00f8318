"""A broken `songs.csv` or `users.csv` never wipes data: the catalogue in force stays."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from conftest import NOW, SPARK, Lake, default_songs, default_users
from crash_runner import derived_state
from music_etl.adapters.faults import CRASH_EXIT_CODE
from music_etl.adapters.serving.sqlite import SQLiteServingStore
from music_etl.integrations.glue import PENDING_DAYS, validate_stage
from music_etl.logic import layout
from music_etl.logic.serving_model import SERVING_KEYS
from music_etl.orchestration.airflow import summarize
from music_etl.pipeline.run import RunReport, run

MUSIC_ETL = str(Path(sys.executable).parent / "music-etl")
DIMS = ("songs", "users")
DAY_ONE = [(u, f"t{1 + u % 4}", f"2024-06-25 {u:02d}:00:00") for u in range(1, 21)]
DAY_TWO = [(u, f"t{1 + u % 4}", f"2024-06-26 {u:02d}:00:00") for u in range(1, 21)]
SNAPSHOT_PREFIXES = (
    "validated/songs/",
    "validated/users/",
    "bad-records/songs/",
    "bad-records/users/",
)


def cli(lake: Lake, *args: str) -> subprocess.CompletedProcess[str]:
    """`music-etl ARGS --lake LAKE` in a subprocess, as a user runs it."""
    env = {**os.environ, "MUSIC_ETL_NOW": NOW, "MUSIC_ETL_SETTLE_SECONDS": "0", "COLUMNS": "1000"}
    return subprocess.run(
        [MUSIC_ETL, *args, "--lake", str(lake.root)],
        env=env,
        cwd=lake.root.parent,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def songs_with_duration(duration: object) -> list[tuple[object, ...]]:
    """The default songs with every `duration_ms` replaced."""
    return [(*row[:5], duration, row[6]) for row in default_songs()]


def files_under(lake: Lake, prefixes: Sequence[str]) -> dict[str, bytes]:
    """Every object under `prefixes`, byte for byte."""
    return {
        info.key: lake.storage.read_bytes(info.key)
        for prefix in prefixes
        for info in lake.storage.list(prefix)
    }


def serving(lake: Lake) -> dict[str, list[dict[str, Any]]]:
    """Every row of every serving table."""
    store = SQLiteServingStore(lake.settings().serving_url)
    try:
        return {table: store.scan(table) for table in SERVING_KEYS}
    finally:
        store.close()


def loaded(lake: Lake) -> dict[str, object]:
    """What users see: processed files, the serving store and the catalogue in force."""
    return {
        "processed": files_under(lake, (layout.PROCESSED,)),
        "catalogue": files_under(lake, SNAPSHOT_PREFIXES),
        "serving": serving(lake),
    }


@pytest.fixture
def loaded_lake(lake: Lake) -> Lake:
    """A lake where one stream file was processed against the default dimensions."""
    lake.put_streams("a.csv", DAY_ONE)
    done = cli(lake, "run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert serving(lake)["DailyGenreKPIs"]
    return lake


# --------------------------------------------------------------------------- the command line


def test_all_bad_songs_change_nothing_and_say_so_on_every_run(loaded_lake: Lake) -> None:
    lake = loaded_lake
    before = loaded(lake)
    lake.put_dimensions(songs=songs_with_duration("3:09"))

    for _ in range(2):
        done = cli(lake, "run")
        output = done.stdout + done.stderr
        assert done.returncode == 1, output
        assert "raw/songs/songs.csv" in output
        assert "too_many_bad_rows" in output
        assert "5 rows in, 0 valid, 5 bad" in output
        assert "bad_duration_ms 5" in output
        assert loaded(lake) == before
        assert not lake.storage.exists(layout.staged_dimension_key("songs"))


def test_all_bad_users_keep_the_old_users_for_new_streams(loaded_lake: Lake) -> None:
    lake = loaded_lake
    day_one = files_under(lake, ("processed/daily_genre_kpis/date=2024-06-25/",))
    catalogue = files_under(lake, SNAPSHOT_PREFIXES)
    lake.put_dimensions(users=[(f"u{i}", "x", 30, "Ghana", "2024-01-01") for i in range(20)])
    lake.put_streams("b.csv", DAY_TWO)

    done = cli(lake, "run")

    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "raw/users/users.csv" in output
    assert "bad_user_id 20" in output
    assert files_under(lake, SNAPSHOT_PREFIXES) == catalogue
    assert files_under(lake, ("processed/daily_genre_kpis/date=2024-06-25/",)) == day_one
    assert lake.storage.exists("archive/streams/b.csv"), "b.csv is validated on the old users"
    assert not list(lake.storage.list("bad-records/streams/"))
    counts = {"2024-06-25": 0, "2024-06-26": 0}
    for row in serving(lake)["DailyGenreKPIs"]:
        counts[row["date"]] += row["listen_count"]
    assert counts["2024-06-26"] == counts["2024-06-25"], "every listen of b.csv is loaded"


def test_songs_missing_a_column_are_rejected(loaded_lake: Lake) -> None:
    lake = loaded_lake
    before = loaded(lake)
    lake.storage.write_bytes(
        layout.RAW_SONGS, b"track_id,track_name,artists,track_genre\nt1,a,b,pop\n"
    )

    done = cli(lake, "run")

    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "raw/songs/songs.csv" in output
    assert "missing_column" in output
    assert "duration_ms" in output
    assert loaded(lake) == before


def test_a_good_replacement_after_a_rejected_one_is_taken(loaded_lake: Lake) -> None:
    lake = loaded_lake
    total_before = sum(r["total_listening_time"] for r in serving(lake)["DailyGenreKPIs"])
    lake.put_dimensions(songs=songs_with_duration("3:09"))
    assert cli(lake, "run").returncode == 1
    lake.put_dimensions(songs=[(*row[:5], 2 * int(str(row[5])), row[6]) for row in default_songs()])

    done = cli(lake, "run")

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "raw/songs/songs.csv: accepted; 5 rows in, 5 valid, 0 bad" in output
    total = sum(r["total_listening_time"] for r in serving(lake)["DailyGenreKPIs"])
    assert total == 2 * total_before
    assert not [k for k in files_under(lake, ("validated/", "bad-records/")) if "staged" in k]


def test_rebuild_keeps_the_catalogue_in_force(loaded_lake: Lake) -> None:
    lake = loaded_lake
    files, rows = derived_state(lake.root)["files"], serving(lake)
    lake.put_dimensions(songs=songs_with_duration("3:09"))

    done = cli(lake, "rebuild")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "raw/songs/songs.csv" in done.stdout + done.stderr
    assert derived_state(lake.root)["files"] == files
    assert serving(lake) == rows


def test_a_rejected_songs_file_on_the_first_run_stops_it(lake: Lake) -> None:
    lake.put_dimensions(songs=songs_with_duration("3:09"))
    lake.put_streams("a.csv", DAY_ONE)

    done = cli(lake, "run")

    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "raw/songs/songs.csv was rejected (too_many_bad_rows" in lines[0]
    assert "no earlier snapshot" in lines[0]
    assert not lake.storage.exists("archive/streams/a.csv")
    assert not lake.storage.exists(layout.validated_dimension_key("songs"))


# --------------------------------------------------------------------------- the library


@pytest.mark.parametrize(("rows", "accepted"), [(20, True), (19, False)])
def test_the_bad_row_threshold_boundary(lake: Lake, rows: int, accepted: bool) -> None:
    """One bad row in 20 is 5.0%: not above the 5% threshold; one in 19 is."""
    users = [*default_users(), *[(i, "x", 1, "y", "z") for i in range(21, 21 + rows - 20)]]
    run(lake.settings())
    snapshot = lake.storage.read_bytes(layout.validated_dimension_key("users"))
    lake.put_dimensions(users=[*users[: rows - 1], ("not-a-number", "x", 1, "y", "z")])

    report = run(lake.settings(bad_row_threshold=0.05))

    dims = report.dimensions
    assert (set(dims.refreshed), set(dims.rejected)) == (
        ({"users"}, set()) if accepted else (set(), {"users"})
    )
    result = (dims.refreshed if accepted else dims.rejected)["users"]
    assert (result.rows_in, result.rows_valid, result.bad_by_reason) == (
        rows,
        rows - 1,
        {"bad_user_id": 1},
    )
    assert report.rejected_input is not accepted
    assert (lake.storage.read_bytes(layout.validated_dimension_key("users")) == snapshot) is (
        not accepted
    )
    assert lake.storage.exists("bad-records/users/bad_user_id/users.parquet") is accepted


def test_the_orchestrators_see_a_rejection(loaded_lake: Lake) -> None:
    lake = loaded_lake
    lake.put_dimensions(songs=songs_with_duration("3:09"))

    report: RunReport = run(lake.settings())

    summary = summarize(report)
    assert summary["failed"] == [
        {
            "file": "raw/songs/songs.csv",
            "reason": "too_many_bad_rows",
            "message": "100.0% of rows are bad, above the threshold of 5.0%",
            "rows_in": 5,
        }
    ]
    assert summary["dimensions"][0]["bad_by_reason"] == {"bad_duration_ms": 5}


def test_the_glue_validation_job_hands_on_no_day_for_a_rejected_catalogue(
    loaded_lake: Lake,
) -> None:
    lake = loaded_lake
    lake.put_dimensions(songs=songs_with_duration("3:09"))

    report = validate_stage(lake.settings())

    assert set(report.dimensions.rejected) == {"songs"}
    assert report.rejected_input
    assert not lake.storage.exists(PENDING_DAYS)


# --------------------------------------------------------------------------- crashes in the swap

CRASHER = """
import sys
from dataclasses import replace
from pathlib import Path
from music_etl.adapters.faults import Faulty
from music_etl.engines.registry import make_engine
from music_etl.pipeline.components import open_components
from music_etl.pipeline.progress import Silent
from music_etl.pipeline.run import run_with
from music_etl.settings import load_settings

lake, adapter, method, prefix, nth = sys.argv[1:6]
settings = load_settings(
    lake=lake, now=sys.argv[6], settle_seconds=0, env={}, config=Path(lake) / "none.toml"
)
c = open_components(settings)
if adapter == "storage":
    storage = Faulty(c.storage, method=method, prefix=prefix, nth=int(nth), crash=True)
    c = replace(c, storage=storage, engine=make_engine(settings.engine, storage))
else:
    c = replace(c, serving=Faulty(c.serving, method=method, nth=int(nth), crash=True))
run_with(c, Silent())
sys.exit(3)
"""

#: (adapter, method, key prefix, nth call) → whether the new catalogue is committed at the crash.
SWAP_CRASHES = {
    ("storage", "writer", "bad-records/songs/", 1): False,
    ("storage", "write_bytes", "validated/songs/_COMMIT", 1): False,
    ("storage", "move", "validated/songs/_staged/", 1): True,
    ("storage", "move", "bad-records/songs/", 1): True,
    ("storage", "write_bytes", "validated/songs/_SOURCE", 1): True,
    ("storage", "delete", "validated/songs/_COMMIT", 1): True,
    ("serving", "replace_days", "", 1): True,
}


def new_songs() -> list[tuple[object, ...]]:
    """Accepted (1 bad row in 21), with other durations and a bad-record reason the old lacks."""
    rows = [(*row[:5], int(str(row[5])) + 1_000, row[6]) for row in default_songs()]
    rows += [(f"x{i}", "A", "B", "C", 1, 1_000, "pop") for i in range(15)]
    return [*rows, ("t1", "A", "B", "C", 1, 1_000, "pop")]


@pytest.mark.parametrize("crash", list(SWAP_CRASHES))
def test_a_crash_in_the_swap_leaves_a_whole_catalogue(
    loaded_lake: Lake, tmp_path: Path, crash: tuple[str, str, str, int]
) -> None:
    lake = loaded_lake
    adapter, method, prefix, nth = crash
    old_catalogue = files_under(lake, SNAPSHOT_PREFIXES)
    old_serving = serving(lake)
    lake.put_dimensions(songs=new_songs())
    reference = Lake(tmp_path / "reference")
    shutil.copytree(lake.root, reference.root)
    assert not run(reference.settings()).rejected_input

    args = [lake.root, adapter, method, prefix, str(nth), NOW]
    died = subprocess.run(
        [sys.executable, "-c", CRASHER, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert died.returncode == CRASH_EXIT_CODE, died.stderr
    committed = SWAP_CRASHES[crash]
    assert lake.storage.exists(layout.dimension_commit_key("songs")) is (
        committed and method != "replace_days"
    )
    if not committed:
        in_force = {
            k: v for k, v in files_under(lake, SNAPSHOT_PREFIXES).items() if k not in _staged(lake)
        }
        assert in_force == old_catalogue
        assert serving(lake) == old_serving
    assert not run(lake.settings()).rejected_input
    assert derived_state(lake.root)["files"] == derived_state(reference.root)["files"]
    assert serving(lake) == serving(reference)


def _staged(lake: Lake) -> dict[str, bytes]:
    """Staged files an interrupted validation left (not in force)."""
    return {k: v for k, v in files_under(lake, SNAPSHOT_PREFIXES).items() if "staged" in k}


# --------------------------------------------------------------------------- both engines


@pytest.mark.parametrize("engine", ["polars", pytest.param("spark", marks=SPARK)])
def test_both_engines_guard_the_catalogue(
    lake: Lake, engine: str, request: pytest.FixtureRequest
) -> None:
    if engine == "spark":
        request.getfixturevalue("spark")  # the run's one session (conftest)
    settings = lake.settings(engine=engine)
    lake.put_streams("a.csv", DAY_ONE)
    run(settings)
    before = loaded(lake)
    lake.put_dimensions(songs=songs_with_duration("3:09"))

    rejected = run(settings).dimensions.rejected["songs"]

    assert (rejected.file_error, rejected.rows_in, rejected.bad_by_reason) == (
        "too_many_bad_rows",
        5,
        {"bad_duration_ms": 5},
    )
    assert loaded(lake) == before
    lake.put_dimensions(songs=new_songs())
    accepted = run(settings).dimensions.refreshed["songs"]
    assert (accepted.rows_valid, accepted.bad_by_reason) == (20, {"duplicate_song": 1})
    bad = pq.read_table(lake.root / "bad-records/songs/duplicate_song/songs.parquet").to_pylist()
    assert [(r["track_id"], r["source_line"]) for r in bad] == [("t1", 22)]
    assert not _staged(lake)
