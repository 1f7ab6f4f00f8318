"""Commands close what they open: `Components` is a context manager over every adapter."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import NOW, Lake
from music_etl.pipeline.components import open_components

RUNNER = str(Path(__file__).parent / "open_connections_cli.py")


def cli(*args: str) -> tuple[int, int, str]:
    """Exit code, SQLite connections left open, and stderr of one CLI command."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_ETL_")}
    env = {**clean, "MUSIC_ETL_NOW": NOW, "MUSIC_ETL_SETTLE_SECONDS": "0"}
    done = subprocess.run(
        [sys.executable, RUNNER, *args], capture_output=True, text=True, check=False, env=env
    )
    opened = re.search(r"^opened sqlite connections: (\d+)$", done.stderr, re.M)
    left = re.search(r"^open sqlite connections: (\d+)$", done.stderr, re.M)
    assert opened and left, done.stderr
    assert int(opened.group(1)) > 0, done.stderr
    return done.returncode, int(left.group(1)), done.stderr


@pytest.mark.slow
def test_cli_commands_close_their_sqlite_connections(lake: Lake) -> None:
    lake.put_streams("a.csv", [(1, "t1", "2024-06-01 10:00:00"), (2, "t3", "2024-06-01 11:00:00")])
    root = str(lake.root)
    for command in (["run"], ["status"], ["retry"], ["rebuild"]):
        code, left, stderr = cli(*command, "--lake", root)
        assert code == 0, stderr
        assert left == 0, f"{command[0]} left {left} open: {stderr}"
    assert lake.storage.exists("processed/daily_genre_kpis/date=2024-06-01/part-0.parquet")


class BrokenClose:
    """A serving store whose `close` fails."""

    def close(self) -> None:
        raise OSError("disk gone")


def test_components_close_every_adapter_even_when_one_fails(lake: Lake) -> None:
    opened = open_components(lake.settings())
    store = opened.serving
    broken = replace(opened, serving=BrokenClose())  # type: ignore[arg-type]
    with pytest.raises(OSError, match="disk gone"), broken as components:
        ledger = components.ledger
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        ledger.records()
    store.close()
