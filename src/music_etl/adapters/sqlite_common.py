"""Opening SQLite databases the same way for the ledger and the serving store."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

from music_etl.errors import ConfigError

_OPEN_ATTEMPTS = 40


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///path` URL."""
    if not url.startswith("sqlite:///"):
        raise ConfigError(f"Expected a sqlite:///path URL, got {url!r}.")
    return Path(url.removeprefix("sqlite:///")).expanduser()


def connect(url: str, schema: str) -> sqlite3.Connection:
    """A connection in autocommit mode with WAL, a generous busy timeout and `schema` applied.

    Switching a new file to WAL needs an exclusive lock and does not wait for it, so
    processes opening the same new database at once retry with a short backoff.
    """
    path = sqlite_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(_OPEN_ATTEMPTS):
        conn = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
        try:
            _prepare(conn, schema)
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" not in str(exc) or attempt == _OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
        else:
            return conn
    raise AssertionError("unreachable")


def _prepare(conn: sqlite3.Connection, schema: str) -> None:
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(schema)
    conn.row_factory = sqlite3.Row
