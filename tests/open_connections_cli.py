"""Run the real `music-etl` CLI and report the SQLite connections it left open.

Usage: python tests/open_connections_cli.py music-etl arguments…

Every `sqlite3.connect` is recorded; when the command has finished, the last line on
stderr is `open sqlite connections: N` (a closed connection refuses to execute).
"""

from __future__ import annotations

import sqlite3
import sys
from typing import Any

from music_etl.cli import app

OPENED: list[sqlite3.Connection] = []
_connect = sqlite3.connect


def _recording_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    conn = _connect(*args, **kwargs)
    OPENED.append(conn)
    return conn


def _is_open(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return False
    return True


def main(argv: list[str]) -> None:
    sqlite3.connect = _recording_connect  # type: ignore[assignment]
    sys.argv = ["music-etl", *argv]
    try:
        app.main()
    finally:
        left = sum(_is_open(c) for c in OPENED)
        sys.stderr.write(f"\nopened sqlite connections: {len(OPENED)}\n")
        sys.stderr.write(f"open sqlite connections: {left}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
