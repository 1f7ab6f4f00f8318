"""`query` is read-only and sandboxed; readers of the lake fail in one line, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import Lake
from music_etl.cli.app import app
from music_etl.pipeline.query import VIEWS
from music_etl.pipeline.run import run

MUSIC_ETL = str(Path(sys.executable).parent / "music-etl")
DAY1, DAY2 = "2024-06-01", "2024-06-02"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command; a wide terminal so a one-line message stays one line."""
    env = {**os.environ, "COLUMNS": "500", "MUSIC_ETL_NOW": "2024-07-01T00:00:00Z"}
    return subprocess.run(
        [MUSIC_ETL, *args], capture_output=True, text=True, env=env, check=False, timeout=120
    )


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its bytes."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, one `error:` line on stderr naming `needles`, no traceback."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error:"), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def loaded(lake: Lake) -> Lake:
    """A lake with two processed files on two days (one bad row)."""
    lake.put_streams("a.csv", [(1, "t1", f"{DAY1} 10:00:00"), (2, "nope", f"{DAY1} 11:00:00")])
    lake.put_streams("b.csv", [(2, "t2", f"{DAY1} 12:00:00"), (3, "t3", f"{DAY2} 09:30:00")])
    report = run(lake.settings(bad_row_threshold=1.0))
    assert len(report.processed) == 2
    return lake


def _part(lake: Lake) -> Path:
    return lake.root / f"processed/top_genres/date={DAY1}/part-0.parquet"


#: Reads of anything but the lake's views: refused by DuckDB's own sandbox.
READS = {
    "read_any_file": "SELECT * FROM read_csv('/etc/passwd')",
    "read_text": "SELECT * FROM read_text('/etc/hostname')",
    "list_files": "SELECT * FROM glob('/etc/*')",
    "network_read": "SELECT * FROM read_parquet('https://example.com/x.parquet')",
}
#: Anything but a read: refused before it runs.
WRITES = {
    "copy_out": "COPY (SELECT 1 AS a) TO '{out}/x.csv'",
    "copy_over_lake": "COPY (SELECT * FROM top_genres WHERE false) TO '{part}' (FORMAT parquet)",
    "second_statement": "SELECT 1; COPY (SELECT 1 AS a) TO '{out}/y.csv'",
    "attach_file": "ATTACH '{out}/db.duckdb' AS x",
    "install_extension": "INSTALL httpfs",
    "load_extension": "LOAD httpfs",
    "unlock_access": "SET enable_external_access = true",
    "unlock_configuration": "SET lock_configuration = false",
    "widen_paths": "SET allowed_directories = ['/']",
    "create_table": "CREATE TABLE t AS SELECT 1 AS a",
}
ATTACKS = {**READS, **WRITES}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_query_refuses_every_escape_and_leaves_the_lake_unchanged(
    loaded: Lake, tmp_path: Path, attack: str
) -> None:
    out = tmp_path / "outside"
    out.mkdir()
    before = snapshot(loaded.root)
    sql = ATTACKS[attack].format(out=out, part=_part(loaded))
    done = cli("query", "--lake", str(loaded.root), sql)
    line = assert_one_line_error(done)
    assert ("reads only the lake's views" if attack in READS else "query is read-only") in line
    assert "root:" not in done.stdout
    assert snapshot(loaded.root) == before
    assert list(out.iterdir()) == []


def test_write_statements_say_query_is_read_only(loaded: Lake) -> None:
    done = cli("query", "--lake", str(loaded.root), f"COPY top_genres TO '{_part(loaded)}'")
    assert_one_line_error(done, "read-only", "COPY")


