"""`ProcessedStreams` in a SQLite file: claims are `BEGIN IMMEDIATE` transactions."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields, replace
from typing import Any

from music_etl.adapters.ledger.base import (
    CLAIMED,
    FAILED,
    FileRecord,
    FileStatus,
    RunRecord,
    RunStatus,
    is_claimable,
    lock_is_free,
    utcnow,
)
from music_etl.adapters.sqlite_common import (
    BUSY_SECONDS,
    connect,
    connect_readonly,
    sqlite_path,
    translated,
)
from music_etl.errors import ClaimLost

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ProcessedStreams (
    file_key TEXT PRIMARY KEY, content_hash TEXT NOT NULL, status TEXT NOT NULL,
    owner TEXT NOT NULL, lease_until REAL NOT NULL, timestamp TEXT NOT NULL,
    processed_at TEXT NOT NULL, rows_in INTEGER NOT NULL, rows_valid INTEGER NOT NULL,
    rows_bad INTEGER NOT NULL, bad_by_reason TEXT NOT NULL, days TEXT NOT NULL,
    error TEXT NOT NULL, retryable INTEGER NOT NULL, seq INTEGER NOT NULL,
    judged_against TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS Locks (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, lease_until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS Runs (
    run_id TEXT PRIMARY KEY, started TEXT NOT NULL, finished TEXT NOT NULL, files INTEGER NOT NULL,
    rows_in INTEGER NOT NULL, rows_valid INTEGER NOT NULL, rows_bad INTEGER NOT NULL,
    days INTEGER NOT NULL, status TEXT NOT NULL);
"""
_FILE_FIELDS = tuple(f.name for f in fields(FileRecord))


