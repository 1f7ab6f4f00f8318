"""Crash recovery: a run killed anywhere is completed by the next run to the same state.

Each scenario starts from a lake where `2024/f01.csv` and `2024/f02.csv` were already
processed; then a new version of f02 (fewer days, one day only it had) and two new
files land, and a run dies at a crash point (`tests/crash_runner.py`). A normal run
afterwards must leave the whole derived state equal to an uncrashed run's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import NOW, Lake, spark_test
from crash_runner import (
    derived_state,
    events,
    lake_settings,
    stream_file,
    temp_files,
    write_streams,
)
from lake_snapshot import state_diff
from music_etl.adapters.faults import CRASH_EXIT_CODE, Faulty, InjectedFault
from music_etl.adapters.ledger.base import DONE, FAILED
from music_etl.adapters.serving.sqlite import SQLiteServingStore
from music_etl.engines.registry import make_engine
from music_etl.logic import layout
from music_etl.logic.serving_model import SERVING_KEYS
from music_etl.pipeline.components import Components, open_components
from music_etl.pipeline.progress import Silent
from music_etl.pipeline.run import RunReport, run_with

RUNNER = Path(__file__).with_name("crash_runner.py")

F01_DAYS = ("2024-06-24", "2024-06-25", "2024-06-26", "2024-06-27")
F02_OLD_DAYS = ("2024-06-26", "2024-06-27", "2024-06-28", "2024-06-29")
F02_NEW_DAYS = ("2024-06-29", "2024-06-30")
#: Only the old f02 has listens on this day: replacing f02 must empty it.
ONLY_OLD_F02 = "2024-06-28"


def stage_one(root: Path) -> None:
    """Two files over five days, f02 repeating three of f01's events."""
    write_streams(root, "2024/f01.csv", stream_file(1, 700, F01_DAYS))
    write_streams(
        root, "2024/f02.csv", stream_file(2, 700, F02_OLD_DAYS, repeat=events(1, 3, F01_DAYS))
    )


def f02_new() -> list[tuple[object, ...]]:
    """f02's new content: fewer days, and only two of the six bad-row reasons."""
    return stream_file(20, 400, F02_NEW_DAYS, bad=(0, 3))


def stage_two(root: Path) -> None:
    """A new f02 and two new files, with duplicates of f01's and of the old f02's events."""
    write_streams(root, "2024/f02.csv", f02_new())
    write_streams(
        root,
        "2024/f03.csv",
        stream_file(
            3,
            600,
            ("2024-06-24", "2024-06-25", "2024-06-30"),
            repeat=[*events(1, 3, F01_DAYS), *events(2, 1, F02_OLD_DAYS)],
        ),
    )
    write_streams(
        root,
        "f04.csv",
        stream_file(
            4,
            600,
            ("2024-06-27", "2024-06-29", "2024-06-30"),
            bad=(1, 4),
            repeat=events(3, 2, ("2024-06-24", "2024-06-25", "2024-06-30")),
        ),
    )


def run_clean(root: Path, batch_bytes: int | None = None, engine: str = "polars") -> RunReport:
    """A normal in-process run that closes its connections."""
    components = open_components(lake_settings(root, NOW, batch_bytes, engine))
    try:
        return run_with(components, Silent())
    finally:
        close(components)


def close(components: Components) -> None:
    components.ledger.close()  # type: ignore[attr-defined]
    components.serving.close()  # type: ignore[attr-defined]


