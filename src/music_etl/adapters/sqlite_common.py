"""Opening SQLite databases the same way for the ledger and the serving store."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from music_etl.errors import (
    ConfigError,
    CorruptState,
    DiskFull,
    LockHeld,
    MusicEtlError,
    StorageError,
    from_os_error,
)

_OPEN_ATTEMPTS = 40
#: Seconds a connection waits for another process's write lock unless told otherwise.
BUSY_SECONDS = 60.0


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///path` URL."""
    if not url.startswith("sqlite:///"):
        raise ConfigError(f"Expected a sqlite:///path URL, got {url!r}.")
    return Path(url.removeprefix("sqlite:///")).expanduser()


def connect(url: str, schema: str, *, busy_seconds: float = BUSY_SECONDS) -> sqlite3.Connection:
    """A connection in autocommit mode with WAL, `busy_seconds` of busy timeout and `schema`.

    Switching a new file to WAL needs an exclusive lock and does not wait for it, so
    processes opening the same new database at once retry with a short backoff.
    SQLite and OS errors become ours (`sqlite_error`, `from_os_error`).
    """
    path = sqlite_path(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise from_os_error(exc, f"Creating the folder of {path}") from exc
    with translated(path):
        return _connect(path, schema, busy_seconds)


def connect_readonly(url: str, *, busy_seconds: float = BUSY_SECONDS) -> sqlite3.Connection:
    """A read-only connection to an existing database: no folder, schema or WAL switch.

    SQLite opens a WAL database read-only through its `-wal`/`-shm` companion files,
    which it creates empty when they are missing; the database file itself is never
    written. A missing file is a `ConfigError` that says to run the pipeline first.
    """
    path = sqlite_path(url)
    if not path.is_file():
        raise ConfigError(
            f"{path} does not exist yet: run `music-etl run` on the lake first, or check --lake."
        )
    with translated(path):
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro",
            uri=True,
            timeout=busy_seconds,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.row_factory = sqlite3.Row
        return conn


def _connect(path: Path, schema: str, busy_seconds: float) -> sqlite3.Connection:
    for attempt in range(_OPEN_ATTEMPTS):
        conn = sqlite3.connect(
            path, timeout=busy_seconds, isolation_level=None, check_same_thread=False
        )
        try:
            _prepare(conn, schema)
        except sqlite3.Error as exc:
            conn.close()
            if "locked" not in str(exc) or attempt == _OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
        else:
            return conn
    raise AssertionError("unreachable")


@contextmanager
def translated(path: Path | str) -> Iterator[None]:
    """SQLite errors raised in the block become ours (`sqlite_error`), `from` the original."""
    try:
        yield
    except sqlite3.Error as exc:
        ours = sqlite_error(exc, str(path))
        if ours is None:
            raise
        raise ours from exc


def sqlite_error(exc: sqlite3.Error, path: str = "a SQLite state file") -> MusicEtlError | None:
    """Our error for a SQLite error on `path`, or None when it is a bug (bad SQL, …).

    Example:
        >>> type(sqlite_error(sqlite3.DatabaseError("file is not a database"))).__name__
        'CorruptState'
    """
    text = str(exc)
    if "locked" in text or "busy" in text:
        return LockHeld(
            f"{path} is locked by another process ({text}); try again when it has finished."
        )
    if "full" in text:
        return DiskFull(f"Writing {path}: {text}; free space, then run again.")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StorageError(f"{path}: {text}; the lake must be writable: check its permissions.")
    if "not a database" in text or "malformed" in text or "encrypted" in text:
        return CorruptState(
            f"{path} is corrupt ({text}): move it aside (keep it for inspection), then run "
            "`music-etl rebuild` to recreate the state from the archive."
        )
    return None


def _prepare(conn: sqlite3.Connection, schema: str) -> None:
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(schema)
    conn.row_factory = sqlite3.Row
