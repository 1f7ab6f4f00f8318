"""The serving store as SQLite tables mirroring the DynamoDB key schema."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from music_etl.adapters.sqlite_common import connect, connect_readonly
from music_etl.logic.serving_model import (
    DAILY_GENRE_KPIS,
    SERVING_KEYS,
    TOP_GENRES_PER_DAY,
    TOP_SONGS_PER_GENRE,
)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {DAILY_GENRE_KPIS} (
    date TEXT NOT NULL, genre TEXT NOT NULL, listen_count INTEGER NOT NULL,
    unique_listeners INTEGER NOT NULL, total_listening_time INTEGER NOT NULL,
    avg_listening_time REAL NOT NULL, PRIMARY KEY (date, genre));
CREATE TABLE IF NOT EXISTS {TOP_SONGS_PER_GENRE} (
    date TEXT NOT NULL, genre TEXT NOT NULL, songs TEXT NOT NULL, PRIMARY KEY (date, genre));
CREATE TABLE IF NOT EXISTS {TOP_GENRES_PER_DAY} (
    date TEXT NOT NULL, rank INTEGER NOT NULL, genre TEXT NOT NULL,
    listen_count INTEGER NOT NULL, PRIMARY KEY (date, rank));
"""
_JSON_COLUMNS = {"songs"}


class SQLiteServingStore:
    """Each `replace_days` is one transaction: readers see the old days or the new."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        """Open (and create) the store; `read_only` opens an existing one without writing."""
        self._conn = connect_readonly(url) if read_only else connect(url, _SCHEMA)
        self._nonce = uuid.uuid4().hex[:12]
        self._own_writes = 0
        """Commits on this connection (`data_version` counts only other connections')."""

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def replace_days(self, days: Sequence[str], items: dict[str, list[dict[str, Any]]]) -> None:
        """Delete the days' rows in every table, insert the new ones, commit once."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for table in SERVING_KEYS:
                self._replace(table, days, items.get(table, []))
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        self._own_writes += 1

    def scan(self, table: str) -> list[dict[str, Any]]:
        """Every row of `table` ordered by its key, JSON attributes decoded."""
        pk, sk = SERVING_KEYS[table]
        rows = self._conn.execute(f"SELECT * FROM {table} ORDER BY {pk}, {sk}").fetchall()
        return [_decode(dict(row)) for row in rows]

    def days(self) -> list[str]:
        """Every day with a `TopGenresPerDay` row, ascending."""
        sql = f"SELECT DISTINCT date FROM {TOP_GENRES_PER_DAY} ORDER BY date"
        return [row[0] for row in self._conn.execute(sql).fetchall()]

    def read(
        self, table: str, days: Sequence[str], *, sort_key: str | int | None = None
    ) -> list[dict[str, Any]]:
        """The rows of `table` on `days` (with that sort key when given), ordered by key."""
        pk, sk = SERVING_KEYS[table]
        if not days:
            return []
        where = f"{pk} IN ({', '.join('?' * len(days))})"
        params: list[Any] = list(days)
        if sort_key is not None:
            where += f" AND {sk} = ?"
            params.append(sort_key)
        sql = f"SELECT * FROM {table} WHERE {where} ORDER BY {pk}, {sk}"
        return [_decode(dict(row)) for row in self._conn.execute(sql, params).fetchall()]

    def version(self) -> str:
        """SQLite's `data_version` for this connection: it moves when another one commits.

        Prefixed with this connection's identity, so two processes never share a token.
        """
        (number,) = self._conn.execute("PRAGMA data_version").fetchone()
        return f"{self._nonce}-{self._own_writes}-{number}"

    def _replace(self, table: str, days: Sequence[str], items: list[dict[str, Any]]) -> None:
        self._conn.executemany(f"DELETE FROM {table} WHERE date = ?", [(d,) for d in days])
        if not items:
            return
        names = list(items[0])
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        self._conn.executemany(sql, [tuple(_encode(item)[n] for n in names) for item in items])


def _encode(item: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(v) if k in _JSON_COLUMNS else v for k, v in item.items()}


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    return {k: json.loads(v) if k in _JSON_COLUMNS else v for k, v in row.items()}