def test_a_normal_query_still_works(loaded: Lake) -> None:
    sql = "SELECT date, genre, listen_count FROM daily_genre_kpis ORDER BY date, genre"
    done = cli("query", "--lake", str(loaded.root), "--format", "csv", sql)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "date,genre,listen_count",
        f"{DAY1},pop,2",
        f"{DAY1},rock,1",
        f"{DAY2},jazz,1",
    ]


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_every_view_in_every_format(loaded: Lake, view: str, fmt: str) -> None:
    args = ["query", "--lake", str(loaded.root), "--format", fmt, f"SELECT * FROM {view}"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert result.exception is None
    if fmt == "json":
        rows = [json.loads(line) for line in result.output.splitlines()]
        assert rows
        assert set(rows[0]) >= {"date"} or view in {"streams", "bad_records"}


def test_listen_time_is_shown_in_utc(loaded: Lake) -> None:
    sql = "SELECT listen_time FROM streams ORDER BY listen_time"
    done = cli("query", "--lake", str(loaded.root), "--format", "json", sql)
    assert done.returncode == 0, done.stderr
    times = [json.loads(line)["listen_time"] for line in done.stdout.splitlines()]
    assert times == [
        f"{DAY1} 10:00:00+00:00",
        f"{DAY1} 12:00:00+00:00",
        f"{DAY2} 09:30:00+00:00",
    ]


@pytest.mark.parametrize("sql", ["", "   \n\t", "-- only a comment", "/* nothing */ ;"])
def test_an_empty_query_is_a_one_line_error(loaded: Lake, sql: str) -> None:
    done = cli("query", "--lake", str(loaded.root), "--", sql)
    assert_one_line_error(done, "one SQL statement")


@pytest.mark.parametrize("name", ["lake[1]", "lake*", "lake?"])
def test_a_lake_path_with_glob_characters_reads_only_its_own_files(
    tmp_path: Path, name: str
) -> None:
    odd, plain = Lake(tmp_path / name), Lake(tmp_path / "lake1")
    for made, user in ((odd, 1), (plain, 2)):
        made.put_dimensions()
        made.put_streams(f"from-{user}.csv", [(user, "t1", f"{DAY1} 10:00:00")])
        assert run(made.settings()).processed
    for made, user in ((odd, 1), (plain, 2)):
        sql = "SELECT DISTINCT user_id, source_file FROM streams"
        done = cli("query", "--lake", str(made.root), "--format", "csv", sql)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[1:] == [f"{user},raw/streams/from-{user}.csv"]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _validated(lake: Lake, day: str, source: str) -> Path:
    (found,) = (lake.root / f"validated/streams/listen_date={day}").glob(f"{source}-*.parquet")
    return found


def test_query_names_a_truncated_validated_file(loaded: Lake) -> None:
    broken = _validated(loaded, DAY1, "a")
    _truncate(broken)
    key = broken.relative_to(loaded.root).as_posix()
    done = cli("query", "--lake", str(loaded.root), "SELECT count(*) FROM streams")
    assert_one_line_error(done, key, "music-etl rebuild")


def test_run_names_a_truncated_file_read_by_the_duplicate_check(loaded: Lake) -> None:
    broken = _validated(loaded, DAY1, "a")
    _truncate(broken)
    loaded.put_streams("c.csv", [(4, "t4", f"{DAY1} 13:00:00")])
    done = cli("run", "--lake", str(loaded.root))
    assert_one_line_error(done, broken.relative_to(loaded.root).as_posix(), "music-etl rebuild")


def test_run_names_a_truncated_file_read_by_the_recomputation(loaded: Lake) -> None:
    """Replacing b.csv with rows on DAY2 only recomputes DAY1 too, where a.csv's file is broken."""
    broken = _validated(loaded, DAY1, "a")
    _truncate(broken)
    loaded.put_streams("b.csv", [(3, "t3", f"{DAY2} 09:45:00")])
    done = cli("run", "--lake", str(loaded.root))
    assert_one_line_error(done, broken.relative_to(loaded.root).as_posix(), "music-etl rebuild")


@pytest.mark.parametrize("kind", ["missing", "empty", "other files"])
@pytest.mark.parametrize("command", ["status", "query"])
def test_readers_refuse_a_folder_that_is_not_a_lake_and_create_nothing(
    tmp_path: Path, kind: str, command: str
) -> None:
    folder = tmp_path / "typo"
    if kind != "missing":
        folder.mkdir()
    if kind == "other files":
        (folder / "notes.txt").write_text("not a lake")
    before = snapshot(tmp_path)
    args = [command, "--lake", str(folder)]
    done = cli(*args, "SELECT 1") if command == "query" else cli(*args)
    assert_one_line_error(done, "is not a music-etl lake", "music-etl init")
    assert snapshot(tmp_path) == before
    assert folder.exists() == (kind != "missing")
    assert not (folder / "_state").exists()