def crash_run(
    root: Path, point: str, batch_bytes: int | None = None, engine: str = "polars"
) -> None:
    """Run the crash runner on `root` and check that it died at `point`."""
    args = [sys.executable, str(RUNNER), str(root), NOW, point, str(batch_bytes or "-"), engine]
    timeout = 60 if engine == "polars" else 240  # a JVM to start on a busy machine
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == CRASH_EXIT_CODE, (done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake with the default dimensions where stage one is processed."""
    lake = Lake(tmp_path_factory.mktemp("template") / "lake")
    lake.put_dimensions()
    stage_one(lake.root)
    report = run_clean(lake.root)
    assert [f.status for f in report.files] == [DONE, DONE]
    return lake.root


@pytest.fixture(scope="module")
def baselines(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[int | None], dict[str, object]]:
    """The derived state after stage two without a crash, per batch size."""
    made: dict[int | None, dict[str, object]] = {}

    def baseline(batch_bytes: int | None) -> dict[str, object]:
        if batch_bytes not in made:
            root = tmp_path_factory.mktemp("baseline") / "lake"
            shutil.copytree(template, root)
            stage_two(root)
            report = run_clean(root, batch_bytes)
            assert not report.failed
            made[batch_bytes] = derived_state(root)
        return made[batch_bytes]

    return baseline


@pytest.fixture
def lake_root(template: Path, tmp_path: Path) -> Path:
    """A copy of the template lake with stage two landed."""
    root = tmp_path / "lake"
    shutil.copytree(template, root)
    stage_two(root)
    return root


def serving_rows(root: Path) -> dict[str, list[dict[str, object]]]:
    store = SQLiteServingStore(lake_settings(root, NOW).serving_url)
    try:
        return {name: store.scan(name) for name in SERVING_KEYS}
    finally:
        store.close()


def test_baseline_is_a_meaningful_scenario(
    baselines: Callable[[int | None], dict[str, object]],
) -> None:
    """The scenario has bad rows, cross-file duplicates and a day only the old f02 had."""
    state = baselines(None)
    files = state["files"]
    assert isinstance(files, dict)
    reasons = {key.split("/")[2] for key in files if key.startswith("bad-records/streams/")}
    assert {"duplicate_event", "unknown_track", "bad_user_id", "future_timestamp"} <= reasons
    assert not any(ONLY_OLD_F02 in key for key in files)
    f03 = layout.bad_records_key("streams", "duplicate_event", layout.source_id(STAGE_TWO[1]))
    assert len(files[f03]) >= 6, "three in-file and three cross-file duplicates"
    assert state["raw_streams"] == []
    ledger = state["ledger"]
    assert isinstance(ledger, dict)
    assert {r["status"] for r in ledger.values()} == {DONE}
    assert sum(r["rows_valid"] for r in ledger.values()) > 2000
    assert state == baselines(1), "batching must not change the result"


C, D = "claimed", DONE
#: Crash point and batch size -> status of the new f02, f03 and f04 right after the crash
#: (None: not claimed yet). Shows that each run died where it was meant to.
CRASHES = {
    ("after_claim", None): (C, C, C),
    ("mid_validation_write", None): (C, C, C),
    ("mid_validation_write", 1): (D, C, None),
    ("mid_settle_delete", None): (C, C, C),
    ("mid_processed_write", None): (C, C, C),
    ("after_processed_write", None): (C, C, C),
    ("mid_serving_load", None): (C, C, C),
    ("second_serving_load", 1): (D, C, None),
    ("before_done", None): (C, C, C),
    ("before_archive", None): (D, C, C),
    ("mid_archive", None): (D, D, C),
    ("mid_archive", 1): (D, D, None),
}
STAGE_TWO = ("raw/streams/2024/f02.csv", "raw/streams/2024/f03.csv", "raw/streams/f04.csv")


@pytest.mark.slow
@pytest.mark.parametrize(("point", "batch_bytes"), list(CRASHES))
def test_a_crash_is_completed_by_the_next_run(
    lake_root: Path,
    baselines: Callable[[int | None], dict[str, object]],
    point: str,
    batch_bytes: int | None,
) -> None:
    serving_before = serving_rows(lake_root)

    crash_run(lake_root, point, batch_bytes)

    ledger = derived_state(lake_root)["ledger"]
    assert isinstance(ledger, dict)
    statuses = tuple(ledger[k]["status"] if k in ledger else None for k in STAGE_TWO)
    assert statuses == CRASHES[point, batch_bytes]
    if point == "mid_serving_load":
        assert serving_rows(lake_root) == serving_before, "the killed load must roll back"
    report = run_clean(lake_root, batch_bytes)
    assert not report.failed
    assert temp_files(lake_root) == []
    diff = state_diff(derived_state(lake_root), baselines(batch_bytes))
    assert diff == [], "\n".join(diff)


@pytest.mark.slow
@spark_test
def test_a_crash_inside_the_spark_engines_writes_is_completed_by_the_next_run(
    spark: object,
    lake_root: Path,
    baselines: Callable[[int | None], dict[str, object]],
) -> None:
    """The crash points above are the pipeline's, the same for both engines; this one is
    Spark's own: a write's files are in its temp folder (`_tmp/spark/`), one of them
    moved to its key, the others not. The next run (Spark again) must leave the state
    an uncrashed run leaves (the baseline is the embedded engine's: the engines write
    the same lake)."""
    crash_run(lake_root, "mid_spark_move", engine="spark")

    ledger = derived_state(lake_root)["ledger"]
    assert isinstance(ledger, dict)
    assert tuple(ledger[k]["status"] for k in STAGE_TWO) == (C, C, C)
    left = [p for p in (lake_root / "_tmp").rglob("*") if p.is_file()]
    assert left, "the crash left Spark's temp files behind"
    report = run_clean(lake_root, engine="spark")
    assert not report.failed
    assert temp_files(lake_root) == []
    assert not [p for p in (lake_root / "_tmp").rglob("*") if p.is_file()]
    diff = state_diff(derived_state(lake_root), baselines(None))
    assert diff == [], "\n".join(diff)


@pytest.mark.parametrize(
    ("method", "prefix", "nth"),
    [("writer", layout.VALIDATED_STREAMS, 3), ("replace_days", "", 1)],
)
def test_a_retryable_error_leaves_files_retryable_and_the_next_run_completes(
    lake_root: Path,
    baselines: Callable[[int | None], dict[str, object]],
    method: str,
    prefix: str,
    nth: int,
) -> None:
    components = open_components(lake_settings(lake_root, NOW))
    if method == "replace_days":
        components = replace(components, serving=Faulty(components.serving, method=method, nth=nth))
    else:
        storage = Faulty(components.storage, method=method, nth=nth, prefix=prefix)
        components = replace(components, storage=storage, engine=make_engine("polars", storage))
    try:
        with pytest.raises(InjectedFault):
            run_with(components, Silent())
    finally:
        close(components)

    state = derived_state(lake_root)
    pending = list(STAGE_TWO)
    assert state["raw_streams"] == pending
    ledger = state["ledger"]
    assert isinstance(ledger, dict)
    for key in pending:
        assert ledger[key]["status"] == FAILED
        assert ledger[key]["retryable"] is True
        assert ledger[key]["error"].startswith("InjectedFault")
    assert ledger["raw/streams/2024/f01.csv"]["status"] == DONE

    report = run_clean(lake_root)
    assert [f.status for f in report.files] == [DONE, DONE, DONE]
    diff = state_diff(derived_state(lake_root), baselines(None))
    assert diff == [], "\n".join(diff)


def test_a_second_run_changes_nothing(lake_root: Path) -> None:
    run_clean(lake_root)
    before = derived_state(lake_root, with_times=True)

    report = run_clean(lake_root)

    assert report.files == []
    assert report.days == ()
    after = derived_state(lake_root, with_times=True)
    diff = state_diff(after, before)
    assert diff == [], "\n".join(diff)


def test_a_replaced_file_removes_its_old_rows_and_recomputes_old_and_new_days(
    template: Path, tmp_path: Path
) -> None:
    root = tmp_path / "lake"
    shutil.copytree(template, root)
    f02 = layout.RAW_STREAMS + "2024/f02.csv"
    old_days = derived_state(root)["ledger"][f02]["days"]  # type: ignore[index]
    assert tuple(old_days) == F02_OLD_DAYS
    assert ONLY_OLD_F02 in {row["date"] for row in serving_rows(root)["DailyGenreKPIs"]}
    old_f02_hash = derived_state(root)["archive"][layout.archive_key(f02)]  # type: ignore[index]
    write_streams(root, "2024/f02.csv", f02_new())

    report = run_clean(root)

    assert [(f.key, f.status) for f in report.files] == [(f02, DONE)]
    assert set(report.days) == set(F02_OLD_DAYS) | set(F02_NEW_DAYS)
    state = derived_state(root)
    sid = layout.source_id(f02)
    files = state["files"]
    assert isinstance(files, dict)
    f02_days = sorted(
        k.split("/")[2].removeprefix("listen_date=")
        for k in files
        if k.startswith(layout.VALIDATED_STREAMS) and k.endswith(f"/{sid}.parquet")
    )
    assert f02_days == sorted(F02_NEW_DAYS)
    f02_reasons = {k.split("/")[2] for k in files if k.startswith("bad-records/") and sid in k}
    assert f02_reasons == {"bad_user_id", "null_field", "duplicate_event"}
    for rows in state["serving"].values():  # type: ignore[attr-defined]
        assert ONLY_OLD_F02 not in {row["date"] for row in rows}
    assert not any(f"date={ONLY_OLD_F02}" in key for key in files)

    # The same as if the new f02 had been there from the start.
    fresh = Lake(tmp_path / "fresh")
    fresh.put_dimensions()
    write_streams(fresh.root, "2024/f01.csv", stream_file(1, 700, F01_DAYS))
    write_streams(fresh.root, "2024/f02.csv", f02_new())
    run_clean(fresh.root)
    history = state.pop("history")
    diff = state_diff(state, {**derived_state(fresh.root), "history": None})
    assert diff == [], "\n".join(diff)
    # Unlike the fresh lake, the live one keeps the replaced version, and both manifests.
    assert isinstance(history, dict)
    assert sum(k.startswith(layout.ARCHIVE_MANIFEST) for k in history) == 3
    assert [k for k in history if k.startswith(layout.ARCHIVE_VERSIONS)] == [
        layout.version_key(f02, old_f02_hash)
    ]


def _reject_new_f02(root: Path) -> None:
    """Stage two, but the new f02 lacks a required column (rejected whole)."""
    stage_two(root)
    (root / "raw/streams/2024/f02.csv").write_bytes(b"user_id,track_id\n1,t1\n")


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_claim", "after_processed_write", "retryable_error"])
def test_an_interrupted_rejected_new_version_keeps_the_old_rows_like_an_uninterrupted_one(
    template: Path, tmp_path: Path, point: str
) -> None:
    """A rejected new version leaves the earlier version's rows loaded, crash or not.

    Without a crash the new f02 (missing a column) fails and the old f02's rows,
    bad records and days stay. The same must hold when the run that first meets the
    new version dies (or fails retryably) and the next run completes it.
    """
    baseline = tmp_path / "baseline"
    shutil.copytree(template, baseline)
    _reject_new_f02(baseline)
    run_clean(baseline)
    expected = derived_state(baseline)
    f02 = layout.RAW_STREAMS + "2024/f02.csv"
    assert expected["ledger"][f02]["status"] == FAILED  # type: ignore[index]
    assert expected["ledger"][f02]["days"] == F02_OLD_DAYS  # type: ignore[index]
    root = tmp_path / "lake"
    shutil.copytree(template, root)
    _reject_new_f02(root)

    if point == "retryable_error":
        components = open_components(lake_settings(root, NOW))
        storage = Faulty(
            components.storage, method="writer", nth=1, prefix=layout.VALIDATED_STREAMS
        )
        faulty = replace(components, storage=storage, engine=make_engine("polars", storage))
        try:
            with pytest.raises(InjectedFault):
                run_with(faulty, Silent())
        finally:
            close(components)
    else:
        crash_run(root, point)
    run_clean(root)

    diff = state_diff(derived_state(root), expected)
    assert diff == [], "\n".join(diff)
