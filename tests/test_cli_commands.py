"""`init`, `generate`, `watch` and `demo` as a user runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import Lake
from music_etl.cli.app import app

runner = CliRunner()
MUSIC_ETL = str(Path(sys.executable).parent / "music-etl")


def test_init_creates_the_layout(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", "--lake", str(tmp_path / "lake")])
    assert result.exit_code == 0, result.output
    for folder in ("raw/streams", "validated", "bad-records", "processed", "archive"):
        assert (tmp_path / "lake" / folder).is_dir()
    assert (tmp_path / "lake" / "_state" / "ledger.sqlite").is_file()


def test_generate_then_run(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    args = ["generate", "--lake", lake, "--streams", "5000", "--files", "2", "--days", "3"]
    assert runner.invoke(app, args).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "lake/raw/streams").iterdir()) == [
        "streams_0001.csv",
        "streams_0002.csv",
    ]
    result = runner.invoke(app, ["run", "--lake", lake])
    assert result.exit_code == 0, result.output
    assert "2 file(s) processed, 0 failed" in result.output


def test_generate_rejects_nonsense(tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", "--lake", str(tmp_path), "--files", "0"])
    assert result.exit_code == 2
    assert "--files" in result.output


def test_demo_refuses_a_folder_that_is_not_a_demo_lake(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = runner.invoke(app, ["demo", "--lake", str(tmp_path), "--streams", "100"])
    assert result.exit_code == 2
    assert (tmp_path / "precious.txt").exists()


@pytest.mark.slow
def test_demo_runs_end_to_end_and_again(tmp_path: Path) -> None:
    for _ in range(2):
        result = runner.invoke(app, ["demo", "--lake", str(tmp_path / "d"), "--streams", "3000"])
        assert result.exit_code == 0, result.output
        assert "3 file(s) processed, 0 failed" in result.output
        assert "Top genres on" in result.output
        assert "See it: music-etl serve --lake" in " ".join(result.output.split())


@pytest.mark.slow
def test_watch_processes_arrivals_and_stops_on_ctrl_c(lake: Lake) -> None:
    env = {**os.environ, "MUSIC_ETL_NOW": "2024-07-01T00:00:00Z"}
    args = [MUSIC_ETL, "watch", "--lake", str(lake.root), "--interval", "0.2"]
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        lake.put_streams("a.csv", [(1, "t1", "2024-06-01 10:00:00")])
        archived = lake.root / "archive/streams/a.csv"
        deadline = time.monotonic() + 30
        while not archived.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert archived.exists()
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, output
    assert "Stopped." in output
