"""Opening SQLite databases the same way for the ledger and the serving store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from music_etl.errors import ConfigError


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///path` URL."""
    if not url.startswith("sqlite:///"):
        raise ConfigError(f"Expected a sqlite:///path URL, got {url!r}.")
    return Path(url.removeprefix("sqlite:///")).expanduser()


def connect(url: str) -> sqlite3.Connection:
    """A connection in autocommit mode with WAL and a generous busy timeout."""
    path = sqlite_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.row_factory = sqlite3.Row
    return conn
