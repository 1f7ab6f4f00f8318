"""Operational events in the landing zone lose nothing and hang nothing (issue 9).

Files still being written, files replaced or grown during a run, files that vanish,
links, FIFOs, hidden names, and folders that are not lakes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conftest import SPARK_CLI, Lake
from crash_runner import derived_state
from lake_snapshot import state_diff
from music_etl.adapters.faults import RewrittenBeforeMove
from music_etl.adapters.ledger.base import DONE
from music_etl.adapters.ledger.sqlite import SQLiteLedger
from music_etl.errors import LockLost
from music_etl.logic import layout
from music_etl.pipeline.components import open_components
from music_etl.pipeline.progress import Silent
from music_etl.pipeline.run import run_with

MUSIC_ETL = str(Path(sys.executable).parent / "music-etl")
HEADER = "user_id,track_id,listen_time\n"


def rows(first: int, count: int, day: str = "2024-06-01") -> str:
    """`count` distinct valid events (users 1..20, known tracks)."""
    return "".join(
        f"{1 + i % 20},t{1 + i % 4},{day} {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}\n"
        for i in range(first, first + count)
    )


def cli(lake: Lake, *args: str, settle: str = "0", timeout: float = 120) -> Any:
    env = {
        **os.environ,
        "MUSIC_ETL_NOW": "2024-07-01T00:00:00Z",
        "MUSIC_ETL_SETTLE_SECONDS": settle,
    }
    return subprocess.run(
        [MUSIC_ETL, *args, "--lake", str(lake.root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def loaded_rows(lake: Lake) -> int:
    ledger = SQLiteLedger(lake.settings().ledger_url)
    try:
        return sum(r.rows_in for r in ledger.records() if r.status == DONE)
    finally:
        ledger.close()


# ------------------------------------------------------------------ files still being written


@pytest.mark.slow
def test_a_file_still_growing_waits_and_is_then_taken_whole(lake: Lake) -> None:
    path = lake.root / "raw/streams/slow.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + rows(0, 100))
    stop = threading.Event()
    written = [100]

    def slow_writer() -> None:
        # Until the run has finished (however slowly a loaded machine starts it): the
        # file never stays unchanged for the settle time while the run looks at it.
        while not stop.wait(0.2) and written[0] < 100_000:
            with path.open("a") as handle:
                handle.write(rows(written[0], 100))
            written[0] += 100

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        during = cli(lake, "run", settle="1")
    finally:
        stop.set()
        writer.join()
    assert during.returncode == 0, during.stderr
    assert "waiting:" in during.stdout and "slow.csv" in during.stdout
    assert not (lake.root / "archive/streams/slow.csv").exists()

    time.sleep(1.1)
    after = cli(lake, "run", settle="1")
    assert after.returncode == 0, after.stderr
    assert loaded_rows(lake) == written[0]
    assert (lake.root / "archive/streams/slow.csv").read_text() == HEADER + rows(0, written[0])


@pytest.mark.parametrize("change", ["replaced", "appended"])
def test_a_file_changed_during_the_run_is_not_archived_and_is_taken_again(
    lake: Lake, tmp_path: Path, change: str
) -> None:
    old = (HEADER + rows(0, 50)).encode()
    new = (
        (HEADER + rows(1000, 30)).encode() if change == "replaced" else old + rows(50, 25).encode()
    )
    key = lake.put_raw("f.csv", old)
    components = open_components(lake.settings())
    racing = RewrittenBeforeMove(components.storage, key=key, data=new)
    report = run_with(replace(components, storage=racing), Silent())
    assert racing.rewritten
    assert report.files[0].status == DONE
    assert "changed while it was processed" in report.files[0].message
    # The new bytes wait in the landing zone; the archive never holds bytes nobody validated.
    assert (lake.root / key).read_bytes() == new
    assert not (lake.root / layout.archive_key(key)).exists()
    assert not list((lake.root / "archive").rglob("*.json"))

    run_with(open_components(lake.settings()), Silent())
    assert (lake.root / layout.archive_key(key)).read_bytes() == new
    fresh = Lake(tmp_path / "fresh")
    fresh.put_dimensions()
    fresh.put_raw("f.csv", new)
    run_with(open_components(fresh.settings()), Silent())
    got, want = derived_state(lake.root), derived_state(fresh.root)
    got.pop("history")
    want.pop("history")
    assert state_diff(got, want) == []


class _AppendedInPlace(RewrittenBeforeMove):
    """A writer that appends to the same file (same inode) just before the archive step."""

    def move(self, src: str, dst: str, *, if_fingerprint: str = "") -> None:
        if src == self._key and not self.rewritten:
            self.rewritten = True
            with Path(self._inner.uri(src)).open("ab") as handle:
                handle.write(self._data)
        self._inner.move(src, dst, if_fingerprint=if_fingerprint)


def test_bytes_appended_in_place_after_validation_are_never_archived_as_validated(
    lake: Lake,
) -> None:
    old = (HEADER + rows(0, 50)).encode()
    key = lake.put_raw("f.csv", old)
    components = open_components(lake.settings())
    racing = _AppendedInPlace(components.storage, key=key, data=rows(50, 25).encode())
    report = run_with(replace(components, storage=racing), Silent())
    assert "changed while it was processed" in report.files[0].message
    assert (lake.root / key).read_bytes() == old + rows(50, 25).encode()
    run_with(open_components(lake.settings()), Silent())
    assert loaded_rows(lake) == 75
    assert (lake.root / layout.archive_key(key)).read_bytes() == old + rows(50, 25).encode()


# ------------------------------------------------------------------ entries that are not files


@pytest.mark.slow
def test_fifo_links_folders_and_hidden_names_neither_hang_nor_load(
    lake: Lake, tmp_path: Path
) -> None:
    streams = lake.root / "raw/streams"
    streams.mkdir(parents=True, exist_ok=True)
    os.mkfifo(streams / "pipe.csv")
    outside = tmp_path / "outside.csv"
    outside.write_text(HEADER + rows(0, 10))
    (streams / "outside.csv").symlink_to(outside)
    (streams / "dangling.csv").symlink_to(tmp_path / "nowhere.csv")
    (streams / "folder.csv").mkdir()
    (streams / ".tmp-upload.csv").write_text(HEADER + rows(0, 5))
    (streams / "_partial.csv").write_text(HEADER + rows(0, 5))
    (streams / ".tmp-batch").mkdir()
    (streams / ".tmp-batch" / "x.csv").write_text(HEADER + rows(0, 5))
    (streams / "notes.txt").write_text("not a stream file")
    lake.put_raw("good.csv", (HEADER + rows(0, 40)).encode())

    first = cli(lake, "run", timeout=60)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert loaded_rows(lake) == 40
    second = cli(lake, "run", timeout=60)
    assert second.returncode == 0, second.stderr
    assert "Nothing new" in second.stdout

    status = cli(lake, "status", timeout=60)
    assert status.returncode == 0, status.stderr
    text = " ".join(status.stdout.split())
    for name in ("pipe.csv", "outside.csv", "dangling.csv", ".tmp-upload.csv", "_partial.csv"):
        assert name in text, name
    assert "FIFO" in text and "links are not followed" in text and "hidden name" in text
    # Nothing in the landing zone was removed or moved but the good file.
    assert (streams / ".tmp-upload.csv").exists()
    assert (streams / ".tmp-batch" / "x.csv").exists()
    assert outside.read_text() == HEADER + rows(0, 10)


def test_a_landing_name_that_looks_like_a_temp_file_is_loaded_and_kept(lake: Lake) -> None:
    key = lake.put_raw("@.tmp-report.csv", (HEADER + rows(0, 30)).encode())
    run_with(open_components(lake.settings()), Silent())
    validated = sorted(p.name for p in (lake.root / "validated/streams").rglob("*.parquet"))
    assert validated and not any(name.startswith((".", "_")) for name in validated)
    lake.put_raw("next.csv", (HEADER + rows(100, 10)).encode())
    run_with(open_components(lake.settings()), Silent())
    assert validated == sorted(
        p.name
        for p in (lake.root / "validated/streams").rglob("*.parquet")
        if layout.source_id(key) in p.name
    )


def test_a_file_that_vanishes_before_its_claim_leaves_no_record(lake: Lake) -> None:
    gone = lake.put_raw("gone.csv", (HEADER + rows(0, 10)).encode())
    kept = lake.put_raw("kept.csv", (HEADER + rows(100, 10)).encode())
    components = open_components(lake.settings())
    ledger = components.ledger
    real_claim = ledger.claim

    def claim_after_removal(file_key: str, *args: Any) -> bool:
        (lake.root / gone).unlink(missing_ok=True)
        return real_claim(file_key, *args)

    ledger.claim = claim_after_removal  # type: ignore[method-assign]
    report = run_with(components, Silent())
    assert [(f.key, f.status) for f in report.files] == [(kept, DONE)]
    assert ledger.get(gone) is None
    assert [r.file_key for r in ledger.records()] == [kept]


# ------------------------------------------------------------------ the lake protects itself


def test_a_folder_that_is_not_a_lake_is_never_swept(tmp_path: Path) -> None:
    (tmp_path / ".tmp-mine").write_text("precious")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".tmp-other").write_text("precious")
    env = {**os.environ, "MUSIC_ETL_SETTLE_SECONDS": "0"}
    for lake in ("", str(tmp_path)):
        result = subprocess.run(
            [MUSIC_ETL, "run", "--lake", lake],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (tmp_path / ".tmp-mine").read_text() == "precious"
    assert (tmp_path / "sub" / ".tmp-other").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-mine", "sub"]


def test_sweeping_removes_only_our_own_temporaries_and_never_in_raw(lake: Lake) -> None:
    ours = lake.root / "validated/streams/listen_date=2024-06-01/.music-etl-tmp-abc12345"
    ours.parent.mkdir(parents=True)
    ours.write_text("left by a killed writer")
    theirs = lake.root / "validated/streams/.tmp-someone-else"
    theirs.write_text("not ours")
    in_raw = lake.root / "raw/streams/.music-etl-tmp-abc12345"
    in_raw.parent.mkdir(parents=True, exist_ok=True)
    in_raw.write_text("raw is never swept")
    run_with(open_components(lake.settings()), Silent())
    assert not ours.exists()
    assert theirs.exists() and in_raw.exists()


# ------------------------------------------------------------------ the lock


def test_a_run_that_lost_the_lock_stops_before_the_next_batch(lake: Lake) -> None:
    for n in range(3):
        lake.put_raw(f"f{n}.csv", (HEADER + rows(n * 100, 20)).encode())
    components = open_components(lake.settings(batch_bytes=1))
    ledger = components.ledger
    real = ledger.acquire_lock
    calls = {"n": 0}

    def lose_on_second_renewal(name: str, owner: str, lease: int) -> bool:
        calls["n"] += 1
        if calls["n"] == 3:  # 1: the run takes it; 2: first batch; 3: second batch
            ledger.acquire_lock = real  # type: ignore[method-assign]
            real(name, "someone-else:1:x", lease)  # the lease ran out and another took it
            return False
        return real(name, owner, lease)

    ledger.acquire_lock = lose_on_second_renewal  # type: ignore[method-assign]
    with pytest.raises(LockLost, match="lost the lock"):
        run_with(components, Silent())
    statuses = {r.file_key: r.status for r in ledger.records()}
    assert statuses == {layout.RAW_STREAMS + "f0.csv": DONE}
    assert (lake.root / "raw/streams/f1.csv").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "engine",
    ["polars", pytest.param("spark", marks=SPARK_CLI)],
)
def test_hidden_landing_names_never_reach_either_engine(lake: Lake, engine: str) -> None:
    streams = lake.root / "raw/streams"
    streams.mkdir(parents=True, exist_ok=True)
    (streams / "_SUCCESS.csv").write_text(HEADER + rows(0, 5))
    (streams / ".in-flight.csv").write_text(HEADER + "garbage\n")
    lake.put_raw("good.csv", (HEADER + rows(0, 25)).encode())
    result = cli(lake, "run", "--engine", engine, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 file(s) processed, 0 failed" in " ".join(result.stdout.split())
    assert loaded_rows(lake) == 25
    assert (streams / "_SUCCESS.csv").exists() and (streams / ".in-flight.csv").exists()
