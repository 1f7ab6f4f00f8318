"""The serving store as SQLite tables mirroring the DynamoDB key schema."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

from music_etl.adapters.sqlite_common import connect, connect_readonly
from music_etl.logic.rules import Kind
from music_etl.logic.serving_model import (
    JSON_ATTRIBUTES,
    SERVING_KEYS,
    TOP_GENRES_PER_DAY,
    serving_schemas,
)

#: The SQLite type of each contract type: the one mapping (dates are ISO text).
SQLITE_TYPES = {
    Kind.STRING: "TEXT",
    Kind.DATE: "TEXT",
    Kind.TIMESTAMP: "TEXT",
    Kind.INT64: "INTEGER",
    Kind.FLOAT64: "REAL",
}


def schema() -> str:
    """The `CREATE TABLE` statements of the store, derived from the contract when called.

    Example:
        >>> schema().splitlines()[0]
        'CREATE TABLE IF NOT EXISTS DailyGenreKPIs ('
    """
    return "\n".join(_create(t, columns) for t, columns in serving_schemas().items())


def _create(table: str, columns: dict[str, Kind]) -> str:
    lines = [f"    {name} {SQLITE_TYPES[kind]} NOT NULL," for name, kind in columns.items()]
    key = ", ".join(SERVING_KEYS[table])
    return "\n".join(
        [f"CREATE TABLE IF NOT EXISTS {table} (", *lines, f"    PRIMARY KEY ({key}));"]
    )


def _add_new_columns(conn: sqlite3.Connection) -> None:
    """Give a store made before a KPI was added that KPI's column (null in its old rows)."""
    for table, columns in serving_schemas().items():
        found = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name in [n for n in columns if n not in found]:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {SQLITE_TYPES[columns[name]]}")


class SQLiteServingStore:
    """Each `replace_days` is one transaction: readers see the old days or the new."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        """Open (and create) the store; `read_only` opens an existing one without writing."""
        self._conn = connect_readonly(url) if read_only else connect(url, schema())
        if not read_only:
            _add_new_columns(self._conn)
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
        cursor = self._conn.cursor()
        cursor.row_factory = None  # plain tuples: `sqlite3.Row` then `dict` cost twice as much
        rows = cursor.execute(sql, params).fetchall()
        return _decoded([column[0] for column in cursor.description], rows)

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
    return {k: json.dumps(v) if k in JSON_ATTRIBUTES else v for k, v in item.items()}


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    return {k: json.loads(v) if k in JSON_ATTRIBUTES else v for k, v in row.items()}


def _decoded(names: list[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows as dicts by column name, JSON attributes decoded (the read path of `serve`).

    Each JSON column is decoded in one `json.loads` of all its rows' texts joined into an
    array: one parser call instead of one per row.
    """
    columns = [list(column) for column in zip(*rows, strict=True)] if rows else []
    for i, name in enumerate(names):
        if name in JSON_ATTRIBUTES and columns:
            columns[i] = json.loads(f"[{','.join(columns[i])}]")
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
