"""The archive forgets nothing, and `rebuild` replays it into the live state (issue 9).

Every processed version of a landing key is kept with its processing order and clock;
`rebuild` refuses, and changes nothing, when a version's bytes are gone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import Lake
from crash_runner import derived_state
from lake_snapshot import state_diff
from music_etl.logic import layout
from music_etl.pipeline.components import open_components
from music_etl.pipeline.progress import Silent
from music_etl.pipeline.rebuild import rebuild
from music_etl.pipeline.run import run_with

MUSIC_ETL = str(Path(sys.executable).parent / "music-etl")
HEADER = "user_id,track_id,listen_time\n"


def events(pairs: list[tuple[int, str, str]]) -> bytes:
    return (HEADER + "".join(f"{u},{t},{ts}\n" for u, t, ts in pairs)).encode()


A1 = events([(1, "t1", "2024-06-01 10:00:00"), (2, "t2", "2024-06-02 11:00:00")])
A2 = events([(3, "t3", "2024-06-03 12:00:00")])
# B repeats A1's first event: a duplicate while A1 is loaded.
B = events([(1, "t1", "2024-06-01 10:00:00"), (4, "t4", "2024-06-02 09:00:00")])


def run(lake: Lake, **overrides: Any) -> None:
    """A run that loads B although half of it is a duplicate (a lenient threshold)."""
    settings = lake.settings(bad_row_threshold=1.0, **overrides)
    run_with(open_components(settings), Silent())


def cli(lake: Lake, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MUSIC_ETL_NOW": "2024-07-01T00:00:00Z"}
    env["MUSIC_ETL_BAD_ROW_THRESHOLD"] = "1.0"  # as `run` below: B is half duplicates
    return subprocess.run(
        [MUSIC_ETL, *args, "--lake", str(lake.root)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


def history_lake(lake: Lake) -> None:
    """A1, then B, then A replaced by A2, then A back to A1's bytes."""
    lake.put_raw("a.csv", A1)
    run(lake)
    lake.put_raw("b.csv", B)
    run(lake, now="2024-07-02T00:00:00Z")
    lake.put_raw("a.csv", A2)
    run(lake, now="2024-07-03T00:00:00Z")
    lake.put_raw("a.csv", A1)
    run(lake, now="2024-07-04T00:00:00Z")


def test_every_processed_version_is_kept_in_processing_order(lake: Lake) -> None:
    history_lake(lake)
    storage = lake.storage
    manifests = [i.key for i in storage.list(layout.ARCHIVE_MANIFEST)]
    assert [layout.manifest_seq(k) for k in manifests] == [1, 2, 3, 4]
    a, b = layout.source_id("raw/streams/a.csv"), layout.source_id("raw/streams/b.csv")
    assert [layout.parse_manifest_key(k)[1] for k in manifests] == [a, b, a, a]
    assert storage.read_bytes(layout.archive_key("raw/streams/a.csv")) == A1
    earlier = sorted(storage.read_bytes(i.key) for i in storage.list(layout.ARCHIVE_VERSIONS))
    assert earlier == sorted([A1, A2])  # each version that was replaced, by content
    assert not list(storage.list(layout.RAW_STREAMS))


def test_rebuild_equals_the_live_state_after_replacements(lake: Lake) -> None:
    history_lake(lake)
    live = derived_state(lake.root)
    rebuild(lake.settings(bad_row_threshold=1.0))
    diff = state_diff(derived_state(lake.root), live)
    assert diff == [], "\n".join(diff)


@pytest.mark.slow
def test_rebuild_refuses_when_an_archived_version_is_missing(lake: Lake) -> None:
    history_lake(lake)
    gone = next(iter(lake.storage.list(layout.ARCHIVE_VERSIONS))).key
    lake.storage.delete(gone)
    before = derived_state(lake.root)

    refused = cli(lake, "rebuild")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "raw/streams/a.csv" in refused.stderr and "--allow-missing" in refused.stderr
    assert state_diff(derived_state(lake.root), before) == []

    forced = cli(lake, "rebuild", "--allow-missing")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "missing:" in forced.stdout and "raw/streams/a.csv" in forced.stdout


def test_a_lake_from_before_manifests_still_rebuilds(lake: Lake) -> None:
    lake.put_raw("a.csv", A1)
    lake.put_raw("b.csv", A2)
    run(lake)
    for info in list(lake.storage.list(layout.ARCHIVE_MANIFEST)):
        lake.storage.delete(info.key)
    live = derived_state(lake.root)
    rebuild(lake.settings())
    assert state_diff(derived_state(lake.root), live) == []


@pytest.mark.slow
def test_generate_refuses_to_overwrite_a_lake_without_force(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    base = ["generate", "--streams", "500", "--files", "2", "--days", "2"]
    assert cli(lake, *base).returncode == 0
    songs = (lake.root / layout.RAW_SONGS).read_bytes()
    assert cli(lake, "run").returncode == 0

    again = cli(lake, *base, "--seed", "9")
    assert again.returncode == 2
    assert "--force" in again.stderr and "songs.csv" in again.stderr
    assert (lake.root / layout.RAW_SONGS).read_bytes() == songs

    assert cli(lake, *base, "--append", "1").returncode == 0
    assert cli(lake, *base, "--append", "1").returncode == 2  # the same late files again
    assert cli(lake, *base, "--seed", "9", "--force").returncode == 0
    assert (lake.root / layout.RAW_SONGS).read_bytes() != songs