class SQLiteLedger:
    """The ledger in one SQLite file, safe for several processes on one machine."""

    def __init__(
        self, url: str, *, busy_seconds: float = BUSY_SECONDS, read_only: bool = False
    ) -> None:
        """Open (and create or upgrade) the ledger; `read_only` opens it without writing."""
        self._path = sqlite_path(url)
        self._nonce = uuid.uuid4().hex[:12]
        if read_only:
            self._conn = connect_readonly(url, busy_seconds=busy_seconds)
            return
        self._conn = connect(url, _SCHEMA, busy_seconds=busy_seconds)
        _add_judged_against(self._conn)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def get(self, file_key: str) -> FileRecord | None:
        """The record of `file_key`, if any."""
        row = self._conn.execute(
            "SELECT * FROM ProcessedStreams WHERE file_key = ?", (file_key,)
        ).fetchone()
        return None if row is None else _to_record(row)

    def records(self) -> list[FileRecord]:
        """Every record in the order their status last changed."""
        rows = self._conn.execute("SELECT * FROM ProcessedStreams ORDER BY seq").fetchall()
        return [_to_record(row) for row in rows]

    def version(self) -> str:
        """SQLite's `data_version` (other connections' commits) and this one's own changes.

        `total_changes` counts the rows this connection wrote; the nonce keeps two
        connections or processes from ever sharing a token.
        """
        (number,) = self._conn.execute("PRAGMA data_version").fetchone()
        return f"{self._nonce}-{self._conn.total_changes}-{number}"

    def claim(self, file_key: str, content_hash: str, owner: str, lease_seconds: int) -> bool:
        """Claim inside one write transaction: check and write cannot interleave."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT * FROM ProcessedStreams WHERE file_key = ?", (file_key,)
            ).fetchone()
            previous = None if row is None else _to_record(row)
            if not is_claimable(previous, content_hash, time.time()):
                return False
            base = previous or FileRecord(file_key=file_key, content_hash="", status=CLAIMED)
            claimed = FileRecord(
                **{
                    **asdict(base),
                    "content_hash": content_hash,
                    "status": CLAIMED,
                    "owner": owner,
                    "lease_until": time.time() + lease_seconds,
                    "timestamp": utcnow(),
                    "error": "",
                    "retryable": False,
                    "days": base.days,
                }
            )
            self._upsert(conn, claimed)
            return True

    def save(self, record: FileRecord) -> None:
        """Write `record` if its owner still holds the claim."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT owner, status FROM ProcessedStreams WHERE file_key = ?", (record.file_key,)
            ).fetchone()
            if row is None or row["owner"] != record.owner or row["status"] != CLAIMED:
                raise ClaimLost(
                    f"{record.file_key} was claimed by another runner; this runner stops on it."
                )
            self._upsert(conn, record)

    def unclaim(self, file_key: str, owner: str, previous: FileRecord | None) -> None:
        """Put `previous` back (or delete the record) if `owner` still holds the claim."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT owner, status FROM ProcessedStreams WHERE file_key = ?", (file_key,)
            ).fetchone()
            if row is None or row["owner"] != owner or row["status"] != CLAIMED:
                return
            if previous is None:
                conn.execute("DELETE FROM ProcessedStreams WHERE file_key = ?", (file_key,))
            else:
                self._upsert(conn, previous)

    def acquire_lock(self, name: str, owner: str, lease_seconds: int) -> bool:
        """Take or renew the lock in one write transaction."""
        with self._transaction() as conn:
            row = conn.execute("SELECT * FROM Locks WHERE name = ?", (name,)).fetchone()
            held_by, until = ("", 0.0) if row is None else (row["owner"], row["lease_until"])
            if not lock_is_free(owner, held_by, until, time.time()):
                return False
            conn.execute(
                "INSERT OR REPLACE INTO Locks VALUES (?, ?, ?)",
                (name, owner, time.time() + lease_seconds),
            )
            return True

    def release_lock(self, name: str, owner: str) -> None:
        """Delete the lock row if `owner` holds it."""
        self._conn.execute("DELETE FROM Locks WHERE name = ? AND owner = ?", (name, owner))

    def add_run(self, run: RunRecord) -> None:
        """Insert a finished run."""
        values = asdict(run)
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self._conn.execute(
            f"INSERT OR REPLACE INTO Runs ({names}) VALUES ({marks})", tuple(values.values())
        )

    def runs(self, limit: int) -> list[RunRecord]:
        """The latest runs, newest first."""
        rows = self._conn.execute(
            "SELECT * FROM Runs ORDER BY started DESC LIMIT ?", (limit,)
        ).fetchall()
        return [RunRecord(**{**dict(row), "status": RunStatus(row["status"])}) for row in rows]

    def forget_files(self) -> None:
        """Drop every file record."""
        self._conn.execute("DELETE FROM ProcessedStreams")

    def mark_retryable(self, file_key: str) -> bool:
        """Mark a failed record retryable in one write transaction (a claim cannot interleave)."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT * FROM ProcessedStreams WHERE file_key = ?", (file_key,)
            ).fetchone()
            if row is None or row["status"] != FAILED:
                return False
            self._upsert(conn, replace(_to_record(row), retryable=True, timestamp=utcnow()))
            return True

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with translated(self._path):  # waiting out the busy timeout ends in `LockHeld`
            self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @staticmethod
    def _upsert(conn: sqlite3.Connection, record: FileRecord) -> None:
        values = _to_row(record)
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM ProcessedStreams").fetchone()[0]
        names = ", ".join([*values, "seq"])
        marks = ", ".join("?" for _ in range(len(values) + 1))
        conn.execute(
            f"INSERT OR REPLACE INTO ProcessedStreams ({names}) VALUES ({marks})",
            (*values.values(), seq),
        )


def _add_judged_against(conn: sqlite3.Connection) -> None:
    """Give a ledger made before `judged_against` existed its column."""
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(ProcessedStreams)")}
    if "judged_against" in columns:
        return
    try:
        conn.execute(
            "ALTER TABLE ProcessedStreams ADD COLUMN judged_against TEXT NOT NULL DEFAULT '{}'"
        )
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):  # another process added it first
            raise


def _to_row(record: FileRecord) -> dict[str, Any]:
    values = asdict(record)
    values["bad_by_reason"] = json.dumps(record.bad_by_reason, sort_keys=True)
    values["judged_against"] = json.dumps(record.judged_against, sort_keys=True)
    values["days"] = json.dumps(list(record.days))
    values["retryable"] = int(record.retryable)
    return values


def _to_record(row: sqlite3.Row) -> FileRecord:
    present = set(row.keys())  # a ledger opened read-only may predate `judged_against`
    values = {name: row[name] for name in _FILE_FIELDS if name in present}
    values["bad_by_reason"] = json.loads(values["bad_by_reason"])
    values["judged_against"] = json.loads(values.get("judged_against", "{}"))
    values["days"] = tuple(json.loads(values["days"]))
    values["retryable"] = bool(values["retryable"])
    values["status"] = FileStatus(values["status"])
    return FileRecord(**values)
